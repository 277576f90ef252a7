#!/usr/bin/env bash
# Shared helper: apt_install PKG... installs missing Debian packages (one apt-get update per run).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ ! -f /tmp/.voice-loadtest-apt-updated ]; then
    $sudo apt-get update -qq && touch /tmp/.voice-loadtest-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
