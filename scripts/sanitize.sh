#!/bin/sh
# The test suite under ASan+UBSan, and each fuzz target for 60 s from its
# seeds (docs/testing.md): installs what is missing (clang and its runtimes),
# configures (once) ./build-asan with clang, -Db_sanitize=address,undefined
# and -Dfuzz=true, builds it with two jobs and runs every test of it but the
# deb suite (meson's `sanitize` test setup, the default there); closes with
# "N passed, N failed". Arguments go to meson test (--suite fuzz, --no-suite fuzz).
# -O1 and line tables only (what a report needs) build it in a sixth less time
# than -O2 -g.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh --sanitize
if [ ! -f build-asan/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-asan -Doptimization=1 -Ddebug=true \
    -Dcpp_args=-gline-tables-only -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true
fi
ninja -C build-asan -j2
status=0
meson test -C build-asan --num-processes 2 --print-errorlogs "$@" || status=$?
python3 scripts/count-tests.py build-asan/meson-logs/testlog.json
exit $status
