#!/usr/bin/python3
"""The soak of issue 14: thousands of runs leave RSS, fds and zombies flat.

A real picoflowd (a temporary socket and state directory) gets a 3-task
workflow (`first` and `second`, `true` both, `second` depending on `first`;
`say` printing one line) and runs it RUNS times (--runs N, default 2,000),
at most 4 runs in flight: 4 connections, each starting one run at a time with
run.start `follow` (raw JSON-RPC) and reading its stream to the result. The
first WARMUP (200; half the runs if that is fewer) are a warm-up; then the
daemon's open fds (/proc/PID/fd, counted while one probe connection is its
only one) and its RSS (VmRSS of /proc/PID/status) are taken, and again after
the rest. The default retention (1,000 runs per workflow) deletes the oldest
runs as the soak goes past it, so the store's pruning is soaked too.

Checked:
* every run's result is `succeeded`, every run id is new, and each run's
  stream carried the `say` task's line once (a run.output "soak line\\n");
* the open fds after all runs equal those after the warm-up;
* the daemon has no child process left at the end, and no zombie child
  (/proc/*/stat with its pid as ppid and state Z);
* RSS after all runs minus RSS after the warm-up is under RSS_GROWTH_MIB
  (8 MiB). Measured here (Debian 12, x86_64, this build): 8.8 MiB after the
  warm-up, 9.5 MiB after 2,000 runs (+0.7 MiB), and +0.6 MiB after 4,000
  (it levels off: no growth per run), so the bound leaves a margin of more
  than 10x while a leak of 5 KiB a run (8 MiB over the 1,800 runs after the
  warm-up) fails. Not checked when picoflowd is built with AddressSanitizer
  (build-asan; the line says so): its quarantine keeps freed memory (up to
  256 MiB), so RSS grows with what was allocated, not kept (+60 MiB over
  the 1,800 runs there; tests/sanitizers.py). The other checks still run.
Both RSS figures and the fds are printed, and runs/s as information only: no
speed is asserted. 2,000 runs took 19 to 28 s here (70 to 110 runs/s, on a busy
2-core machine), so the default stays 2,000.

Every wait has a deadline that only ends a hang. Under an emulator (cross
tests) the /proc figures are the emulator's: the test skips (77). Usage:
  soak_test.py PICOFLOWD PICOFLOWCTL [--runs N]
"""

import argparse
import ctypes
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from exec_wrapper import EMULATED, command  # noqa: E402
from sanitizers import address_sanitized  # noqa: E402

DEADLINE_S = 120        # ends a hang: no answer nor progress for this long
IN_FLIGHT = 4
WARMUP = 200
RSS_GROWTH_MIB = 8
LINE = 'soak line\n'

WORKFLOW = """name: soak
config: { retry_default: 0 }
tasks:
  - name: first
    type: shell
    config: { command: "true" }
  - name: second
    type: shell
    depends_on: [first]
    config: { command: "true" }
  - name: say
    type: shell
    config: { command: "echo soak line" }
"""


class Failed(Exception):
    pass


def die_with_parent():
    # The daemon must not outlive a test that is killed itself.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def line(rid, method, params):
    return (json.dumps({'jsonrpc': '2.0', 'id': rid, 'method': method, 'params': params})
            + '\n').encode()


def call(path, method, params=None):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(DEADLINE_S)
        s.connect(path)
        s.sendall(line(1, method, params or {}))
        reply = json.loads(s.makefile('rb').readline())
    if 'result' not in reply:
        raise Failed(f'{method}: {reply}')
    return reply['result']


class Runner:
    """One connection that starts a run with `follow` and reads it to its end."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE_S)
        self.sock.connect(path)
        self.sock.sendall(line(0, 'daemon.version', {'protocol': 1, 'client': 'soak_test'}))
        self.sock.setblocking(False)
        self.buf = b''
        self.rid = 0
        self.busy = False
        self.run_id = None
        self.lines_said = 0

    def start(self):
        self.rid += 1
        self.busy = True
        self.run_id = None
        self.lines_said = 0
        self.sock.setblocking(True)
        self.sock.sendall(line(self.rid, 'run.start', {'workflow': 'soak', 'follow': True}))
        self.sock.setblocking(False)

    def read(self):
        """The messages that arrived; raises at EOF."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return []
        if not data:
            raise Failed('picoflowd closed a runner connection')
        self.buf += data
        *lines, self.buf = self.buf.split(b'\n')
        return [json.loads(x) for x in lines if x]

    def close(self):
        self.sock.close()


