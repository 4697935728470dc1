#!/bin/sh
# README's test command: install what is missing, build, run every test, and
# close with a plain "N passed, N failed" line read from meson's test log.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
status=0
meson test -C build --num-processes 2 --print-errorlogs "$@" || status=$?
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
