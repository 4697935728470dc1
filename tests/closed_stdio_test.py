#!/usr/bin/python3
"""picoflowd started with fds 0, 1 and 2 closed (as some init scripts and
`cmd <&- >&- 2>&-` do) puts /dev/null there before it opens anything, so its
own files (socket, event loop, store, task pipes) never take those numbers
and its log lines go nowhere instead of into one of them; a task's output is
captured as the task wrote it, and the daemon answers on its socket.

Usage: /usr/bin/python3 closed_stdio_test.py PICOFLOWD PICOFLOWCTL
Exit 0 only if all is well; the daemon and its directory are always removed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from exec_wrapper import EMULATED, command

# Every wait's deadline: it only ends a hang, and asserts no speed.
TIMEOUT_S = 60

WORKFLOW = """name: stdio
tasks:
  - name: speak
    type: shell
    config: {command: "echo out; echo err >&2"}
"""


def close_stdio():
    for fd in (0, 1, 2):
        os.close(fd)


def main(picoflowd, picoflowctl):
    if EMULATED:
        # The emulator, not picoflowd, would start with 0-2 closed (and take them).
        print('SKIP: under emulation the closed fds would be the emulator\'s')
        return 77
    root = tempfile.mkdtemp(prefix='pfstdio-')
    sock = os.path.join(root, 's.sock')
    ctl = command(picoflowctl) + ['--socket', sock]
    daemon = subprocess.Popen(
        command(picoflowd) + ['--config', '', '--socket', sock, '--state-dir',
                              os.path.join(root, 'state'), '--log-level', 'debug'],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=close_stdio)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while subprocess.run(ctl + ['daemon', 'version'], capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                print('picoflowd did not come up with its stdio closed', file=sys.stderr)
                return 1
            time.sleep(0.05)
        path = os.path.join(root, 'stdio.yaml')
        with open(path, 'w') as f:
            f.write(WORKFLOW)
        for _ in range(3):  # several runs: several pipes, log lines, store writes
            subprocess.run(ctl + ['run', path, '--wait'], check=True, capture_output=True,
                           timeout=TIMEOUT_S)
        # `logs` prints a task's stdout lines as "TASK | LINE", stderr as "TASK ! LINE",
        # under a line saying how the task ended.
        out = subprocess.run(ctl + ['logs', 'stdio'], check=True, capture_output=True,
                             text=True, timeout=TIMEOUT_S).stdout
        lines = out.splitlines()
        if lines[:1] != ["--- task 'speak': succeeded ---"] or \
                sorted(lines[1:]) != ['speak ! err', 'speak | out']:
            print(f'captured output of the last run: {out!r}', file=sys.stderr)
            return 1
        # The daemon's own files (socket, event loop, store, pipes) must not sit on
        # 0-2, where its log lines and anything writing to "stdout" would land.
        targets = [os.readlink(f'/proc/{daemon.pid}/fd/{fd}') for fd in (0, 1, 2)]
        if targets != ['/dev/null'] * 3:
            print(f'fds 0-2 of the daemon: {targets!r}', file=sys.stderr)
            return 1
        status = json.loads(subprocess.run(ctl + ['--json', 'daemon', 'status'], check=True,
                                           capture_output=True, text=True).stdout)
        if status.get('pid') != daemon.pid:
            print(f'daemon.status: {status!r}', file=sys.stderr)
            return 1
        print('ok: output captured as written, daemon answering, with fds 0-2 closed at start')
        return 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
