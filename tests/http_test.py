#!/usr/bin/python3
"""The HTTP listener of a real picoflowd (docs/http-api.md), over real TCP on loopback.

Usage: /usr/bin/python3 http_test.py PATH/TO/picoflowd PATH/TO/picoflowctl

Checks what the browser test (web_browser_test.py) does not:

* the page's files: content types, the security headers, gzip to a client
  that accepts it (the same bytes once unzipped), ETag and 304;
* the Host check: a loopback listener answers localhost, 127.0.0.1 and [::1],
  and 421 to another name (127.0.0.1.evil.example too); a listener on 0.0.0.0
  answers any Host but serves only /metrics and /healthz, with a warning,
  unless --http-allow-remote;
* /api/v1/: typed query params (400 for a bad one), 404 for a run or method
  that does not exist, 405 for a write over GET;
* the web token: writes 403 until `picoflowctl web-token` makes it, then 401
  without or with a wrong one and 200 with it; writes that could run any
  command (submit, reload, run.start of a source...) 403 even with it; a
  POSTed run.start with follow streams its run; the file is 0600; --rotate
  turns the old token away; a restarted daemon reads it back; a token file
  others may read is refused (logged) and writes stay off;
* `picoflowctl web-token` with the listener off says so on stderr.

Every process is killed at the end; every wait has a deadline, which only
ends a hang. Exit 0 if all passed.
"""

import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

from exec_wrapper import command

