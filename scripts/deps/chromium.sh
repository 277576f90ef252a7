#!/usr/bin/env bash
# Headless Chromium for the HTML report browser test (Debian package; idempotent).
set -euo pipefail
source "$(dirname "$0")/_apt.sh"
apt_install chromium fonts-dejavu-core
