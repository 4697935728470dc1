#!/usr/bin/python3
"""Runs started by events (docs/triggers.md), through a real picoflowd.

Usage: /usr/bin/python3 triggers_test.py PATH/TO/picoflowd PATH/TO/picoflowctl

File triggers, on a directory that does not exist when the workflow is
submitted:

* a 5 MB file written in pieces starts one run, after it settled, and its
  task gets PICOFLOW_TRIGGER_FILE;
* 100 files landing at once start 100 runs, one at a time (overlap: queue),
  each file exactly once; the daemon killed (-9) while they wait and started
  again runs every one of them, still exactly once;
* a file moved in starts a run; the directory deleted and made again keeps
  working;
* a paused workflow's files start nothing.

Webhooks (POST /hooks/<workflow> on the HTTP listener):

* right token: 202 with the run id, the body in PICOFLOW_TRIGGER_PAYLOAD;
  missing or wrong token 401, GET 405, unknown workflow 404, a body that is
  not JSON 400, more than 64 KiB 413, a token file others may read 503;
* overlap: skip with a run going: 409, and the event is recorded as a
  skipped run with its reason;
* a failed run retried (picoflowctl retry) runs on the same payload.

Every wait has a deadline, which only ends a hang. Exit 0 if all passed.
"""

import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from exec_wrapper import command

DEADLINE_S = 90.0


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, picoflowd, tmp, port):
        self.tmp = tmp
        self.sock = os.path.join(tmp, 's.sock')
        self.log_path = os.path.join(tmp, 'daemon.log')
        self.log = open(self.log_path, 'a')
        ready_before = self.text().count('ready on')
        self.proc = subprocess.Popen(
            command(picoflowd) + ['--config', '', '--socket', self.sock, '--state-dir',
                                  os.path.join(tmp, 'state'), '--workflows-dir',
                                  os.path.join(tmp, 'wf'), '--http-listen',
                                  '127.0.0.1:%d' % port],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp,
            env=dict(os.environ, HOME=tmp, XDG_RUNTIME_DIR=tmp))
        self.wait_log('ready on', count=ready_before + 1)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, needle, count=1):
        end = time.monotonic() + DEADLINE_S
        while self.text().count(needle) < count:
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < end, 'not in the log: %r\n%s' % (needle, self.text())
            time.sleep(0.05)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE_S)
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(DEADLINE_S) == 0
        self.log.close()


class Ctl:
    def __init__(self, path, sock):
        self.path = path
        self.sock = sock

    def __call__(self, *args, check=True):
        r = subprocess.run(command(self.path) + ['--socket', self.sock] + list(args),
                           capture_output=True, text=True, timeout=DEADLINE_S)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def runs(self, workflow):
        out = self('--json', 'history', '-n', '1000', workflow)
        return json.loads(out.stdout)['runs']

    def logs(self, workflow, run_id):
        return self('logs', workflow, '--run', str(run_id)).stdout

    def wait_runs(self, workflow, pred, what):
        end = time.monotonic() + DEADLINE_S
        while True:
            runs = self.runs(workflow)
            if pred(runs):
                return runs
            assert time.monotonic() < end, '%s: %s' % (what, json.dumps(runs, indent=1))
            time.sleep(0.1)


def lock_holders(path):
    """The processes with `path` open, as 'PID (comm)'."""
    out = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            fds = os.listdir('/proc/%s/fd' % pid)
            if any(os.readlink('/proc/%s/fd/%s' % (pid, fd)) == path for fd in fds):
                with open('/proc/%s/comm' % pid) as f:
                    out.append('%s (%s)' % (pid, f.read().strip()))
        except OSError:
            pass
    return out


def wait_for_lock(path):
    """Waits until no process holds the state directory's lock. A task the
    killed daemon was spawning holds its copy of the daemon's descriptors
    until it execs (they close on exec); the next daemon would find the lock
    taken in that instant."""
    end = time.monotonic() + DEADLINE_S
    while True:
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        except BlockingIOError:
            assert time.monotonic() < end, 'the lock stays held by %s' % lock_holders(path)
            print('lock still held by %s' % lock_holders(path))
            time.sleep(0.05)
        finally:
            os.close(fd)


def ended(runs, n):
    return len(runs) >= n and all(r['status'] in ('succeeded', 'failed', 'skipped') for r in runs)


def post(port, path, body=b'', token=None, method='POST'):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=DEADLINE_S)
    try:
        headers = {'Content-Type': 'application/json'}
        if token is not None:
            headers['Authorization'] = 'Bearer ' + token
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


FILES_WORKFLOW = """name: ingest
overlap: queue
triggers:
  - file: {path: incoming, pattern: "*.jpg", settle: 1s}
tasks:
  - name: take
    type: shell
    config:
      command: 'echo "got $PICOFLOW_TRIGGER_FILE $(wc -c < "$PICOFLOW_TRIGGER_FILE")"'
"""

