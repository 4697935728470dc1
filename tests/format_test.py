#!/usr/bin/env python3
"""Every C++ file of the tree is laid out as .clang-format says.

Runs clang-format (Debian 12's, version 14) in dry-run mode over the sources
and lists each file it would change, with the first line it would change. Fix with
`scripts/format.sh`.

Usage: format_test.py CLANG_FORMAT SOURCE_ROOT
"""
import os
import subprocess
import sys

DIRS = ('common', 'protocol', 'picoflowd', 'picoflowctl', 'tests', 'bench', 'fuzz')


def sources(root):
    for top in DIRS:
        for dirpath, dirnames, files in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if d != 'compat')
            for name in sorted(files):
                if name.endswith(('.h', '.cc')):
                    yield os.path.join(dirpath, name)


def main():
    clang_format, root = sys.argv[1], sys.argv[2]
    if not os.path.exists(clang_format):
        print(f'clang-format not found ({clang_format}): install Debian\'s clang-format '
              '(scripts/deps.sh does)')
        return 1
    files = list(sources(root))
    # One process for the whole tree; each place it would change is reported
    # as FILE:LINE:COL: error: code should be clang-formatted [-Wclang-format-violations].
    done = subprocess.run([clang_format, '--dry-run', '--Werror', f'--style=file:{root}/.clang-format']
                          + files, capture_output=True, text=True)
    bad = sorted({line.split(':', 1)[0] for line in done.stderr.splitlines()
                  if 'clang-format-violations' in line})
    for path in bad:
        first = next(line for line in done.stderr.splitlines()
                     if line.startswith(path + ':') and 'violations' in line)
        print(os.path.relpath(path, root) + ': not formatted, first at ' +
              first.split(': error', 1)[0].rsplit(':', 2)[-2])
    if done.returncode != 0 and not bad:
        print(done.stderr)
        return 1
    print(f'{len(files)} files checked, {len(bad)} not formatted'
          + (' (run scripts/format.sh)' if bad else ''))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