DEADLINE_S = 60.0
WORKFLOW = """name: hello
tasks:
  - { name: greet, type: shell, config: { command: 'echo hello' } }
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, picoflowd, tmp, name, extra):
        self.tmp = tmp
        self.sock = os.path.join(tmp, 's.sock')
        self.log_path = os.path.join(tmp, name + '.log')
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(
            command(picoflowd) + ['--config', '', '--socket', self.sock, '--state-dir',
                                  os.path.join(tmp, 'state'), '--workflows-dir',
                                  os.path.join(tmp, 'wf')] + extra,
            stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp,
            env=dict(os.environ, HOME=tmp, XDG_RUNTIME_DIR=tmp))
        end = time.monotonic() + DEADLINE_S
        while 'ready on' not in self.text():
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < end, 'daemon not ready: ' + self.text()
            time.sleep(0.05)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(DEADLINE_S) == 0
        self.log.close()


def request(port, method, path, body=None, headers=None, host='127.0.0.1'):
    conn = http.client.HTTPConnection(host, port, timeout=DEADLINE_S)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def raw_status(port, head):
    """The status of the answer to a hand-written request head."""
    with socket.create_connection(('127.0.0.1', port), timeout=DEADLINE_S) as s:
        s.sendall(head.encode() + b'Connection: close\r\n\r\n')
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b' ', 2)[1])


def ctl(ctl_path, sock, *args, check=True):
    r = subprocess.run(command(ctl_path) + ['--socket', sock] + list(args), capture_output=True,
                       text=True, timeout=DEADLINE_S)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def check_files(port):
    status, h, body = request(port, 'GET', '/')
    assert status == 200 and h['content-type'] == 'text/html; charset=utf-8', (status, h)
    assert b'app.js' in body
    assert "script-src 'self'" in h['content-security-policy'], h
    assert h['x-content-type-options'] == 'nosniff' and h['referrer-policy'] == 'no-referrer', h
    status, hz, zipped = request(port, 'GET', '/', headers={'Accept-Encoding': 'gzip, br'})
    assert status == 200 and hz.get('content-encoding') == 'gzip', hz
    assert gzip.decompress(zipped) == body
    assert len(zipped) < len(body)
    status, _, _ = request(port, 'GET', '/', headers={'If-None-Match': h['etag']})
    assert status == 304, status
    status, h, _ = request(port, 'GET', '/app.js')
    assert status == 200 and h['content-type'].startswith('text/javascript'), h
    assert request(port, 'GET', '/nope')[0] == 404
    assert request(port, 'DELETE', '/')[0] == 405
    print('files: types, headers, gzip, ETag/304: ok')


def check_hosts(port):
    for host in ('127.0.0.1', f'127.0.0.1:{port}', 'localhost', f'localhost:{port}', '[::1]:80'):
        assert raw_status(port, f'GET /healthz HTTP/1.1\r\nHost: {host}\r\n') == 200, host
    for host in ('evil.example', f'evil.example:{port}', '127.0.0.1.evil.example'):
        assert raw_status(port, f'GET /healthz HTTP/1.1\r\nHost: {host}\r\n') == 421, host
    assert raw_status(port, 'GET /healthz HTTP/1.1\r\n') == 421  # no Host at all
    print('host check: loopback names served, others 421: ok')


def check_api(port, ctl_path, sock, tmp):
    status, _, body = request(port, 'GET', '/api/v1/workflow.list')
    assert status == 200 and [w['name'] for w in json.loads(body)['workflows']] == ['hello'], body
    status, _, body = request(port, 'GET', '/api/v1/run.get?run_id=abc')
    assert status == 400 and 'integer' in json.loads(body)['error']['message'], body
    status, _, body = request(port, 'GET', '/api/v1/run.get?run_id=999')
    assert status == 404 and json.loads(body)['error']['code'] == -32001, body
    assert request(port, 'GET', '/api/v1/no.such')[0] == 404
    assert request(port, 'GET', '/api/v1/run.start?workflow=hello')[0] == 405
    start = json.dumps({'workflow': 'hello'})
    status, _, body = request(port, 'POST', '/api/v1/run.start', start)
    assert status == 403 and 'picoflowctl web-token' in json.loads(body)['error']['message'], body
    token = ctl(ctl_path, sock, 'web-token').stdout.strip()
    assert len(token) == 64, token
    mode = stat.S_IMODE(os.stat(os.path.join(tmp, 'state', 'web-token')).st_mode)
    assert mode == 0o600, oct(mode)
    assert ctl(ctl_path, sock, 'web-token').stdout.strip() == token  # the same until rotated
    status, h, _ = request(port, 'POST', '/api/v1/run.start', start)
    assert status == 401 and h.get('www-authenticate') == 'Bearer', (status, h)
    assert request(port, 'POST', '/api/v1/run.start', start,
                   {'Authorization': 'Bearer ' + 'a' * 64})[0] == 401
    status, _, body = request(port, 'POST', '/api/v1/run.start', start,
                              {'Authorization': 'Bearer ' + token})
    assert status == 200 and json.loads(body)['workflow'] == 'hello', body
    run_id = json.loads(body)['run_id']
    status, _, body = request(port, 'GET', f'/api/v1/run.wait?run_id={run_id}')
    assert status == 200 and json.loads(body)['status'] == 'succeeded', body
    # Only the page's writes are offered: nothing that could run any command.
    auth = {'Authorization': 'Bearer ' + token}
    for method, params in (('workflow.submit', {'source': WORKFLOW}), ('daemon.reload', {}),
                           ('web.token', {}), ('store.prune', {'dry_run': True}),
                           ('run.start', {'source': WORKFLOW})):
        status, _, body = request(port, 'POST', '/api/v1/' + method, json.dumps(params), auth)
        assert status == 403 and 'not offered over HTTP' in json.loads(body)['error']['message'], \
            (method, status, body)
    # A POSTed run.start that follows its run streams it.
    status, h, body = request(port, 'POST', '/api/v1/run.start',
                              json.dumps({'workflow': 'hello', 'follow': True}),
                              dict(auth, Accept='text/event-stream'))
    assert status == 200 and h['content-type'] == 'text/event-stream', (status, h)
    events = [json.loads(line[6:]) for line in body.decode().splitlines()
              if line.startswith('data: ')]
    assert any(e.get('method') == 'run.output' and e['params']['data'] == 'hello\n'
               for e in events), events
    assert events[-1]['result']['status'] == 'succeeded', events[-1]
    rotated = ctl(ctl_path, sock, 'web-token', '--rotate')
    assert rotated.stdout.strip() != token and 'old one no longer works' in rotated.stderr
    assert request(port, 'POST', '/api/v1/run.start', start,
                   {'Authorization': 'Bearer ' + token})[0] == 401
    print('api: params, statuses, the token (403, 401, 200, rotated), writes offered, '
          'a POSTed stream: ok')
    return rotated.stdout.strip()


def main():
    picoflowd, ctl_path = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix='pfhttp-')
    os.makedirs(os.path.join(tmp, 'wf'))
    with open(os.path.join(tmp, 'wf', 'hello.yaml'), 'w') as f:
        f.write(WORKFLOW)
    daemons = []
    ok = False
    try:
        # Off: the token can be made, and picoflowctl says the page is off.
        d = Daemon(picoflowd, tmp, 'off', [])
        daemons.append(d)
        r = ctl(ctl_path, d.sock, 'web-token')
        assert len(r.stdout.strip()) == 64 and 'listener is off' in r.stderr, (r.stdout, r.stderr)
        d.stop()
        os.unlink(os.path.join(tmp, 'state', 'web-token'))

        port = free_port()
        d = Daemon(picoflowd, tmp, 'on', ['--http-listen', f'127.0.0.1:{port}'])
        daemons.append(d)
        assert 'not a loopback address' not in d.text()
        check_files(port)
        check_hosts(port)
        token = check_api(port, ctl_path, d.sock, tmp)
        d.stop()

        # A restart reads the token back.
        port = free_port()
        d = Daemon(picoflowd, tmp, 'again', ['--metrics-listen', f'127.0.0.1:{port}'])
        daemons.append(d)
        assert request(port, 'POST', '/api/v1/workflow.pause', json.dumps({'name': 'hello'}),
                       {'Authorization': 'Bearer ' + token})[0] == 200
        d.stop()
        print('restart: the token is read back (and --metrics-listen still works): ok')

        # A token file others may read is refused: writes stay off.
        os.chmod(os.path.join(tmp, 'state', 'web-token'), 0o644)
        port = free_port()
        d = Daemon(picoflowd, tmp, 'open-token', ['--http-listen', f'127.0.0.1:{port}'])
        daemons.append(d)
        assert 'web token not loaded' in d.text(), d.text()
        assert request(port, 'POST', '/api/v1/workflow.resume', json.dumps({'name': 'hello'}),
                       {'Authorization': 'Bearer ' + token})[0] == 403
        d.stop()
        print('a token file others may read: refused, writes off: ok')

        # Off loopback: a warning, unless allowed; any Host is answered.
        for allow in (False, True):
            port = free_port()
            extra = ['--http-listen', f'0.0.0.0:{port}'] + (['--http-allow-remote'] if allow else [])
            d = Daemon(picoflowd, tmp, f'remote-{allow}', extra)
            daemons.append(d)
            assert ('not a loopback address' in d.text()) != allow, d.text()
            assert raw_status(port, 'GET /healthz HTTP/1.1\r\nHost: pi.lan\r\n') == 200
            assert raw_status(port, 'GET /metrics HTTP/1.1\r\nHost: pi.lan\r\n') == 200
            for path in ('/', '/api/v1/workflow.list'):
                want = 200 if allow else 403
                assert raw_status(port, f'GET {path} HTTP/1.1\r\nHost: pi.lan\r\n') == want, path
            d.stop()
        print('0.0.0.0: metrics only, and a warning, unless --http-allow-remote: ok')
        ok = True
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait(DEADLINE_S)
        if not ok and daemons:
            sys.stderr.write(daemons[-1].text()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print('http: all checks passed')


if __name__ == '__main__':
    main()
