#!/usr/bin/python3
"""The metrics listener of a real picoflowd, scraped by a real Prometheus.

Usage: /usr/bin/python3 metrics_test.py PATH/TO/picoflowd PATH/TO/picoflowctl

Starts picoflowd with --metrics-listen 127.0.0.1:FREE_PORT in a temporary
directory, runs a known workflow (task `hello` succeeds, task `bad` fails
twice: one retry), then checks:

* GET /metrics: 200, format 0.0.4, the counters of that run, and
  `promtool check metrics` accepts it (/usr/bin/promtool, Debian `prometheus`);
* GET /healthz 200, other paths 404, POST 405, a malformed request line 400,
  an 8 KiB+ request head 431, a Host that is not loopback 421, a silent client dropped at the 5 s timeout (not
  before), and 20 concurrent scrapers all answered;
* a Prometheus server (/usr/bin/prometheus, temp storage, 1 s scrape interval)
  scrapes the daemon: /api/v1/query answers up == 1 and
  picoflow_task_attempts_total{task="bad",status="failed"} == 2.

Without /usr/bin/promtool or /usr/bin/prometheus those checks are skipped (a
hand parser checks the exposition instead). Every process is killed by pid
at the end; every wait has a deadline, which only ends a hang: it asserts no
speed. Exit 0 if all passed.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from exec_wrapper import EMULATED, command

DEADLINE_S = 60.0

WORKFLOW = """name: demo
config: { retry_delay: 0 }
tasks:
  - { name: hello, type: shell, config: { command: 'echo hello' } }
  - { name: bad, type: shell, retry: 1, depends_on: [hello], config: { command: 'exit 3' } }
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=DEADLINE_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise AssertionError('timed out waiting for ' + what)


def raw(port, data, read_timeout=DEADLINE_S):
    """Sends bytes, returns everything read until the server closes."""
    with socket.create_connection(('127.0.0.1', port), timeout=read_timeout) as s:
        if data:
            s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)


def status_of(response):
    return int(response.split(b' ', 2)[1])


# The listener keeps connections alive: these requests ask it to close, so
# that raw() reads one whole response. A loopback listener answers only a
# loopback Host (docs/http-api.md, "Security").
CLOSE = b'Host: 127.0.0.1\r\nConnection: close\r\n\r\n'


def http_get(port, path):
    return raw(port, ('GET %s HTTP/1.1\r\n' % path).encode() + CLOSE)


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def hand_check(text):
    """A small exposition-format check for when promtool is missing."""
    typed = set()
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            typed.add(line.split()[2])
        elif line.startswith('#') or not line:
            continue
        else:
            m = SAMPLE_RE.match(line)
            assert m, 'bad sample line: ' + line
            float(m.group(3))
            base = re.sub(r'_(bucket|sum|count)$', '', m.group(1))
            assert m.group(1) in typed or base in typed, 'no TYPE for ' + line