HOOK_WORKFLOW = """name: hook
triggers:
  - webhook: {token_file: hook-token}
tasks:
  - name: show
    type: shell
    config:
      command: 'printf "payload=%s\\n" "$PICOFLOW_TRIGGER_PAYLOAD"; test -f ok-marker'
    retry: 0
"""

SLOW_HOOK_WORKFLOW = """name: slow
overlap: skip
triggers:
  - webhook: {token_file: hook-token}
tasks:
  - name: wait
    type: shell
    config: {command: 'while [ ! -f release ]; do sleep 0.05; done'}
"""


def check_file_triggers(tmp, daemon, ctl):
    incoming = os.path.join(tmp, 'incoming')
    assert not os.path.exists(incoming)
    with open(os.path.join(tmp, 'ingest.yaml'), 'w') as f:
        f.write(FILES_WORKFLOW)
    ctl('submit', os.path.join(tmp, 'ingest.yaml'))
    os.makedirs(incoming)

    # A 5 MB file in pieces, 200 ms apart: one run, after it settled.
    big = os.path.join(incoming, 'big.jpg')
    with open(big, 'wb') as f:
        for _ in range(10):
            f.write(b'b' * (512 * 1024))
            f.flush()
            time.sleep(0.2)  # the writer's pace, not a wait for the daemon
            assert ctl.runs('ingest') == [], 'a run before the file settled'
    runs = ctl.wait_runs('ingest', lambda r: ended(r, 1), 'the big file ran')
    assert len(runs) == 1 and runs[0]['trigger'] == 'file', runs
    assert runs[0]['event'] == {'file': big}, runs[0]
    assert 'got %s 5242880' % big in ctl.logs('ingest', runs[0]['id']), ctl.logs(
        'ingest', runs[0]['id'])

    # A file moved in; then the directory deleted and made again.
    outside = os.path.join(tmp, 'outside.jpg')
    with open(outside, 'w') as f:
        f.write('m')
    os.rename(outside, os.path.join(incoming, 'moved.jpg'))
    ctl.wait_runs('ingest', lambda r: ended(r, 2), 'the moved file ran')
    shutil.rmtree(incoming)
    os.makedirs(incoming)
    with open(os.path.join(incoming, 'again.jpg'), 'w') as f:
        f.write('a')
    runs = ctl.wait_runs('ingest', lambda r: ended(r, 3), 'a file in the new directory ran')
    files = sorted(r['event']['file'] for r in runs)
    assert files == sorted([big] + [os.path.join(incoming, n)
                                    for n in ('moved.jpg', 'again.jpg')]), files

    # Paused: nothing starts (shown by a file after resume that does).
    ctl('pause', 'ingest')
    with open(os.path.join(incoming, 'while-paused.jpg'), 'w') as f:
        f.write('p')
    daemon.wait_log('ignored: workflow \'ingest\' is paused')
    ctl('resume', 'ingest')
    with open(os.path.join(incoming, 'after.jpg'), 'w') as f:
        f.write('r')
    runs = ctl.wait_runs('ingest', lambda r: ended(r, 4), 'the file after resume ran')
    assert not any('while-paused' in r['event']['file'] for r in runs), runs


def check_burst_and_crash(tmp, picoflowd, port, daemon, ctl):
    # 100 files at once: each queued, each run once, one at a time; the
    # daemon is killed while they wait and started again.
    before = len(ctl.runs('ingest'))
    incoming = os.path.join(tmp, 'incoming')
    names = ['burst-%03d.jpg' % i for i in range(100)]
    for n in names:
        with open(os.path.join(incoming, n), 'w') as f:
            f.write(n)
    runs = ctl.wait_runs('ingest', lambda r: len(r) >= before + 100, 'every burst file recorded')
    daemon.kill()
    # 100 runs one after the other take longer than the call above: the
    # crash comes while some wait (and one may run).
    waiting = sum(1 for r in runs if r['status'] == 'pending')
    assert waiting > 0, 'every run ended before the crash: the restart proves nothing'
    print('killed with %d runs waiting' % waiting)
    wait_for_lock(os.path.join(tmp, 'state', 'picoflowd.lock'))
    daemon = Daemon(picoflowd, tmp, port)
    ctl = Ctl(ctl.path, daemon.sock)
    runs = ctl.wait_runs('ingest', lambda r: ended(r, before + 100), 'every burst file ran')
    burst = [r for r in runs if 'burst-' in (r['event'] or {}).get('file', '')]
    files = sorted(os.path.basename(r['event']['file']) for r in burst)
    assert files == names, files
    assert all(r['status'] == 'succeeded' for r in burst), [
        (r['id'], r['status'], r['error']) for r in burst if r['status'] != 'succeeded']
    queued = [r for r in burst if r['reason'].startswith('queued: ')]
    assert len(queued) >= 90, 'they waited their turn: %d' % len(queued)
    # One at a time: no two burst runs overlap.
    spans = sorted((r['started_at'], r['ended_at']) for r in burst)
    for a, b in zip(spans, spans[1:]):
        assert a[1] <= b[0], (a, b)
    return daemon, ctl


