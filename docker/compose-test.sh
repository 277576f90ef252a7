#!/usr/bin/env bash
# A headless compose run, as CI runs it (`make compose-test`): the agent, the master and
# WORKERS workers start detached; the script waits for the master alone (a lost worker's
# callers move to the others), copies /reports (summary.json and summary.html, written by the
# master, and Locust's CSV and HTML) to REPORTS_OUT, tears the stack down and exits with the
# master's exit code: the SLO verdict (0 pass, 1 fail, 2 invalid run).
#
# Environment: VOICE_LOADTEST_IMAGE (default voice-loadtest:latest), WORKERS (default 2),
# USERS, SPAWN_RATE, RUN_TIME (default 1m), WS_URL, AGENT_ARGS ... (see docker-compose.yml),
# COMPOSE_PROJECT_NAME (default voice-loadtest-ci), REPORTS_OUT (default reports/compose),
# EXTRA_COMPOSE_FILES (colon-separated overrides, e.g. one that mounts an SLO file),
# KEEP=1 to leave the stack (and its volume) for inspection. Uses `docker compose`, else
# `docker-compose`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-voice-loadtest-ci}"
workers="${WORKERS:-2}"
export EXPECT_WORKERS="${EXPECT_WORKERS:-$workers}"
out="${REPORTS_OUT:-reports/compose}"

if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  echo "compose-test.sh: neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 2
fi

files=(-f "$here/docker-compose.yml" -f "$here/docker-compose.headless.yml")
IFS=: read -r -a extra <<<"${EXTRA_COMPOSE_FILES:-}"
for file in "${extra[@]}"; do
  [ -n "$file" ] && files+=(-f "$file")
done

compose() {
  "${compose_cmd[@]}" "${files[@]}" "$@"
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

compose up --detach --scale worker="$workers"
master="$(compose ps -q master)"
if [ -z "$master" ]; then
  echo "compose-test.sh: no master container" >&2
  exit 2
fi
code="$(docker wait "$master")"
compose logs --no-color master | tail -n 80

mkdir -p "$out"
docker cp "$master:/reports/." "$out/"
echo "compose-test.sh: master exited with $code; reports in $out" >&2
exit "$code"
