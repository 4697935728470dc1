#!/bin/sh
# Cross-builds picoflow for ARCH after installing what is missing (cross/deps.sh):
#   cross/build.sh armhf|aarch64            build-ARCH: debugoptimized, with the tests
#   cross/build.sh armhf|aarch64 --release  build-bench-ARCH: bench/run.sh's native
#                                           options (-Os, LTO, NDEBUG, no tests)
# Configures each directory once; two jobs, like scripts/build.sh.
set -eu
cd "$(dirname "$0")/.."

usage() { echo "usage: cross/build.sh armhf|aarch64 [--release]" >&2; exit 2; }
arch=${1:-}
case "$arch" in armhf|aarch64) ;; *) usage ;; esac
shift
release=0
for a in "$@"; do
  case "$a" in --release) release=1 ;; *) usage ;; esac
done

cross/deps.sh "$arch"

if [ "$release" = 1 ]; then
  dir=build-bench-$arch
  set -- --buildtype=minsize -Db_lto=true -Db_ndebug=true -Dtests=false
else
  dir=build-$arch
  set -- --buildtype=debugoptimized
fi
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" --cross-file "cross/$arch.txt" "$@"
fi
ninja -C "$dir" -j2
