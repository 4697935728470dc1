#!/bin/sh
# Installs what cross-building and emulated testing for ARCH (armhf | aarch64)
# needs, if anything is missing: the native packages (scripts/deps.sh), Debian's
# cross compiler, qemu-user-static and the multiarch :armhf / :arm64 -dev
# packages. Uses sudo when not root. A second run installs nothing.
set -eu
cd "$(dirname "$0")/.."

case "${1:-}" in
  armhf) arch=armhf triplet=arm-linux-gnueabihf ;;
  aarch64) arch=arm64 triplet=aarch64-linux-gnu ;;
  *) echo "usage: cross/deps.sh armhf|aarch64" >&2; exit 2 ;;
esac
native=$(dpkg --print-architecture)

scripts/deps.sh

HOST_PACKAGES="g++-$triplet qemu-user-static"
# libyaml-cpp-dev is not Multi-Arch: same in Debian 12: its :armhf copy would
# replace the native one, so only its runtime library is installed and
# yaml_cpp_overlay below supplies the link symlink and the .pc file. Nor is
# libhttp-parser-dev: only its runtime library is installed (picoflowd loads
# it with dlopen; the build takes the native copy's header, the same for
# every architecture).
FOREIGN_PACKAGES="libc6-dev libstdc++6 libuv1-dev libsqlite3-dev libspdlog-dev libfmt-dev
libssh2-1-dev libcurl4-openssl-dev libhowardhinnant-date-dev libyaml-cpp0.7 libhttp-parser2.9
libmosquitto-dev pkgconf"
overlay=/usr/local/lib/$triplet

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

# Restricts the Debian security suite to the native architecture: the mirror
# serves no foreign-architecture indices there (apt-get update then fails for
# every later caller, scripts/deps.sh included), so foreign packages come from
# the main suites and the native copies are matched to them (match_versions).
restrict_security() {
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    grep -q 'debian-security' "$f" || continue
    # deb822: a stanza naming debian-security without Architectures: gets one.
    awk -v a="$native" '
      function flush() { if (s != "") { if (sec && !has) s = s "Architectures: " a "\n"; printf "%s", s } s = ""; sec = has = 0 }
      /^[ \t]*$/ { flush(); print; next }
      { s = s $0 "\n"; if ($0 ~ /^URIs:.*debian-security/) sec = 1; if ($0 ~ /^Architectures:/) has = 1 }
      END { flush() }' "$f" >/tmp/picoflow-sources.$$
    if ! cmp -s "$f" /tmp/picoflow-sources.$$; then
      echo "picoflow: $f: debian-security limited to $native"
      $SUDO cp /tmp/picoflow-sources.$$ "$f"
    fi
    rm -f /tmp/picoflow-sources.$$
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    if grep -Eq '^deb[ \t]+[a-z]+://[^ ]*debian-security' "$f"; then
      echo "picoflow: $f: debian-security limited to $native"
      $SUDO sed -i -E "s|^deb([ \t]+[a-z]+://[^ ]*debian-security)|deb [arch=$native]\1|" "$f"
    fi
  done
}

# Multi-Arch: same packages must have one version on every architecture. The
# native copies of those the foreign packages pull in are held at (or moved
# down or up to) the foreign candidate version, else apt would upgrade them
# from the security suite; prints the pkg:native=VERSION arguments.
match_versions() {
  # shellcheck disable=SC2086
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $foreign_args 2>/dev/null |
    sed -n "s/^\([a-z0-9][a-z0-9.+-]*\):$arch\$/\1:$native/p" | sort -u)
  # shellcheck disable=SC2086
  same=$(dpkg-query -W -f='${Package} ${Multi-Arch} ${db:Status-Abbrev}\n' $closure 2>/dev/null |
    awk '$2 == "same" && $3 == "ii" { print $1 }' || true)
  [ -n "$same" ] || return 0
  for p in $same; do echo "$p:$native $p:$arch"; done | xargs apt-cache policy |
    awk -v n="$native" -v a="$arch" '
      /^[^ ].*:$/ { k = substr($0, 1, length($0) - 1); if (k !~ /:/) k = k ":" n; next }
      /^  Installed:/ { inst[k] = $2 }
      /^  Candidate:/ { cand[k] = $2 }
      END {
        for (k in cand) {
          if (k !~ ":" a "$") continue
          p = substr(k, 1, length(k) - length(a) - 1); w = cand[k]
          if (w != "(none)" && (inst[p ":" n] != w || cand[p ":" n] != w)) print p ":" n "=" w
        }
      }' | sort
}