def sample(text, name, **labels):
    for line in text.splitlines():
        m = SAMPLE_RE.match(line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ''))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def check_daemon(port, ctl, sock, tmp):
    wf = os.path.join(tmp, 'demo.yaml')
    with open(wf, 'w') as f:
        f.write(WORKFLOW)
    run = subprocess.run(command(ctl) + ['--socket', sock, 'submit', wf], capture_output=True,
                         timeout=DEADLINE_S)
    assert run.returncode == 0, run.stderr
    run = subprocess.run(command(ctl) + ['--socket', sock, 'run', 'demo', '--wait'],
                         capture_output=True, timeout=DEADLINE_S)
    assert run.returncode == 1, (run.returncode, run.stdout, run.stderr)  # the run failed

    resp = http_get(port, '/metrics')
    head, _, body = resp.partition(b'\r\n\r\n')
    assert status_of(resp) == 200, resp[:200]
    assert b'Content-Type: text/plain; version=0.0.4; charset=utf-8' in head, head
    text = body.decode()
    assert sample(text, 'picoflow_task_attempts_total', workflow='demo', task='hello',
                  status='succeeded') == 1, text
    assert sample(text, 'picoflow_task_attempts_total', workflow='demo', task='bad',
                  status='failed') == 2, text
    assert sample(text, 'picoflow_task_retries_total', workflow='demo', task='bad') == 1, text
    assert sample(text, 'picoflow_runs_finished_total', workflow='demo', status='failed') == 1
    assert sample(text, 'picoflow_active_runs') == 0
    assert sample(text, 'picoflow_store_size_bytes') > 0
    if EMULATED:
        # qemu-user answers the daemon's /proc/self/stat itself, zeros for rss.
        print('SKIP process_resident_memory_bytes > 0: qemu-user fakes /proc/self/stat')
    else:
        assert sample(text, 'process_resident_memory_bytes') > 0
    assert sample(text, 'picoflow_last_failure_timestamp_seconds', workflow='demo') > 0
    hand_check(text)
    if os.path.exists('/usr/bin/promtool'):
        check = subprocess.run(['/usr/bin/promtool', 'check', 'metrics'], input=body,
                               capture_output=True, timeout=DEADLINE_S)
        assert check.returncode == 0, check.stdout + check.stderr
        print('promtool check metrics: ok')
    else:
        print('SKIP promtool: /usr/bin/promtool missing (Debian package prometheus)')

    assert status_of(http_get(port, '/healthz')) == 200
    assert status_of(http_get(port, '/nope')) == 404
    assert status_of(raw(port, b'POST /metrics HTTP/1.1\r\n' + CLOSE)) == 405
    assert status_of(raw(port, b'garbage\r\n\r\n')) == 400
    assert status_of(raw(port, b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\n' + CLOSE)) == 431
    assert status_of(raw(port, b'GET /metrics HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n')) == 421
    # The server drops a client that never finishes its request at its 5 s
    # request timeout: not before (a lower bound), and at all (our read timeout
    # of DEADLINE_S only ends a hang).
    start = time.monotonic()
    assert raw(port, b'GET /metrics HTTP/1.1\r\n') == b''
    waited = time.monotonic() - start
    assert waited >= 4.5, waited

    results = []

    def scrape():
        results.append(status_of(http_get(port, '/metrics')))

    threads = [threading.Thread(target=scrape) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S)
    assert results == [200] * 20, results


def check_prometheus(port, tmp):
    if not os.path.exists('/usr/bin/prometheus'):
        print('SKIP prometheus: /usr/bin/prometheus missing (Debian package prometheus)')
        return
    prom_port = free_port()
    config = os.path.join(tmp, 'prometheus.yml')
    with open(config, 'w') as f:
        f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                'scrape_configs:\n  - job_name: picoflow\n    static_configs:\n'
                '      - targets: ["127.0.0.1:%d"]\n' % port)
    log = open(os.path.join(tmp, 'prometheus.log'), 'w')
    prom = subprocess.Popen(['/usr/bin/prometheus', '--config.file=' + config,
                             '--storage.tsdb.path=' + os.path.join(tmp, 'tsdb'),
                             '--web.listen-address=127.0.0.1:%d' % prom_port],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        def query(expr):
            url = 'http://127.0.0.1:%d/api/v1/query?query=%s' % (prom_port, urllib.parse.quote(expr))
            with urllib.request.urlopen(url, timeout=DEADLINE_S) as r:
                data = json.load(r)
            result = data['data']['result']
            return float(result[0]['value'][1]) if result else None

        wait_for('prometheus to report up == 1', lambda: query('up{job="picoflow"}') == 1, 120)
        value = wait_for('the task counter in prometheus', lambda: query(
            'picoflow_task_attempts_total{workflow="demo",task="bad",status="failed"}'), 120)
        assert value == 2, value
        print('prometheus: up == 1, picoflow_task_attempts_total{task="bad",status="failed"} == 2')
    except BaseException:
        log.flush()
        with open(os.path.join(tmp, 'prometheus.log')) as f:
            sys.stderr.write(f.read()[-4000:])
        raise
    finally:
        prom.kill()
        prom.wait(DEADLINE_S)
        log.close()


def main():
    picoflowd, ctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix='pfmetrics-')
    env = dict(os.environ, HOME=tmp, XDG_RUNTIME_DIR=tmp, XDG_STATE_HOME=tmp,
               XDG_CONFIG_HOME=tmp)
    env.pop('NOTIFY_SOCKET', None)
    port = free_port()
    sock = os.path.join(tmp, 's.sock')
    daemon_log = open(os.path.join(tmp, 'daemon.log'), 'w')
    daemon = subprocess.Popen(command(picoflowd) + [
                                  '--config', '', '--socket', sock, '--state-dir',
                                  os.path.join(tmp, 'state'), '--workflows-dir',
                                  os.path.join(tmp, 'wf'), '--metrics-listen',
                                  '127.0.0.1:%d' % port],
                              stdout=daemon_log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    ok = False
    try:
        wait_for('the metrics listener', lambda: status_of(http_get(port, '/healthz')) == 200)
        check_daemon(port, ctl, sock, tmp)
        check_prometheus(port, tmp)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(DEADLINE_S) == 0
        ok = True
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(DEADLINE_S)
        daemon_log.close()
        if not ok:
            with open(os.path.join(tmp, 'daemon.log')) as f:
                sys.stderr.write(f.read()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print('metrics: all checks passed')


if __name__ == '__main__':
    main()
