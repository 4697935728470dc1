#!/bin/sh
# picoflow's benchmark: installs what is missing, builds an optimised release
# in build-bench (-Os, LTO, --gc-sections), runs every measurement against it
# on Unix sockets in a temporary directory, prints the table and writes
# bench/results.md. `--quick`: fewer rounds and shorter windows (< 1 minute
# once built). ARM sizes are included when `cross/build.sh ARCH --release`
# has built build-bench-ARCH.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ ! -f build-bench/build.ninja ]; then
  meson setup build-bench --buildtype=minsize -Db_lto=true -Dtests=false >/dev/null
fi
ninja -C build-bench -j2 >/dev/null
exec python3 bench/bench.py --build build-bench "$@"
