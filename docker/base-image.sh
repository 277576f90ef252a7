#!/usr/bin/env bash
# A Python base image without a registry: Debian with python3 + python3-venv from debootstrap,
# loaded with `docker import` (idempotent: skipped when the tag exists; FORCE=1 rebuilds).
# For air-gapped builds and the tests (no registry is reachable there):
#
#   docker/base-image.sh [TAG]            # default voice-loadtest-base:bookworm (Python 3.11)
#   BASE_IMAGE=voice-loadtest-base:bookworm docker/build.sh
#
# Environment: SUITE (default bookworm), MIRROR (default http://deb.debian.org/debian),
# WORKDIR (scratch folder, default a temporary one). Needs root and debootstrap
# (scripts/deps/docker.sh installs both debootstrap and the engine). About a minute.
set -euo pipefail
tag="${1:-voice-loadtest-base:bookworm}"
suite="${SUITE:-bookworm}"
mirror="${MIRROR:-http://deb.debian.org/debian}"

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "base-image.sh: debootstrap needs root" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  echo "base-image.sh: debootstrap missing: bash scripts/deps/docker.sh" >&2
  exit 1
}

scratch="${WORKDIR:-$(mktemp -d /var/tmp/voice-loadtest-base.XXXXXX)}"
rootfs="$scratch/rootfs"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  rm -rf "$rootfs"
  # A scratch folder of our own goes too once the image is in; a failure keeps its log.
  if [ -z "${WORKDIR:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

echo "base-image.sh: debootstrap $suite into $rootfs (log: $scratch/debootstrap.log)" >&2
rm -rf "$rootfs"
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$suite" "$rootfs" "$mirror" >"$scratch/debootstrap.log" 2>&1; then
  tail -n 20 "$scratch/debootstrap.log" >&2
  exit 1
fi
# What an image does not need: package caches and lists, documentation.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*

tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase $suite + python3, python3-venv, ca-certificates" \
  - "$tag" >/dev/null
echo "base-image.sh: $tag ($(docker run --rm "$tag" python3 --version))" >&2
