#!/bin/sh
# Installs the Debian 12 packages picoflow needs to build and test, if any are
# missing (the last line: what building and checking the Debian packages
# takes, tests/deb_test.py). Uses sudo when not root. Safe to run repeatedly.
#
# Usage: scripts/deps.sh [--test | --sanitize]
#   --test      also the browser the web page's tests drive (tests/web_browser_test.py):
#               Debian's chromium, chromium-driver and python3-selenium
#   --sanitize  also what the sanitizer and fuzz build takes (scripts/sanitize.sh,
#               docs/testing.md): clang, its ASan/UBSan/libFuzzer runtimes and
#               llvm-symbolizer, which turns a report's addresses into lines
set -eu

PACKAGES="g++ meson ninja-build pkg-config
libuv1-dev nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev libspdlog-dev
libssh2-1-dev libcurl4-openssl-dev libhttp-parser-dev libhowardhinnant-date-dev libcli11-dev
libmosquitto-dev mosquitto mosquitto-clients
doctest-dev tzdata python3 python3-croniter python3-aiosmtpd procps sqlite3 openssl systemd
openssh-server openssh-client prometheus clang-format
debhelper dpkg-dev fakeroot lintian"
case "${1:-}" in
  --test) PACKAGES="$PACKAGES chromium chromium-driver python3-selenium" ;;
  --sanitize) PACKAGES="$PACKAGES clang libclang-rt-14-dev llvm" ;;
  "") ;;
  *) echo "usage: scripts/deps.sh [--test | --sanitize]" >&2; exit 2 ;;
esac

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# CI asks for a fresh package index even when nothing seems missing.
if [ -z "$missing" ] && [ "${PICOFLOW_APT_UPDATE:-0}" != 1 ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
if [ -n "$missing" ]; then
  echo "picoflow: installing$missing"
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends $missing
fi
