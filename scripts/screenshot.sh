#!/bin/sh
# Regenerates docs/web-run-page.png, the run page of the web UI that README shows (light,
# 1280x800), by running the browser test (tests/web_browser_test.py) against this build.
# Needs Debian's chromium, chromium-driver and python3-selenium.
#
# Usage: scripts/screenshot.sh [BUILD_DIR]   (default: build; built first with two jobs)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=debugoptimized
nice -n 19 ninja -C "$build" -j2 picoflowd/picoflowd picoflowctl/picoflowctl
shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
PICOFLOW_README_SHOT="$PWD/docs/web-run-page.png" /usr/bin/python3 tests/web_browser_test.py \
  "$build/picoflowd/picoflowd" "$build/picoflowctl/picoflowctl" "$shots"
echo "wrote docs/web-run-page.png"
