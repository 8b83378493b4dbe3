#!/usr/bin/env bash
# Debian's Chromium for the sandbox's browser test (tests/sandbox/test_browser.py), which
# drives it with playwright-core; no browser is downloaded from anywhere else.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing; install Debian's chromium package (apt-get install chromium)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
test -x /usr/bin/chromium