# Installed packages built from the same source as a pinned one often depend
# on its exact version (libssl-dev on libssl3): they move along when that
# version exists for them. Prints more pkg=VERSION arguments.
siblings() {
  dpkg-query -W -f='${Package}:${Architecture} ${source:Package} ${db:Status-Abbrev}\n' |
    awk -v pins="$1" -v n="$native" '
      BEGIN { c = split(pins, list, " "); for (i = 1; i <= c; i++) { split(list[i], pv, "="); want[pv[1]] = pv[2] } }
      $3 == "ii" && ($1 ~ ":" n "$" || $1 ~ ":all$") { src[$1] = $2; pkgs[NR] = $1 }
      END {
        for (p in want) by_src[src[p]] = want[p]
        for (i in pkgs) { q = pkgs[i]; if ((src[q] in by_src) && !(q in want)) print q "=" by_src[src[q]] }
      }' | sed 's/:all=/=/' | sort | while read -r q; do
        if apt-cache show "$q" >/dev/null 2>&1; then echo "$q"; fi
      done
}

# The link symlink and pkg-config file of yaml-cpp for the foreign
# architecture, derived from the native ones, under /usr/local.
yaml_cpp_overlay() {
  for lib in /usr/lib/"$triplet"/libyaml-cpp.so.*; do break; done  # the soname link sorts first
  [ -e "$lib" ] || { echo "picoflow: no libyaml-cpp.so.* in /usr/lib/$triplet" >&2; exit 1; }
  $SUDO mkdir -p "$overlay/pkgconfig"
  $SUDO ln -sf "$lib" "$overlay/libyaml-cpp.so"
  sed "s|^libdir=.*|libdir=$overlay|" "$(pkg-config --variable=pcfiledir yaml-cpp)/yaml-cpp.pc" \
    >/tmp/picoflow-yaml-cpp.pc.$$
  $SUDO cp /tmp/picoflow-yaml-cpp.pc.$$ "$overlay/pkgconfig/yaml-cpp.pc"
  rm -f /tmp/picoflow-yaml-cpp.pc.$$
}

missing=""
dpkg --print-foreign-architectures | grep -qx "$arch" || missing="architecture:$arch"
for p in $HOST_PACKAGES; do installed "$p" || missing="$missing $p"; done
for p in $FOREIGN_PACKAGES; do installed "$p:$arch" || missing="$missing $p:$arch"; done
if [ -z "$missing" ] && [ -e "$overlay/libyaml-cpp.so" ] && [ -f "$overlay/pkgconfig/yaml-cpp.pc" ]; then
  exit 0
fi

if [ -n "$missing" ]; then
  echo "picoflow: installing for $arch:$missing"
  $SUDO dpkg --add-architecture "$arch"
  restrict_security
  $SUDO apt-get update -q
  foreign_args=""
  for p in $FOREIGN_PACKAGES; do foreign_args="$foreign_args $p:$arch"; done
  pins=$(match_versions)
  if [ -n "$pins" ]; then
    pins="$pins $(siblings "$pins")"
    # shellcheck disable=SC2086
    echo "picoflow: matching native versions to $arch:" $pins
  fi
  # --no-remove: abort rather than let a foreign package replace a native one.
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends --no-remove --allow-downgrades \
    $HOST_PACKAGES $foreign_args $pins
fi
yaml_cpp_overlay
