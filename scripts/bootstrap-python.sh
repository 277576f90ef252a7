#!/usr/bin/env bash
# Create or update the project virtualenv with the package and its dev tools (idempotent).
# Usage: scripts/bootstrap-python.sh PYTHON VENV
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; install Python 3.11 or newer (or set PYTHON=...)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: $("$python" --version 2>&1) is too old; voice-loadtest needs Python >= 3.11" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || {
    echo "error: could not create $venv (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[dev]'
echo "virtualenv ready: $venv"
