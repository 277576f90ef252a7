#!/usr/bin/env bash
# Docker for tests/integration/test_docker.py (idempotent): Debian's docker.io (dockerd,
# containerd, runc and a 20.10 client whose `docker build` has BuildKit and build secrets),
# compose (the v2 plugin where Debian has one, else the v1 `docker-compose`), and debootstrap
# (the tests build their Python base image with it: no registry is reachable). Then starts
# dockerd in the background when no engine answers `docker info`, and waits until one does.
# dockerd's log: ${DOCKERD_LOG:-/tmp/voice-loadtest-dockerd.log}.
set -euo pipefail
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/voice-loadtest-dockerd.log}"
DOCKERD_WAIT_S="${DOCKERD_WAIT_S:-60}"

# shellcheck source=scripts/deps/_apt.sh
source "$(dirname "$0")/_apt.sh"

# A package Debian offers here (after one `apt-get update`: before it the lists may be empty).
_has_candidate() {
  local candidate
  candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

_packages() {
  local wanted=(docker.io debootstrap)
  # bookworm: docker-compose is the v1 Python CLI; newer Debian ships v2 under the same name.
  local extra
  for extra in docker-compose-plugin docker-compose docker-buildx; do
    if _has_candidate "$extra"; then
      wanted+=("$extra")
    fi
  done
  printf '%s\n' "${wanted[@]}"
}

_engine_answers() {
  timeout 10 docker info >/dev/null 2>&1
}

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 \
  || ! { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; }; then
  if [ ! -f /tmp/.voice-loadtest-apt-updated ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && touch /tmp/.voice-loadtest-apt-updated
  fi
  mapfile -t packages < <(_packages)
  apt_install "${packages[@]}"
fi

_engine_answers && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "docker.sh: no Docker engine answers and starting dockerd needs root" >&2
  exit 1
fi
# A stale pid file from a dockerd that died keeps a new one from starting.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker.sh: starting dockerd (log: $DOCKERD_LOG)" >&2
  setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi
for _ in $(seq "$((DOCKERD_WAIT_S * 2))"); do
  _engine_answers && exit 0
  sleep 0.5
done
echo "docker.sh: dockerd did not answer within ${DOCKERD_WAIT_S} s; last lines of $DOCKERD_LOG:" >&2
tail -n 20 "$DOCKERD_LOG" >&2 || true
exit 1
