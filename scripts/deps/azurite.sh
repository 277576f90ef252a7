#!/usr/bin/env bash
# Azurite (the Azure Storage emulator, npm package `azurite`) for tests/integration/test_blob_store.py
# (idempotent). The tests start their own `azurite-blob` on 127.0.0.1 and a free port with a
# throwaway --location; nothing is started here. Needs Node.js >= 18 and npm.
set -euo pipefail
AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"

command -v azurite-blob >/dev/null 2>&1 && exit 0

if ! command -v npm >/dev/null 2>&1; then
  source "$(dirname "$0")/_apt.sh"
  apt_install nodejs npm
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo npm install --global --no-fund --no-audit --loglevel=error "azurite@${AZURITE_VERSION}" >/dev/null

command -v azurite-blob >/dev/null || { echo "azurite.sh: azurite-blob missing after install" >&2; exit 1; }
