#!/usr/bin/env bash
# The interop tests' own virtualenv (.venv-interop): Pipecat, the third-party voice-agent
# framework tests/interop/ runs the harness against, kept apart from the harness's own
# dependencies. Idempotent: rebuilt only when tests/interop/requirements.txt or constraints.txt
# change, into a temporary folder first, so a failed install never replaces a working one.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${INTEROP_VENV:-.venv-interop}"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"
want=$(cat tests/interop/requirements.txt tests/interop/constraints.txt | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
partial="$venv.partial"
rm -rf "$partial"
"$python" -m venv "$partial"
"$partial/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r tests/interop/requirements.txt -c tests/interop/constraints.txt
"$partial/bin/python" -c "import pipecat.audio.vad.silero, pipecat.serializers.twilio, uvicorn"
echo "$want" > "$partial/.requirements.sha256"
rm -rf "$venv"
mv "$partial" "$venv"
echo "interop virtualenv ready: $venv"
