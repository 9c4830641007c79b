#!/usr/bin/env bash
# Installs the Debian packages the tests and `make diagram` use: Chromium, which Playwright
# drives at /usr/bin/chromium for tests/serving/test_browser.py (it never downloads a browser of
# its own), and Graphviz's `dot` with the DejaVu font, which draw docs/architecture.png.
# Idempotent: does nothing when all are there. Needs apt-get, and root or sudo.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

packages=()
[[ -x "$CHROMIUM" ]] || packages+=(chromium)
command -v dot >/dev/null || packages+=(graphviz)
[[ -f "$FONT" ]] || packages+=(fonts-dejavu-core)
if [[ ${#packages[@]} -eq 0 ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "system_setup: ${packages[*]} missing and there is no apt-get; install them there" >&2
  exit 1
fi
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  sudo=(sudo)
fi
echo "system_setup: installing ${packages[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
"$CHROMIUM" --version
dot -V
