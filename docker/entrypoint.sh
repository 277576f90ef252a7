#!/bin/sh
# Entrypoint of the voice-loadtest image: one role per container, then `exec`, so the role's
# process is PID 1 and receives `docker stop`'s SIGTERM itself (a worker then tells the master
# it quits, and a master started with --enable-rebalancing hands its callers to the others).
#
#   master       Locust master: --master --enable-rebalancing. With LOCUST_HEADLESS=true it runs
#                for LOCUST_RUN_TIME, writes $REPORTS_DIR/summary.json, summary.html,
#                locust_*.csv and locust.html, and exits with the SLO verdict (0 pass, 1 fail, 2 invalid run);
#                otherwise it serves the web UI on 8089. /metrics + /healthz on $METRICS_PORT.
#                SLO_FILE: a YAML of SLO overrides in the container (--slo-file).
#   worker       Locust worker of ${LOCUST_MASTER_NODE_HOST:-master}; /healthz on $METRICS_PORT
#   standalone   one Locust process that is its own worker; headless or web UI as for master
#   agent        the reference voice agent on 0.0.0.0:$AGENT_PORT (/metrics on
#                $AGENT_METRICS_PORT unless empty or 0; more options in $AGENT_ARGS)
#   pull-audio   download and verify the Blob audio cache into $PCM_DIR, then exit
#   voice-loadtest ARGS   run the CLI;  locust ARGS   Locust with the packaged locustfile
#   anything else         run as given (sh, python, id ...)
#
# Arguments after a role go to its process: `docker run IMAGE master -u 50 -r 5`.
#
# Audio at start-up (worker, standalone): when Blob credentials are set
# (AZURE_STORAGE_CONNECTION_STRING, or AUDIO_BLOB_ACCOUNT_URL [+ AUDIO_BLOB_SAS]) and the cache in
# $PCM_DIR is missing or fails `voice-loadtest audio inspect`, it is pulled (and verified) first.
# AUDIO_PULL=always pulls at every start (unchanged files are skipped), never never pulls.
set -eu

PCM_DIR="${PCM_DIR:-/opt/voice-loadtest/audio}"
REPORTS_DIR="${REPORTS_DIR:-/reports}"
METRICS_PORT="${METRICS_PORT:-9646}"
AGENT_PORT="${AGENT_PORT:-8010}"
AGENT_METRICS_PORT="${AGENT_METRICS_PORT-9647}"
HEALTH_FILE="${VOICE_LOADTEST_HEALTH_FILE:-/tmp/voice-loadtest-health-url}"
export PCM_DIR REPORTS_DIR METRICS_PORT

say() {
  echo "voice-loadtest-entrypoint: $*" >&2
}

# The URL the image's HEALTHCHECK probes (docker/healthcheck.py); best effort: a read-only
# /tmp only costs the check.
health_url() {
  printf '%s\n' "$1" >"$HEALTH_FILE" 2>/dev/null || true
}

is_true() {
  case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
    1 | true | yes | on) return 0 ;;
    *) return 1 ;;
  esac
}

blob_configured() {
  [ -n "${AZURE_STORAGE_CONNECTION_STRING:-}" ] || [ -n "${AUDIO_BLOB_ACCOUNT_URL:-}" ]
}

pull_audio() {
  say "pulling the audio cache into $PCM_DIR"
  voice-loadtest audio pull --delete "$PCM_DIR"
  if ! voice-loadtest audio inspect "$PCM_DIR" >/tmp/voice-loadtest-inspect.txt 2>&1; then
    cat /tmp/voice-loadtest-inspect.txt >&2
    say "the pulled audio cache in $PCM_DIR failed 'voice-loadtest audio inspect'"
    exit 1
  fi
  say "audio cache in $PCM_DIR verified"
}

ensure_audio() {
  case "${AUDIO_PULL:-auto}" in
    never) return 0 ;;
    always)
      if ! blob_configured; then
        say "AUDIO_PULL=always but no Blob credentials: set AZURE_STORAGE_CONNECTION_STRING or AUDIO_BLOB_ACCOUNT_URL"
        exit 2
      fi
      pull_audio
      ;;
    auto)
      blob_configured || return 0
      if voice-loadtest audio inspect "$PCM_DIR" >/dev/null 2>&1; then
        say "audio cache in $PCM_DIR is present and verified"
        return 0
      fi
      pull_audio
      ;;
    *)
      say "AUDIO_PULL=${AUDIO_PULL}: allowed auto, always, never"
      exit 2
      ;;
  esac
}

# Reports of a headless master/standalone run, and the SLO file, ahead of the caller's own
# arguments (which win).
exec_locust_reporting() {
  if [ -n "${SLO_FILE:-}" ]; then
    set -- --slo-file "$SLO_FILE" "$@"
  fi
  if is_true "${LOCUST_HEADLESS:-false}"; then
    mkdir -p "$REPORTS_DIR"
    exec voice-loadtest locust --csv "$REPORTS_DIR/locust" --locust-html "$REPORTS_DIR/locust.html" \
      --summary-json "$REPORTS_DIR/summary.json" "$@"
  fi
  exec voice-loadtest locust "$@"
}

role="${1:-standalone}"
[ $# -gt 0 ] && shift

case "$role" in
  master)
    health_url "http://127.0.0.1:${METRICS_PORT}/healthz"
    exec_locust_reporting --master --enable-rebalancing "$@"
    ;;
  worker)
    ensure_audio
    health_url "http://127.0.0.1:${METRICS_PORT}/healthz"
    exec voice-loadtest locust --worker --master-host "${LOCUST_MASTER_NODE_HOST:-master}" "$@"
    ;;
  standalone)
    ensure_audio
    health_url "http://127.0.0.1:${METRICS_PORT}/healthz"
    exec_locust_reporting "$@"
    ;;
  agent)
    health_url "http://127.0.0.1:${AGENT_PORT}/healthz"
    [ "$AGENT_METRICS_PORT" = 0 ] && AGENT_METRICS_PORT=""
    # AGENT_ARGS is a list of options, split on spaces on purpose; arguments given to the
    # container come last and win.
    # shellcheck disable=SC2086
    exec voice-loadtest agent --host 0.0.0.0 --port "$AGENT_PORT" \
      ${AGENT_METRICS_PORT:+--metrics-port "$AGENT_METRICS_PORT" --metrics-host 0.0.0.0} \
      ${AGENT_ARGS:-} "$@"
    ;;
  pull-audio)
    if ! blob_configured; then
      say "pull-audio needs AZURE_STORAGE_CONNECTION_STRING, or AUDIO_BLOB_ACCOUNT_URL [+ AUDIO_BLOB_SAS]"
      exit 2
    fi
    exec voice-loadtest audio pull --delete "$@" "$PCM_DIR"
    ;;
  voice-loadtest)
    exec voice-loadtest "$@"
    ;;
  locust)
    exec voice-loadtest locust "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
