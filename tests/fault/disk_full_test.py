#!/usr/bin/python3
"""A full disk under a real picoflowd (issue 14, finding 6; docs/reliability.md).

The state directory is a 4 MiB tmpfs of the test's own (so the test needs
root; it skips otherwise). A run starts; its first task waits for a go file
outside the tmpfs; the test fills the tmpfs to the last byte and lets the task
go. Checked while the disk is full:

* the task's 300 KiB of output cannot be saved: the store keeps it in memory,
  the next task runs, and `run.wait` answers the run's real end (succeeded);
* `daemon.status` says store degraded (disk full) with the changes it keeps,
  /healthz answers 503 "store degraded: disk full", picoflow_store_degraded 1;
* a new run is refused, saying the disk is full.

Then the filler goes: the daemon saves what it kept by itself (a retry with
backoff), `daemon.status` says ok, and the database has the run succeeded
with its whole output. After a restart the run is not resumed. Last, with
the tmpfs full again, picoflowd refuses to start: non-zero, saying disk full.

Every wait has a deadline that only ends a hang. Usage:
  disk_full_test.py PICOFLOWD PICOFLOWCTL
"""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from exec_wrapper import EMULATED, command  # noqa: E402

DEADLINE_S = 90
OUTPUT_BYTES = 300 * 1024

WORKFLOW = """name: full
tasks:
  - name: fill
    type: shell
    config:
      command: "while [ ! -e {go} ]; do sleep 0.05; done; head -c {size} /dev/zero | tr '\\\\0' x"
  - name: after
    type: shell
    depends_on: [fill]
    config: {{ command: "echo after" }}
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(what, predicate):
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError('timed out waiting for ' + what)


def http_get(port, path):
    with socket.create_connection(('127.0.0.1', port), timeout=DEADLINE_S) as s:
        # A loopback Host (docs/http-api.md, "Security"); close after the answer.
        s.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
                   % path).encode())
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data.decode()
            data += chunk


def fill(path):
    """Writes until the file system says ENOSPC; returns the filler's path."""
    filler = os.path.join(path, 'filler')
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # to the very last byte
            block = b'\0' * size
            while True:
                try:
                    os.write(fd, block)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