def soak(path, runs, results):
    """Runs `runs` runs, IN_FLIGHT at a time; appends (run id, status, lines said)."""
    sel = selectors.DefaultSelector()
    runners = [Runner(path) for _ in range(min(IN_FLIGHT, runs))]
    started = 0
    try:
        for r in runners:
            sel.register(r.sock, selectors.EVENT_READ, r)
            r.start()
            started += 1
        last_progress = time.monotonic()
        while any(r.busy for r in runners):
            events = sel.select(timeout=1.0)
            if not events and time.monotonic() - last_progress > DEADLINE_S:
                raise Failed(f'no progress for {DEADLINE_S} s ({len(results)} runs ended)')
            for key, _ in events:
                r = key.data
                for msg in r.read():
                    if msg.get('method') == 'run.started':
                        r.run_id = msg['params']['run_id']
                    elif msg.get('method') == 'run.output':
                        if msg['params']['task'] == 'say' and msg['params']['data'] == LINE:
                            r.lines_said += 1
                    elif msg.get('id') == 0:
                        if 'result' not in msg:
                            raise Failed(f'daemon.version: {msg}')
                    elif msg.get('id') == r.rid:
                        if 'result' not in msg:
                            raise Failed(f'run.start: {msg}')
                        result = msg['result']
                        if result['run_id'] != r.run_id:
                            raise Failed(f'run.start result {result} after run.started of run '
                                         f'{r.run_id}')
                        results.append((result['run_id'], result['status'], r.lines_said))
                        last_progress = time.monotonic()
                        r.busy = False
                        if started < runs:
                            r.start()
                            started += 1
    finally:
        sel.close()
        for r in runners:
            r.close()


