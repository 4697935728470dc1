#!/bin/sh
# README's test command: install what is missing, build, run every test, and
# close with a plain "N passed, N failed" line read from meson's test log.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh --test
scripts/build.sh
status=0
meson test -C build --num-processes 2 --print-errorlogs "$@" || status=$?
python3 scripts/count-tests.py build/meson-logs/testlog.json
exit $status
