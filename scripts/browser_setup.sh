#!/usr/bin/env bash
# Installs Debian's Chromium for tests/serving/test_browser.py, which Playwright drives at
# /usr/bin/chromium (it never downloads a browser of its own). Idempotent: does nothing when
# Chromium is there. Needs apt-get, and root or sudo.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "browser_setup: $CHROMIUM is missing and there is no apt-get; install Chromium there" >&2
  exit 1
fi
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  sudo=(sudo)
fi
echo "browser_setup: installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version