def check_webhooks(tmp, port, daemon, ctl):
    token_file = os.path.join(tmp, 'hook-token')
    with open(token_file, 'w') as f:
        f.write('s3cret-token\n')
    os.chmod(token_file, 0o600)
    for name, text in (('hook', HOOK_WORKFLOW), ('slow', SLOW_HOOK_WORKFLOW)):
        with open(os.path.join(tmp, name + '.yaml'), 'w') as f:
            f.write(text)
        ctl('submit', os.path.join(tmp, name + '.yaml'))

    status, body = post(port, '/hooks/hook', b'{"door": "open"}', 's3cret-token')
    assert status == 202 and body['workflow'] == 'hook' and body['queued'] is False, (status, body)
    run_id = body['run_id']
    runs = ctl.wait_runs('hook', lambda r: ended(r, 1), 'the webhook run ended')
    assert runs[0]['id'] == run_id and runs[0]['trigger'] == 'webhook', runs
    event = runs[0]['event']
    assert event['payload'] == '{"door": "open"}', event
    assert event['source'].startswith('127.0.0.1:'), event  # who called
    assert runs[0]['status'] == 'failed', runs[0]  # no ok-marker yet
    assert 'payload={"door": "open"}' in ctl.logs('hook', run_id)

    # A retry runs on the same payload.
    with open(os.path.join(tmp, 'ok-marker'), 'w') as f:
        f.write('')
    ctl('retry', str(run_id), '--wait')
    runs = ctl.runs('hook')
    retry = runs[0]
    assert retry['retry_of'] == run_id and retry['status'] == 'succeeded', retry
    assert retry['event'] == event, retry

    # Refusals: nothing runs for any of them.
    count = len(ctl.runs('hook'))
    assert post(port, '/hooks/hook', b'{}')[0] == 401
    assert post(port, '/hooks/hook', b'{}', 'wrong')[0] == 401
    assert post(port, '/hooks/hook', None, 's3cret-token', method='GET')[0] == 405
    assert post(port, '/hooks/nope', b'{}', 's3cret-token')[0] == 404
    assert post(port, '/hooks/ingest', b'{}', 's3cret-token')[0] == 404  # no webhook trigger
    assert post(port, '/hooks/hook', b'not json', 's3cret-token')[0] == 400
    big = b'{"x": "' + b'y' * (64 * 1024) + b'"}'
    assert post(port, '/hooks/hook', big, 's3cret-token')[0] == 413
    os.chmod(token_file, 0o644)
    assert post(port, '/hooks/hook', b'{}', 's3cret-token')[0] == 503
    os.chmod(token_file, 0o600)
    assert len(ctl.runs('hook')) == count
    # An empty body is allowed.
    status, body = post(port, '/hooks/hook', b'', 's3cret-token')
    assert status == 202, (status, body)
    ctl.wait_runs('hook', lambda r: ended(r, count + 1), 'the empty-body run ended')

    # overlap: skip with a run going: 409, recorded as a skipped run.
    status, first = post(port, '/hooks/slow', b'{"n": 1}', 's3cret-token')
    assert status == 202, (status, first)
    ctl.wait_runs('slow', lambda r: r and r[0]['status'] == 'running', 'the slow run started')
    status, second = post(port, '/hooks/slow', b'{"n": 2}', 's3cret-token')
    assert status == 409 and 'skipped' in second['error'], (status, second)
    with open(os.path.join(tmp, 'release'), 'w') as f:
        f.write('')
    runs = ctl.wait_runs('slow', lambda r: ended(r, 2), 'the slow run ended')
    by_id = {r['id']: r for r in runs}
    assert by_id[second['run_id']]['status'] == 'skipped', runs
    assert by_id[second['run_id']]['event']['payload'] == '{"n": 2}', runs
    assert by_id[second['run_id']]['reason'] == (
        'one run at a time (overlap: skip; run %d running)' % first['run_id']), runs
    assert by_id[first['run_id']]['status'] == 'succeeded', runs


def main():
    picoflowd, picoflowctl = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix='picoflow-triggers-')
    port = free_port()
    daemon = Daemon(picoflowd, tmp, port)
    ctl = Ctl(picoflowctl, daemon.sock)
    try:
        check_file_triggers(tmp, daemon, ctl)
        print('ok: file triggers')
        daemon, ctl = check_burst_and_crash(tmp, picoflowd, port, daemon, ctl)
        print('ok: a burst of 100 files, and a crash while they wait')
        check_webhooks(tmp, port, daemon, ctl)
        print('ok: webhooks')
        daemon.stop()
    except BaseException:
        print(daemon.text()[-8000:])
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
