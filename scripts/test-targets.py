#!/usr/bin/env python3
"""Prints, one a line, the ninja targets (paths relative to BUILD) that the
tests of the given suites need: each test's own program when this build makes
it, the targets in its arguments and those it `depends` on. `ninja -C BUILD`
with them builds what those tests run and nothing else (scripts/sanitize.sh
--ci). A suite is named as in meson.build (`unit`) or with the project
(`picoflow:unit`). Exits 1 when no test is in those suites.

Usage: scripts/test-targets.py BUILD SUITE...
"""

import json
import os
import subprocess
import sys


def introspect(build, what):
    out = subprocess.run(['meson', 'introspect', build, '--' + what],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main(build, suites):
    build_abs = os.path.realpath(build)
    outputs = {}  # target id -> its files, relative to the build directory
    by_file = {}  # a target's file (absolute) -> that file, relative
    for t in introspect(build, 'targets'):
        rel = [os.path.relpath(f, build_abs) for f in t['filename']]
        outputs[t['id']] = rel
        for f, r in zip(t['filename'], rel):
            by_file[os.path.realpath(f)] = r
    wanted = set(suites)
    targets, tests = [], 0
    for test in introspect(build, 'tests'):
        names = set(test['suite']) | {s.split(':', 1)[-1] for s in test['suite']}
        if not names & wanted:
            continue
        tests += 1
        needed = [by_file.get(os.path.realpath(a)) for a in test['cmd'] if isinstance(a, str)]
        for dep in test.get('depends', []):
            needed += outputs.get(dep, [])
        for n in needed:
            if n and n not in targets:
                targets.append(n)
    if not tests:
        print(f'test-targets: no test in suite(s) {" ".join(suites)} of {build}',
              file=sys.stderr)
        return 1
    print('\n'.join(targets))
    return 0


if __name__ == '__main__':
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
