#!/usr/bin/env python3
"""The layering rule of docs/architecture.md, checked on every source file.

Each file belongs to the layer of its folder. A file may include (with
`#include "..."`) a header of its own layer or of a layer below it:

    common  <  protocol  <  util  <  {store, exec}  <  engine  <  sched  <  rpc  <  {http, mqtt}  <  picoflowd/

store and exec are siblings: neither includes the other; so are http and
mqtt (the MQTT client includes only util and what is below it). The executor
modules (picoflowd/exec/http, picoflowd/exec/ssh) are leaves: they include
what exec may, and only their own folder includes them. picoflowctl includes
only common and protocol. common and protocol do not include libuv.

Before checking the tree, the checker proves it can fail: on a copy of the
tree with an upward include added, it must report exactly that edge.

Usage: layering_test.py SOURCE_ROOT
"""
import os
import re
import shutil
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

# Layer -> rank; a layer may include ranks below its own, and itself.
RANKS = {
    'common': 0,
    'protocol': 1,
    'util': 2,
    'store': 3,
    'exec': 3,
    'engine': 4,
    'sched': 5,
    'rpc': 6,
    'http': 7,
    'mqtt': 7,
    'daemon': 8,
}
MODULES = ('picoflowd/exec/http', 'picoflowd/exec/ssh')
SOURCE_DIRS = ('common', 'protocol', 'picoflowd', 'picoflowctl')


def layer_of(path):
    """The layer of a repository-relative path, or None if it has none."""
    parts = path.split('/')
    if parts[0] in ('common', 'protocol', 'picoflowctl'):
        return parts[0]
    if parts[0] != 'picoflowd':
        return None
    for module in MODULES:
        if path.startswith(module + '/'):
            return module
    if len(parts) > 2 and parts[1] in RANKS:
        return parts[1]
    return 'daemon'


def allowed(src_layer, dst_layer):
    """True if a file of src_layer may include a header of dst_layer."""
    if dst_layer in MODULES:
        return src_layer == dst_layer
    if src_layer in MODULES:
        src_layer = 'exec'
    if src_layer == 'picoflowctl' or dst_layer == 'picoflowctl':
        return dst_layer in ('common', 'protocol', src_layer)
    if dst_layer not in RANKS or src_layer not in RANKS:
        return False
    return src_layer == dst_layer or RANKS[dst_layer] < RANKS[src_layer]


def violations(root):
    """Every include that breaks the rule, as printable lines."""
    found = []
    for top in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith(('.h', '.cc')):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                src = layer_of(path)
                with open(os.path.join(root, path), encoding='utf-8') as f:
                    text = f.read()
                for m in INCLUDE.finditer(text):
                    line = text.count('\n', 0, m.start()) + 1
                    kind, target = m.group(1), m.group(2)
                    if kind == '<':
                        if target == 'uv.h' and src in ('common', 'protocol', 'picoflowctl'):
                            found.append(f'{path}:{line}: {src} includes <uv.h> (no libuv there)')
                        continue
                    dst = layer_of(target)
                    if dst is None:
                        continue
                    if target.endswith('/module_paths.h'):  # generated into exec's build folder
                        dst = 'exec'
                    if not allowed(src, dst):
                        found.append(f'{path}:{line}: {src} includes {target} ({dst}): '
                                     f'an edge the layering rule forbids')
    return found


def self_check(root):
    """The checker reports an upward edge and a sibling edge added to a copy."""
    cases = [
        ('picoflowd/engine/run.cc', 'picoflowd/rpc/rpc_server.h'),
        ('picoflowd/store/store.h', 'picoflowd/exec/executor.h'),
        ('picoflowd/rpc/rpc_methods.cc', 'picoflowd/daemon.h'),
        ('picoflowd/daemon.cc', 'picoflowd/exec/http/executor_http.h'),
        ('common/dag.cc', 'picoflowd/util/logging.h'),
        ('picoflowd/mqtt/mqtt_client.cc', 'picoflowd/http/http_server.h'),
        ('picoflowd/http/http_server.cc', 'picoflowd/mqtt/mqtt_client.h'),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for top in SOURCE_DIRS:
            shutil.copytree(os.path.join(root, top), os.path.join(tmp, top))
        if violations(tmp):
            return ['the copy of the tree has violations before anything was added']
        problems = []
        for src, header in cases:
            path = os.path.join(tmp, src)
            with open(path, encoding='utf-8') as f:
                original = f.read()
            with open(path, 'w', encoding='utf-8') as f:
                f.write(f'#include "{header}"\n' + original)
            found = violations(tmp)
            if len(found) != 1 or not found[0].startswith(f'{src}:1: '):
                problems.append(f'adding #include "{header}" to {src} was reported as {found}')
            with open(path, 'w', encoding='utf-8') as f:
                f.write(original)
        return problems


def main():
    root = sys.argv[1]
    problems = self_check(root)
    for p in problems:
        print(f'checker broken: {p}')
    found = violations(root)
    for v in found:
        print(v)
    if problems or found:
        print(f'{len(found)} include(s) break the layering rule of docs/architecture.md')
        return 1
    print('every include follows the layering rule')
    return 0


if __name__ == '__main__':
    sys.exit(main())
