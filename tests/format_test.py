#!/usr/bin/env python3
"""Every C++ file of the tree is laid out as .clang-format says.

Runs clang-format (Debian 12's, version 14) in dry-run mode over the sources
and lists each file it would change, with the first differing line. Fix with
`scripts/format.sh`.

Usage: format_test.py CLANG_FORMAT SOURCE_ROOT
"""
import difflib
import os
import subprocess
import sys

DIRS = ('common', 'protocol', 'picoflowd', 'picoflowctl', 'tests', 'bench')


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
    bad = 0
    checked = 0
    for path in sources(root):
        checked += 1
        with open(path, encoding='utf-8') as f:
            text = f.read()
        formatted = subprocess.run([clang_format, f'--style=file:{root}/.clang-format',
                                    f'--assume-filename={path}'],
                                   input=text, capture_output=True, text=True, check=True).stdout
        if formatted == text:
            continue
        bad += 1
        diff = difflib.unified_diff(text.splitlines(), formatted.splitlines(), lineterm='', n=0)
        hunk = [line for line in diff if line.startswith(('@@', '-', '+'))
                and not line.startswith(('---', '+++'))][:3]
        print(os.path.relpath(path, root) + ': not formatted; ' + ' | '.join(hunk))
    print(f'{checked} files checked, {bad} not formatted'
          + (' (run scripts/format.sh)' if bad else ''))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
