#!/bin/sh
# picoflow's benchmark: installs what is missing, builds an optimised release
# in build-bench (-Os, LTO, --gc-sections, NDEBUG), runs every measurement against it
# on Unix sockets in a temporary directory, prints the table and writes
# bench/results.md. `--quick`: fewer rounds and shorter windows (< 1 minute
# once built), written to bench/results-quick.md (not kept in git). ARM sizes are included when `cross/build.sh ARCH --release`
# has built build-bench-ARCH.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
# A release as it would ship: -Os, LTO, NDEBUG (asserts off), no tests.
options="--buildtype=minsize -Db_lto=true -Db_ndebug=true -Dtests=false"
if [ ! -f build-bench/build.ninja ]; then
  # shellcheck disable=SC2086
  meson setup build-bench $options >/dev/null
else
  # shellcheck disable=SC2086
  meson configure build-bench $options >/dev/null
fi
ninja -C build-bench -j2 >/dev/null
exec python3 bench/bench.py --build build-bench "$@"
