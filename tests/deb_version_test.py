#!/usr/bin/python3
"""debian/changelog's newest version is meson's project version.

Usage: /usr/bin/python3 deb_version_test.py PATH/TO/debian/changelog VERSION

The version has one home, meson.build's project(version:); picoflowd
--version, picoflowctl --version, the man pages and /metrics' build info
take it from there. The package is native (debian/source/format), so its
version is exactly that one (debian/rules refuses to build otherwise).
"""

import re
import sys


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    path, version = sys.argv[1:]
    with open(path, encoding='utf-8') as f:
        first = f.readline()
    m = re.match(r'^picoflow \(([^)]+)\) ', first)
    if m is None:
        print('FAILED: %s: the first line names no picoflow version: %r' % (path, first))
        return 1
    if m.group(1) != version:
        print('FAILED: %s says %s, meson.build says %s: give debian/changelog a new entry for %s' %
              (path, m.group(1), version, version))
        return 1
    print('debian/changelog and meson.build: %s' % version)
    return 0


if __name__ == '__main__':
    sys.exit(main())
