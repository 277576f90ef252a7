#!/usr/bin/env bash
# Install the system packages and tools the integration tests use (idempotent; run as root,
# as CI does). Each scripts/deps/*.sh installs one thing and exits 0 when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "test-deps: not root and no sudo; skipping system packages (some integration tests will fail)" >&2
  exit 0
fi
for script in scripts/deps/[!_]*.sh; do
  [ -e "$script" ] || continue
  bash "$script"
done
