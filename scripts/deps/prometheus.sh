#!/usr/bin/env bash
# Debian's Prometheus server and promtool, for tests/integration/test_prometheus.py (idempotent).
#
# The tests start their own `prometheus` on a free port with a throwaway TSDB. The packaged
# service is not wanted: it would hold :9090 and scrape nothing of ours, so it is stopped and
# disabled whenever the package's maintainer scripts started it (on systemd hosts such as CI
# runners; in containers /usr/sbin/policy-rc.d usually prevents the start already).
set -euo pipefail
source "$(dirname "$0")/_apt.sh"

apt_install prometheus

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if systemctl is-enabled --quiet prometheus 2>/dev/null || systemctl is-active --quiet prometheus; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1
  fi
elif [ -x /etc/init.d/prometheus ] && /etc/init.d/prometheus status >/dev/null 2>&1; then
  $sudo /etc/init.d/prometheus stop >/dev/null
fi

command -v promtool >/dev/null || { echo "prometheus.sh: promtool missing after install" >&2; exit 1; }
