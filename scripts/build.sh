#!/bin/sh
# Configures (once) and builds picoflow in ./build with two jobs.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=debugoptimized
fi
ninja -C build -j2
