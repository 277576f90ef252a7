#!/usr/bin/env bash
# Build the voice-loadtest image from docker/Dockerfile with BuildKit (used by `make image`
# and tests/integration/test_docker.py).
#
#   docker/build.sh [DOCKER BUILD OPTIONS...]
#
# Environment: IMAGE (tag, default voice-loadtest:latest), BASE_IMAGE (default: the
# Dockerfile's python:3.12-slim), AUDIO_SOURCE (auto|context|blob|espeak|none), CONTEXT (build
# context, default the repository root; it must hold docker/ too). Other options go to
# `docker build` as given, e.g. a Blob audio cache with the credential as a BuildKit secret:
#
#   AUDIO_SOURCE=blob docker/build.sh \
#     --secret id=azure_storage,env=AZURE_STORAGE_CONNECTION_STRING \
#     --build-arg AUDIO_BLOB_CONTAINER=voice-audio --build-arg AUDIO_BLOB_PREFIX=caches/v1/
#
# Air-gapped: `.venv/bin/pip wheel -w wheels .` first (the wheels must match BASE_IMAGE's
# Python version); the build then installs from wheels/ without an index.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
context="${CONTEXT:-$(dirname "$here")}"
image="${IMAGE:-voice-loadtest:latest}"

# A client whose `docker build` uses BuildKit: one with the buildx plugin, else a client older
# than 23 (Debian bookworm's docker.io) with DOCKER_BUILDKIT=1, which drives the engine's
# built-in BuildKit. Newer clients without buildx fall back to the legacy builder, which cannot
# mount build secrets.
pick_client() {
  local candidate major
  for candidate in $(type -ap docker); do
    if "$candidate" buildx version >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  for candidate in $(type -ap docker); do
    major="$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)"
    if [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -lt 23 ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! client="$(pick_client)"; then
  echo "build.sh: no docker client with BuildKit: install the buildx plugin (docker-buildx)" >&2
  exit 1
fi

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$context/pyproject.toml" | head -n 1)"
revision="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
args=(
  --file "$context/docker/Dockerfile"
  --tag "$image"
  --build-arg "VERSION=${version:-dev}"
  --build-arg "REVISION=$revision"
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
)
[ -n "${BASE_IMAGE:-}" ] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[ -n "${AUDIO_SOURCE:-}" ] && args+=(--build-arg "AUDIO_SOURCE=$AUDIO_SOURCE")

echo "build.sh: $image from $context (client $client)" >&2
DOCKER_BUILDKIT=1 exec "$client" build "${args[@]}" "$@" "$context"
