#!/bin/sh
# The test suite under ASan+UBSan, and each fuzz target from its seeds
# (docs/testing.md): installs what is missing (clang and its runtimes),
# configures (once) ./build-asan with clang, -Db_sanitize=address,undefined
# and -Dfuzz=true, builds it with two jobs and runs its tests with meson's
# `sanitize` test setup (the default there); closes with "N passed, N failed".
# -O1 and line tables only (what a report needs) build it in a sixth less time
# than -O2 -g.
#
# Usage: scripts/sanitize.sh [MESON-TEST-ARGS...]
#   builds everything and runs every test but the deb suite, each fuzz target
#   for 60 s; arguments go to meson test (--suite fuzz, --no-suite fuzz).
# Usage: scripts/sanitize.sh --ci
#   what CI (.ci/run) runs: builds only the programs of the unit and fuzz
#   suites' tests (scripts/test-targets.py), runs the unit suite (log
#   build-asan/meson-logs/unitlog.*), then each fuzz target for 15 s
#   (fuzzlog.*); the closing line counts both logs.
set -eu
cd "$(dirname "$0")/.."
ci=0
if [ "${1:-}" = --ci ]; then
  ci=1
  shift
  if [ $# -gt 0 ]; then
    echo "usage: scripts/sanitize.sh --ci (no other arguments)" >&2
    exit 2
  fi
fi
scripts/deps.sh --sanitize
if [ ! -f build-asan/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-asan -Doptimization=1 -Ddebug=true \
    -Dcpp_args=-gline-tables-only -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true
fi
status=0
if [ $ci = 0 ]; then
  ninja -C build-asan -j2
  meson test -C build-asan --num-processes 2 --print-errorlogs "$@" || status=$?
  python3 scripts/count-tests.py build-asan/meson-logs/testlog.json
  exit $status
fi

targets=$(python3 scripts/test-targets.py build-asan unit fuzz)
# shellcheck disable=SC2086 # one target a word
ninja -C build-asan -j2 $targets
rm -f build-asan/meson-logs/unitlog.json build-asan/meson-logs/fuzzlog.json
meson test -C build-asan --no-rebuild --num-processes 2 --print-errorlogs \
  --suite unit --logbase unitlog || status=$?
# The fuzz tests' own -max_total_time=60 (fuzz/meson.build) comes first on
# their command line; libFuzzer takes the last value of a flag.
meson test -C build-asan --no-rebuild --num-processes 2 --print-errorlogs \
  --suite fuzz --test-args=-max_total_time=15 --logbase fuzzlog || status=$?
python3 scripts/count-tests.py build-asan/meson-logs/unitlog.json \
  build-asan/meson-logs/fuzzlog.json || status=1
exit $status
