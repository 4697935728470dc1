#!/usr/bin/env python3
"""Prints "N passed, N failed" (", N skipped" when some were) over one or more
meson test logs (BUILD/meson-logs/testlog.json): the closing line of
scripts/test.sh, cross/test.sh and .ci/run. A missing log counts as a failed
test, and the exit status is then 1.

Usage: scripts/count-tests.py TESTLOG.json...
"""

import json
import sys


def main(paths):
    passed = failed = skipped = 0
    status = 0
    for path in paths:
        try:
            with open(path, encoding='utf-8') as log:
                lines = log.readlines()
        except OSError as e:
            print('count-tests: %s' % e, file=sys.stderr)
            failed += 1
            status = 1
            continue
        for line in lines:
            result = json.loads(line).get('result')
            if result in ('OK', 'EXPECTEDFAIL'):
                passed += 1
            elif result == 'SKIP':
                skipped += 1
            else:
                failed += 1
    print(f'{passed} passed, {failed} failed' + (f', {skipped} skipped' if skipped else ''))
    return status


if __name__ == '__main__':
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
