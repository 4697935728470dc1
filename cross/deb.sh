#!/bin/sh
# Builds picoflow's Debian packages (debian/) for ARCH from a clean copy of
# this tree: the files git knows, committed or not, without build directories.
#   cross/deb.sh amd64|armhf|arm64 [OUTDIR]
# The build machine's own architecture builds natively (`dpkg-buildpackage
# -b`), the others cross-build (`-aARCH -Pcross,nocheck`) with the toolchain
# and :ARCH libraries of cross/deps.sh. Installs what is missing first. The
# .deb files, .buildinfo and .changes land in OUTDIR (default build-deb-ARCH);
# `lintian OUTDIR/*.changes` checks them. DEB_BUILD_OPTIONS defaults to
# "parallel=2" (two jobs, like scripts/build.sh; natively the unit tests run
# unless it has nocheck).
set -eu
cd "$(dirname "$0")/.."

usage() { echo "usage: cross/deb.sh amd64|armhf|arm64 [OUTDIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
arch=$1
[ "$arch" = aarch64 ] && arch=arm64
native=$(dpkg --print-architecture)
case "$arch" in
  "$native") cross="" ;;
  armhf) cross=armhf triplet=arm-linux-gnueabihf ;;
  arm64) cross=aarch64 triplet=aarch64-linux-gnu ;;
  *) usage ;;
esac
out=${2:-build-deb-$arch}
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  { echo "cross/deb.sh: $(pwd) is not a git checkout (the copy is of the files git knows)" >&2; exit 1; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if [ -n "$cross" ]; then cross/deps.sh "$cross"; else scripts/deps.sh; fi
missing=""
for p in debhelper dpkg-dev fakeroot; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "picoflow: installing$missing"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# dpkg-buildpackage writes its results next to the source: a copy in OUTDIR.
rm -rf "$out"
mkdir -p "$out/src"
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - --ignore-failed-read -cf - | tar -C "$out/src" -xf -

set -- -b -us -uc
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}"
if [ -n "$cross" ]; then
  set -- "$@" -a"$arch" -Pcross,nocheck
  case " $DEB_BUILD_OPTIONS " in *" nocheck "*) ;; *) DEB_BUILD_OPTIONS="$DEB_BUILD_OPTIONS nocheck" ;; esac
  # libyaml-cpp-dev is not Multi-Arch: same in Debian 12, so its :ARCH copy
  # cannot be installed beside the native one; cross/deps.sh supplies what
  # the build takes from it. Nor is libhttp-parser-dev: the build takes only
  # its header, the same for every architecture (picoflowd loads the library
  # with dlopen), so the native copy serves. Any other unmet build
  # dependency is an error.
  unmet=$(cd "$out/src" && dpkg-checkbuilddeps -a"$arch" -Pcross,nocheck 2>&1 |
    sed -n 's/.*Unmet build dependencies: //p' | tr ' ' '\n' |
    grep -v -e '^libyaml-cpp-dev' -e '^libhttp-parser-dev' |
    tr '\n' ' ' || true)
  if [ -n "${unmet% }" ]; then
    echo "picoflow: unmet build dependencies for $arch: $unmet" >&2
    exit 1
  fi
  set -- "$@" -d
  # dpkg-architecture checks the host triplet against $CC's.
  export CC="$triplet-gcc" CXX="$triplet-g++"
fi
(cd "$out/src" && dpkg-buildpackage "$@")
rm -rf "$out/src"
ls -l "$out"/*.deb
