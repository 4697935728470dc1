#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/corpus/TARGET/, from the
inputs the project already has (run it again when they change):

* workflow_load: the original PicoFlow's examples (tests/compat) and examples/.
* cron: every cron expression quoted in tests/cron_test.cc, valid or not.
* rpc: the request blocks of docs/rpc.md (as tests/rpc_docs_test.py reads
  them), one connection each, and the whole document as one connection.
* daemon_config_file: config/picoflowd.yaml as shipped, with every setting
  uncommented, and each setting alone.

Inputs that once found a bug are seeds too, named `regression-WHAT`: this
script keeps them.

Usage: fuzz/seeds.py (from anywhere; it replaces the seeds it writes)
"""

import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from rpc_docs_test import parse_document  # noqa: E402  (the docs' own reader)

# A quoted string of 5 or 6 cron-like fields, or a macro.
CRON_RE = re.compile(r'"((?:[0-9*@/,?A-Za-z-]+[ \t]+){4,6}[0-9*/,?A-Za-z-]+|@[A-Za-z]+[^"]*)"')


def write_corpus(target, seeds):
    out = os.path.join(ROOT, 'fuzz', 'corpus', target)
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if not name.startswith('regression-'):
            os.remove(os.path.join(out, name))
    for name, content in sorted(seeds.items()):
        with open(os.path.join(out, name), 'w', encoding='utf-8') as f:
            f.write(content)
    print(f'wrote {len(seeds):3d} seeds to fuzz/corpus/{target}/')


def workflow_seeds():
    seeds = {}
    for pattern, prefix in (('tests/compat/picoflow-examples/*.yaml', 'compat-'),
                            ('examples/*.yaml', 'examples-')):
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            seeds[prefix + os.path.basename(path)] = open(path, encoding='utf-8').read()
    return seeds


def cron_seeds():
    text = open(os.path.join(ROOT, 'tests', 'cron_test.cc'), encoding='utf-8').read()
    found = sorted(set(m.group(1) for m in CRON_RE.finditer(text)))
    return {f'cron-{i:03d}': expr for i, expr in enumerate(found)}


def rpc_seeds():
    _, examples = parse_document(open(os.path.join(ROOT, 'docs', 'rpc.md'), encoding='utf-8').read())
    seeds = {}
    for e in examples:
        seeds[f'rpc-md-line{e.line_no:04d}'] = ''.join(r + '\n' for r in e.requests)
    seeds['rpc-md-all'] = ''.join(r + '\n' for e in examples for r in e.requests)
    return seeds


def config_seeds():
    shipped = open(os.path.join(ROOT, 'config', 'picoflowd.yaml'), encoding='utf-8').read()
    # A commented setting is `#key: value`, a list item of one `#  - item`.
    uncommented = re.sub(r'^#(\w+:|  - )', r'\1', shipped, flags=re.M)
    seeds = {'picoflowd.yaml': shipped, 'picoflowd-all-set.yaml': uncommented}
    for m in re.finditer(r'^(\w+):.*\n(?:  - .*\n)*', uncommented, flags=re.M):
        seeds[f'key-{m.group(1)}.yaml'] = m.group(0)
    return seeds


def main():
    write_corpus('workflow_load', workflow_seeds())
    write_corpus('cron', cron_seeds())
    write_corpus('rpc', rpc_seeds())
    write_corpus('daemon_config_file', config_seeds())


if __name__ == '__main__':
    main()