class Daemon:
    def __init__(self, picoflowd, picoflowctl, root, state, port):
        self.sock = os.path.join(root, 'pf.sock')
        self.ctl = command(picoflowctl) + ['--socket', self.sock]
        self.log = open(os.path.join(root, 'daemon.log'), 'ab')
        self.proc = subprocess.Popen(
            command(picoflowd) + ['--config', '', '--socket', self.sock, '--state-dir', state,
                                  '--metrics-listen', '127.0.0.1:%d' % port,
                                  '--log-level', 'debug'],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for('picoflowd to answer', lambda: self.proc.poll() is not None or
                 subprocess.run(self.ctl + ['daemon', 'version'],
                                capture_output=True).returncode == 0)
        assert self.proc.poll() is None, 'picoflowd exited at start'

    def call(self, method, params=None, ok=True):
        r = subprocess.run(self.ctl + ['--json', 'call', method, json.dumps(params or {})],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        if ok:
            assert r.returncode == 0, '%s: %s %s' % (method, r.stdout, r.stderr)
            return json.loads(r.stdout)
        return r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def check(root, picoflowd, picoflowctl):
    state = os.path.join(root, 'state')
    os.makedirs(state)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', state],
                   check=True)
    try:
        return run_checks(root, state, picoflowd, picoflowctl)
    finally:
        subprocess.run(['umount', '-l', state])


def run_checks(root, state, picoflowd, picoflowctl):
    go = os.path.join(root, 'go')
    wf = os.path.join(root, 'full.yaml')
    with open(wf, 'w') as f:
        f.write(WORKFLOW.format(go=go, size=OUTPUT_BYTES))
    port = free_port()
    d = Daemon(picoflowd, picoflowctl, root, state, port)
    try:
        subprocess.run(d.ctl + ['submit', wf], check=True, capture_output=True)
        run_id = d.call('run.start', {'workflow': 'full'})['run_id']
        wait_for('task fill to run', lambda: any(
            t['name'] == 'fill' and t['status'] == 'running'
            for t in d.call('run.get', {'run_id': run_id})['tasks']))
        filler = fill(state)
        open(go, 'w').close()

        # The run ends for real although its end cannot be saved.
        run = d.call('run.wait', {'run_id': run_id})
        assert run['status'] == 'succeeded', run
        assert [t['status'] for t in run['tasks']] == ['succeeded', 'succeeded'], run
        fill_attempt = [a for a in run['attempts'] if a['task'] == 'fill'][0]
        assert fill_attempt['stdout_bytes'] == OUTPUT_BYTES, fill_attempt

        status = d.call('daemon.status')['store']
        assert status['state'] == 'degraded', status
        assert status['reason'] == 'disk full', status
        assert status['kept_changes'] > 0, status
        health = http_get(port, '/healthz')
        assert health.startswith('HTTP/1.1 503') and 'store degraded: disk full' in health, health
        metrics = http_get(port, '/metrics')
        assert '\npicoflow_store_degraded 1\n' in metrics, metrics
        refused = d.call('run.start', {'workflow': 'full'}, ok=False)
        assert refused.returncode != 0 and 'disk full' in (refused.stdout + refused.stderr), \
            refused
        db = os.path.join(state, 'picoflow.db')
        con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
        assert con.execute('SELECT status FROM runs WHERE id = ?', (run_id,)).fetchone()[0] \
            == 'running'
        con.close()

        # Room again: the daemon saves what it kept, by itself.
        os.unlink(filler)
        wait_for('the store to recover',
                 lambda: d.call('daemon.status')['store']['state'] == 'ok')
        assert http_get(port, '/healthz').startswith('HTTP/1.1 200')
        con = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
        assert con.execute('SELECT status FROM runs WHERE id = ?', (run_id,)).fetchone()[0] \
            == 'succeeded'
        stored = con.execute('SELECT sum(coalesce(file_length, length(data))) FROM output'
                             ' WHERE run_id = ?', (run_id,)).fetchone()[0]
        con.close()
        assert stored == OUTPUT_BYTES + len('after\n'), stored
        shown, after = 0, 0
        while True:  # run.logs pages (docs/rpc.md)
            page = d.call('run.logs', {'run_id': run_id, 'task': 'fill', 'after': after})
            if not page['chunks']:
                break
            shown += sum(len(c['data']) for c in page['chunks'])
            after = page['next']
        assert shown == OUTPUT_BYTES, shown
    finally:
        d.stop()

    # Saved for good: a restart does not resume the run.
    d = Daemon(picoflowd, picoflowctl, root, state, free_port())
    try:
        assert d.call('run.get', {'run_id': run_id})['status'] == 'succeeded'
        assert d.call('daemon.status')['active_runs'] == 0
    finally:
        d.stop()

    # A start on a full disk says so and fails.
    filler = fill(state)
    r = subprocess.run(command(picoflowd) + ['--config', '', '--socket',
                                             os.path.join(root, 'late.sock'),
                                             '--state-dir', state],
                       capture_output=True, text=True, timeout=DEADLINE_S)
    os.unlink(filler)
    assert r.returncode != 0, r
    assert 'disk full' in r.stderr, r.stderr
    return 0


def main(picoflowd, picoflowctl):
    if EMULATED or os.geteuid() != 0 or shutil.which('mount') is None:
        print('SKIP: needs root to mount a tmpfs of its own (and no emulator)')
        return 77
    root = tempfile.mkdtemp(prefix='pfdiskfull-')
    try:
        rc = check(root, picoflowd, picoflowctl)
        print('disk full: run ended, degraded, refused new runs, recovered, restart clean')
        return rc
    except Exception:
        log = os.path.join(root, 'daemon.log')
        if os.path.exists(log):
            sys.stderr.write(open(log, errors='replace').read()[-20000:])
        raise
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