class Daemon:
    def __init__(self, picoflowd, root):
        self.sock = os.path.join(root, 'pf.sock')
        self.env = dict(os.environ, HOME=root, XDG_CONFIG_HOME=os.path.join(root, 'config'),
                        XDG_STATE_HOME=os.path.join(root, 'xstate'),
                        XDG_RUNTIME_DIR=os.path.join(root, 'xrun'))
        for d in ('config', 'xstate', 'xrun'):
            os.makedirs(os.path.join(root, d), mode=0o700)
        with open(os.path.join(root, 'daemon.log'), 'wb') as log:
            self.proc = subprocess.Popen(
                command(picoflowd) + ['--config', '', '--socket', self.sock,
                                      '--state-dir', os.path.join(root, 'state')],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        end = time.monotonic() + DEADLINE_S
        while True:
            try:
                call(self.sock, 'daemon.version', {'protocol': 1})
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise Failed('picoflowd did not come up')
                time.sleep(0.05)

    def quiet(self):
        """(open fds, RSS) once no run is active and a probe is its only connection."""
        end = time.monotonic() + DEADLINE_S
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(DEADLINE_S)
            probe.connect(self.sock)
            replies = probe.makefile('rb')
            while True:
                probe.sendall(line('probe', 'daemon.status', {}))
                status = json.loads(replies.readline())['result']
                if status['connections'] == 1 and status['active_runs'] == 0:
                    return len(os.listdir(f'/proc/{self.pid}/fd')), rss(self.pid)
                if time.monotonic() > end:
                    raise Failed(f'the daemon does not settle: {status}')
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def rss(pid):
    with open(f'/proc/{pid}/status') as f:
        for text in f:
            if text.startswith('VmRSS:'):
                return int(text.split()[1]) * 1024
    raise Failed('no VmRSS')


def children(pid):
    """{child pid: state} of the daemon's child processes."""
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def check(root, picoflowd, picoflowctl, runs):
    d = Daemon(picoflowd, root)
    try:
        wf = os.path.join(root, 'soak.yaml')
        with open(wf, 'w') as f:
            f.write(WORKFLOW)
        r = subprocess.run(command(picoflowctl) + ['--socket', d.sock, 'submit', wf],
                           capture_output=True, text=True, env=d.env, timeout=DEADLINE_S)
        if r.returncode != 0:
            raise Failed(f'picoflowctl submit: {r.stdout} {r.stderr}')
        warmup = min(WARMUP, runs // 2)
        results = []
        soak(d.sock, warmup, results)
        fds_warm, rss_warm = d.quiet()
        t0 = time.monotonic()
        soak(d.sock, runs - warmup, results)
        elapsed = time.monotonic() - t0
        # Connections and runs end asynchronously: wait (a deadline only ends a
        # hang) for the fds to come back to the warm-up's count.
        end = time.monotonic() + DEADLINE_S
        while True:
            fds_end, rss_end = d.quiet()
            if fds_end == fds_warm or time.monotonic() > end:
                break
            time.sleep(0.2)
        # Every run has ended, so each task process has been waited for: any
        # child left is a leak; a zombie one was never reaped.
        end = time.monotonic() + DEADLINE_S
        while True:
            left = children(d.pid)
            if not left or time.monotonic() > end:
                break
            time.sleep(0.2)
        if d.proc.poll() is not None:
            raise Failed(f'picoflowd exited ({d.proc.returncode})')
    finally:
        d.stop()

    problems = []
    bad = [(r, s, n) for r, s, n in results if s != 'succeeded' or n != 1]
    if len(results) != runs:
        problems.append(f'{len(results)} runs ended, not {runs}')
    if bad:
        problems.append(f'{len(bad)} runs did not succeed with one line said, e.g. '
                        f'(run, status, lines) {bad[:5]}')
    if len({r for r, _, _ in results}) != len(results):
        problems.append('a run id was given twice')
    if fds_end != fds_warm:
        problems.append(f'open fds: {fds_warm} after the warm-up, {fds_end} at the end')
    zombies = sorted(p for p, s in left.items() if s == 'Z')
    if zombies:
        problems.append(f'zombie children of picoflowd: {zombies}')
    if left:
        problems.append(f'child processes of picoflowd left: {left}')
    growth = rss_end - rss_warm
    # Under ASan the RSS says nothing of what the code keeps (tests/sanitizers.py).
    asan = address_sanitized(picoflowd)
    if not asan and growth >= RSS_GROWTH_MIB << 20:
        problems.append(f'RSS grew by {growth / 1048576:.1f} MiB (bound {RSS_GROWTH_MIB} MiB)')
    print(f'{runs} runs ({warmup} warm-up), {IN_FLIGHT} in flight: '
          f'{sum(1 for _, s, _ in results if s == "succeeded")} succeeded; fds {fds_warm} after '
          f'the warm-up, {fds_end} at the end; RSS {rss_warm / 1048576:.1f} MiB after the '
          f'warm-up, {rss_end / 1048576:.1f} MiB at the end ({growth / 1048576:+.1f} MiB, '
          + ('AddressSanitizer: bound not checked' if asan else f'bound {RSS_GROWTH_MIB}')
          + f'); children left {len(left)}, zombies {len(zombies)}; '
          f'{(runs - warmup) / elapsed:.1f} runs/s after the warm-up (information only)')
    for p in problems:
        print(f'FAIL: {p}', file=sys.stderr)
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('picoflowd')
    parser.add_argument('picoflowctl')
    parser.add_argument('--runs', type=int, default=2000)
    args = parser.parse_args()
    if args.runs < 2:
        parser.error('--runs must be 2 or more')
    if EMULATED:
        print('SKIP: under an emulator the /proc figures are the emulator\'s')
        return 77
    root = tempfile.mkdtemp(prefix='pfsoak-')
    rc = 1
    try:
        rc = check(root, args.picoflowd, args.picoflowctl, args.runs)
        return rc
    except Failed as e:
        print(f'FAIL: {e}', file=sys.stderr)
        return 1
    finally:
        try:
            if rc != 0:
                log = os.path.join(root, 'daemon.log')
                if os.path.exists(log):
                    sys.stderr.write('--- daemon log (last lines) ---\n')
                    sys.stderr.writelines(open(log, errors='replace').readlines()[-60:])
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    # meson ends a test that overruns with SIGTERM: clean up all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
