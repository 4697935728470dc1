#!/usr/bin/env python3
"""Which tables' pages one run writes to the store's WAL (docs/operations.md,
"SD cards"): the census behind the storage-write rows of bench/results.md.

Starts a picoflowd of its own (release build), runs the bench's 5-task
one-line chain `--warmup` times, then `--runs` times more, copies the
database and its WAL while no checkpoint has run in between, and counts the
WAL frames the measured runs appended by the table or index each page
belongs to (SQLite's dbstat). Keep warm-up + runs x ~45 frames under the
quiet checkpoint's 4,096 frames.
"""

import argparse
import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

WAL_HEADER = 32
FRAME_HEADER = 24


def wal_frames(path):
    """(page number, is commit) of every valid frame of the WAL at `path`."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < WAL_HEADER:
        return []
    page_size = struct.unpack('>I', data[8:12])[0]
    salt = data[16:24]
    frames = []
    off = WAL_HEADER
    while off + FRAME_HEADER + page_size <= len(data):
        page, commit_size = struct.unpack('>II', data[off:off + 8])
        if data[off + 8:off + 16] != salt:
            break  # left from before the last checkpoint reset
        frames.append((page, commit_size != 0))
        off += FRAME_HEADER + page_size
    return frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='build-bench')
    ap.add_argument('--warmup', type=int, default=10)
    ap.add_argument('--runs', type=int, default=50)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix='picoflow-census-')
    daemon = None
    try:
        work = os.path.join(root, 'tasks')
        os.makedirs(work)
        yaml = bench.write(os.path.join(work, 'wear.yaml'),
                           bench.workflow('wear', 5, 1, 'echo one line of output', True))
        daemon = bench.Daemon(os.path.abspath(args.build), root, 'census', log=False)
        daemon.ctl_run('submit', yaml)
        state = os.path.join(daemon.dir, 'state')
        db = next(os.path.join(state, n) for n in os.listdir(state) if n.endswith('.db'))
        bench.storage_writes(daemon, 'wear', args.warmup, 0)
        before = len(wal_frames(db + '-wal'))
        bench.storage_writes(daemon, 'wear', args.runs, 0)
        frames = wal_frames(db + '-wal')
        if len(frames) < before:
            raise SystemExit('census: a checkpoint ran during the measured runs; use fewer runs')
        copy = os.path.join(root, 'copy.db')
        shutil.copy(db, copy)
        shutil.copy(db + '-wal', copy + '-wal')
        conn = sqlite3.connect(copy)
        owner = {p: f'{n} ({t})' for p, n, t in
                 conn.execute('SELECT pageno, name, pagetype FROM dbstat')}
        conn.close()
        new = frames[before:]
        counts = collections.Counter(owner.get(p, 'page 1' if p == 1 else 'free/ptrmap')
                                     for p, _ in new)
        commits = sum(1 for _, c in new if c)
        print(f'{len(new) / args.runs:.2f} frames per run, {commits / args.runs:.2f} commits '
              f'per run, over {args.runs} runs after {args.warmup}')
        for name, n in counts.most_common():
            print(f'  {n / args.runs:6.2f}  {name}')
    finally:
        if daemon:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
