#!/usr/bin/env bash
# What the sandbox's browser test (tests/sandbox/test_browser.py) needs from the system:
# Debian's Chromium, driven by playwright-core, which Node.js and npm install and run,
# and Debian's colour emoji font, so the page's screenshots show emoji, not boxes.
# Nothing is downloaded outside apt and npm. Silent, and quick, when all is there;
# exits non-zero, naming what is missing, when it cannot be installed.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]}; install them with apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} with apt-get" >&2
if ! apt-get update -qq ||
  ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
  echo "apt-get could not install: ${missing[*]}" >&2
  exit 1
fi

status=0
[ -x /usr/bin/chromium ] || { echo "chromium is still missing after apt-get" >&2; status=1; }
command -v node >/dev/null 2>&1 || { echo "node is still missing after apt-get" >&2; status=1; }
command -v npm >/dev/null 2>&1 || { echo "npm is still missing after apt-get" >&2; status=1; }
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] ||
  { echo "the emoji font is still missing after apt-get" >&2; status=1; }
exit "$status"
