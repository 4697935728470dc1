#!/usr/bin/python3
"""picoflowd's web page in a real browser (headless Chromium driven by Selenium).

Usage: /usr/bin/python3 web_browser_test.py PICOFLOWD PICOFLOWCTL [SCREENSHOT_DIR]

Starts picoflowd with --http-listen 127.0.0.1:FREE_PORT in a temporary directory (its own
socket, state and workflows directories), and Debian's chromium through chromium-driver
(python3-selenium). Then checks what a person would see:

* the overview lists every workflow with its last run's status and a strip of its runs,
  the daemon's version, and the file that did not load;
* a workflow page draws the DAG (SVG nodes and edges counted, coloured by the latest run),
  the source with line numbers and the next fires;
* a run page shows a failed task's reason, its log and a bar per attempt on the timeline;
* a task that prints a line every 0.3 s: its third line is on the page while the run is
  still going (polled with a deadline, no sleep), then the run ends on the page;
* run now and cancel, clicked without the token (403 while none is configured, 401 once
  one is: the message is shown and nothing started or stopped) and with it (a run starts,
  a run is cancelled), and pause;
* a workflow whose description and task output are HTML: shown as text, nothing ran;
* a 1,000-task workflow: its page draws 1,000 nodes (the time is printed; the bound is a
  generous 5 s, not the 1 s aimed at), its run page reaches all 1,000 rows;
* no Content-Security-Policy violation or script error in the browser's console;
* at 390 px wide no page is wider than the screen.

Screenshots of each page, light and dark, desktop (1280x800) and phone (390x844), go to
SCREENSHOT_DIR, else $PICOFLOW_SCREENSHOT_DIR, else $MESON_BUILD_ROOT/meson-logs/web-screenshots,
else the temporary directory (removed). With $PICOFLOW_README_SHOT set, the run page (light,
desktop) is also written to that path (scripts/screenshot.sh: docs/web-run-page.png).

Every wait has a deadline that only ends a hang; everything started is killed by pid at the
end. Exit 0 if all passed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from exec_wrapper import EMULATED, command

DEADLINE_S = 60.0
BIG_TASKS = 1000
BIG_BOUND_MS = 5000  # the issue aims at 1 s; this bound only catches a page that is far off

DEMO = """name: demo
description: Fetch, transform and load, nightly
schedule: "0 2 * * *"
timezone: UTC
config: { retry_default: 0 }
tasks:
  - { name: fetch, type: shell, config: { command: 'echo fetched 3 files' } }
  - { name: transform, type: shell, depends_on: [fetch], config: { command: 'echo transformed' } }
  - name: load
    type: shell
    depends_on: [transform]
    config: { command: "echo loading; echo 'disk full: /mnt/usb' >&2; exit 3" }
  - { name: report, type: shell, depends_on: [fetch], config: { command: 'echo report sent' } }
"""

BROKEN = """name: broken
tasks:
  - { name: load, type: shell, depends_on: [extract], config: { command: 'true' } }
"""

OK = """name: ok
description: Always succeeds
tasks:
  - { name: hello, type: shell, config: { command: 'echo hello' } }
"""

LIVE = """name: ticker
tasks:
  - name: tick
    type: shell
    config: { command: 'for i in $(seq 1 20); do echo "line $i"; sleep 0.3; done' }
"""

SLOW = """name: slow
tasks:
  - { name: wait, type: shell, config: { command: sleep, args: ["60"] } }
"""

XSS = """name: xss
description: "<img src=x onerror=alert(3)> <b>bold</b>"
tasks:
  - name: shout
    type: shell
    config: { command: "echo '<script>alert(1)</script>'; echo '<img src=x onerror=alert(2)>' >&2; exit 1" }
"""

REPORT = """name: report
description: A report with params and an edge that skips a layer
params:
  day: { default: yesterday }
tasks:
  - { name: count, type: shell, config: { command: 'echo counting' } }
  - { name: publish, type: shell, depends_on: [count], config: { command: 'echo published' } }
  - { name: check, type: shell, depends_on: [publish], config: { command: 'true' } }
  - { name: alert, type: shell, depends_on: [count, publish], trigger: one_failed, config: { command: 'true' } }
  - { name: cleanup, type: shell, depends_on: [count, check], config: { command: 'true' } }
  - { name: side, type: shell, config: { command: 'true' } }
"""

POLISH = r"""name: polish
config: { retry_default: 0 }
tasks:
  - { name: colour, type: shell, config: { command: "printf '\\033[31mred\\033[0m done\\n'" } }
  - { name: flood, type: shell, config: { command: "head -c 10000 /dev/zero | tr '\\0' x; echo" } }
  - { name: ping, type: shell, config: { command: 'for i in 1 2 3 4 5; do echo ping$i; sleep 0.15; done' } }
  - { name: pong, type: shell, config: { command: 'sleep 0.07; for i in 1 2 3 4 5; do echo pong$i; sleep 0.15; done' } }
"""

SLEEPER = """name: sleeper
tasks:
  - { name: nap, type: shell, config: { command: 'echo napping; sleep 60' } }
"""

OUTPUT_CAP = 4096

PASSED = []


def ok(what):
    PASSED.append(what)
    print('ok', len(PASSED), '-', what, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=DEADLINE_S, step=0.05):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - not there yet
            last = e
        time.sleep(step)
    raise AssertionError('timed out waiting for %s (%r)' % (what, last))


def big_workflow():
    """1,000 tasks in 20 layers of 50: each depends on the task before it in the layer before,
    and on its neighbour there too."""
    lines = ['name: big', 'description: 1,000 tasks', 'tasks:']
    edges = 0
    for i in range(BIG_TASKS):
        deps = []
        if i >= 50:
            deps.append('t%04d' % (i - 50))
            if (i % 50) + 1 < 50:
                deps.append('t%04d' % (i - 49))
        edges += len(deps)
        lines.append("  - { name: t%04d, type: shell, depends_on: [%s], config: { command: 'true' } }"
                     % (i, ', '.join(deps)))
    return '\n'.join(lines) + '\n', edges


class Daemon:
    def __init__(self, picoflowd, tmp, port):
        self.sock = os.path.join(tmp, 's.sock')
        self.log_path = os.path.join(tmp, 'daemon.log')
        wf = os.path.join(tmp, 'wf')
        os.makedirs(wf)
        for name, text in (('demo.yaml', DEMO), ('broken.yaml', BROKEN)):
            with open(os.path.join(wf, name), 'w') as f:
                f.write(text)
        env = dict(os.environ, HOME=tmp, XDG_RUNTIME_DIR=tmp, XDG_STATE_HOME=tmp,
                   XDG_CONFIG_HOME=tmp)
        env.pop('NOTIFY_SOCKET', None)
        self.env = env
        self.log = open(self.log_path, 'w')
        self.argv = command(picoflowd) + ['--config', '', '--socket', self.sock, '--state-dir',
                                          os.path.join(tmp, 'state'), '--workflows-dir', wf,
                                          '--http-listen', '127.0.0.1:%d' % port,
                                          '--output-cap', str(OUTPUT_CAP)]
        self.tmp = tmp
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.tmp)

    def halt(self):
        """Stops the daemon (SIGTERM); start() starts it again on the same port and state."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(DEADLINE_S)

    def call(self, method, **params):
        """One JSON-RPC call on its own connection; returns the result or raises."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(300)
            s.connect(self.sock)
            s.sendall((json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': method,
                                   'params': params}) + '\n').encode())
            f = s.makefile(encoding='utf-8')
            while True:
                msg = json.loads(f.readline())
                if msg.get('id') == 1:
                    break
        if 'error' in msg:
            raise RuntimeError('%s: %s' % (method, msg['error']['message']))
        return msg['result']

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE_S)
        self.log.close()


class Browser:
    def __init__(self, base, tmp):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = '/usr/bin/chromium'
        for a in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--user-data-dir=' + os.path.join(tmp, 'chrome'),
                  '--window-size=1280,800'):
            opts.add_argument(a)
        opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        self.service = Service('/usr/bin/chromedriver', log_path=os.path.join(tmp, 'chromedriver.log'))
        self.driver = webdriver.Chrome(service=self.service, options=opts)
        self.driver.set_page_load_timeout(DEADLINE_S)
        self.driver.set_script_timeout(DEADLINE_S)
        self.base = base
        # A page script that ran would find alert() replaced by a mark the test reads.
        self.cdp('Page.addScriptToEvaluateOnNewDocument', {'source':
                 'window.alert = (x) => { document.documentElement.dataset.pwned = String(x); };'})
        self.size(1280, 800, False)
        self.console = []

    def cdp(self, cmd, args):
        return self.driver.execute_cdp_cmd(cmd, args)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def size(self, w, h, mobile):
        self.cdp('Emulation.setDeviceMetricsOverride',
                 {'width': w, 'height': h, 'deviceScaleFactor': 1, 'mobile': mobile})

    def scheme(self, value):
        self.cdp('Emulation.setEmulatedMedia',
                 {'features': [{'name': 'prefers-color-scheme', 'value': value}]})

    def open(self, hash_path, timeout=DEADLINE_S):
        """Shows #hash_path and waits until the page says it is drawn; returns the seconds."""
        path = hash_path.split('?')[0]
        start = time.monotonic()
        if not self.driver.current_url.startswith(self.base):
            self.driver.get(self.base + '/#' + hash_path)
        else:
            self.js("document.body.removeAttribute('data-ready');"
                    "if (location.hash === '#' + arguments[0]) location.reload();"
                    "else location.hash = arguments[0];", hash_path)
        wait_for('page %s to be drawn' % hash_path,
                 lambda: self.js('return document.body.dataset.ready') == path, timeout, 0.01)
        return time.monotonic() - start

    def text(self, css):
        return self.js('const e = document.querySelector(arguments[0]); return e ? e.textContent : null', css)

    def count(self, css):
        return self.js('return document.querySelectorAll(arguments[0]).length', css)

    def click(self, css):
        self.js('document.querySelector(arguments[0]).click()', css)

    def message(self):
        return self.js("const m = document.getElementById('msg'); return m.hidden ? '' : document.getElementById('msg-text').textContent")

    def clear_message(self):
        self.js("document.getElementById('msg').hidden = true")

    def set_token(self, token):
        """Types the token into the page's token panel, as a person would."""
        from selenium.webdriver.common.by import By
        if self.js("return document.getElementById('token-panel').hidden"):
            self.click('#token-btn')
        field = self.driver.find_element(By.ID, 'token-input')
        field.clear()
        field.send_keys(token)
        self.click('#token-save')

    def forget_token(self):
        self.click('#token-btn')
        self.click('#token-forget')
        self.click('#token-close')

    def drain_console(self):
        for entry in self.driver.get_log('browser'):
            self.console.append(entry)

    def quit(self):
        try:
            self.driver.quit()
        finally:
            self.service.stop()


def check_assets(base):
    """The four assets and the headers every answer carries."""
    total = 0
    for path, kind in (('/', 'text/html'), ('/app.js', 'javascript'), ('/app.css', 'text/css'),
                       ('/icon.svg', 'image/svg+xml')):
        with urllib.request.urlopen(base + path, timeout=DEADLINE_S) as r:
            body = r.read()
            assert kind in r.headers['Content-Type'], (path, r.headers['Content-Type'])
            csp = r.headers['Content-Security-Policy'] or ''
            assert "script-src 'self'" in csp and 'unsafe-inline' not in csp, (path, csp)
            assert r.headers['X-Content-Type-Options'] == 'nosniff', path
            assert r.headers['Referrer-Policy'], path
            total += len(body)
    assert total <= 150 * 1024, total
    ok('assets served with CSP, nosniff and Referrer-Policy; %d bytes in all (<= 150 KiB)' % total)


def check_overview(b, d, st_version):
    b.open('/')
    wait_for('the run strips', lambda: b.count('.wf-row[data-name="demo"] .sq') == 1)
    rows = b.js("return [...document.querySelectorAll('.wf-row')].map(r => [r.dataset.name, r.dataset.status])")
    assert ['demo', 'failed'] in rows and ['ok', 'succeeded'] in rows, rows
    assert b.text('.wf-row[data-name="demo"] .badge') == 'failed'
    assert b.text('.wf-row[data-name="ok"] .badge') == 'succeeded'
    assert b.count('.wf-row[data-name="ok"] .sq.st-succeeded') == 1
    assert 'daily at 02:00' in b.text('.wf-row[data-name="demo"]'), b.text('.wf-row[data-name="demo"]')
    assert 'broken.yaml' in b.text('main') and "unknown task 'extract'" in b.text('main')
    assert st_version in b.text('main'), st_version
    ok('overview: demo failed, ok succeeded, run strips, schedule in words, the load error, version')


def check_workflow_page(b, d, demo_run):
    b.open('/w/demo')
    assert b.count('svg.dag g.node') == 4, b.count('svg.dag g.node')
    assert b.count('svg.dag path.edge') == 3, b.count('svg.dag path.edge')
    wait_for('nodes coloured by the latest run',
             lambda: 'st-failed' in b.js("return document.querySelector('g.node[data-task=\"load\"]').getAttribute('class')"))
    classes = b.js("return Object.fromEntries([...document.querySelectorAll('g.node')].map(g => [g.dataset.task, g.getAttribute('class')]))")
    assert 'st-succeeded' in classes['fetch'] and 'st-succeeded' in classes['report'], classes
    src_lines = DEMO.rstrip('\n').split('\n')
    assert b.text('.gutter').split('\n') == [str(i + 1) for i in range(len(src_lines))]
    assert b.text('.code') == '\n'.join(src_lines)
    assert b.count('.fires li') == 5, b.count('.fires li')
    assert b.count('table.history tbody tr[data-run="%d"]' % demo_run) == 1
    ok('workflow page: 4 nodes, 3 edges, coloured by run %d; source with %d numbered lines; 5 next fires'
       % (demo_run, len(src_lines)))


def check_run_page(b, d, demo_run):
    b.open('/r/%d' % demo_run)
    reason = b.text('tr.task-row[data-task="load"] td.reason')
    assert reason == 'exited with code 3', reason
    assert b.text('tr.task-row[data-task="load"] .badge') == 'failed'
    assert 'load' in b.text('.run-error'), b.text('.run-error')
    log = b.text('#log')
    for want in ('fetched 3 files', 'disk full: /mnt/usb', '── load · attempt 1 ──'):
        assert want in log, (want, log)
    assert b.count('svg.gantt rect.bar') == 4, b.count('svg.gantt rect.bar')
    assert b.count('svg.gantt rect.bar.st-failed') == 1
    ok('run page: the failed task and its reason, the log with attempt markers, 4 timeline bars')


def check_live(b, d):
    d.call('workflow.submit', source=LIVE)
    run = d.call('run.start', workflow='ticker')['run_id']
    b.open('/r/%d' % run)
    wait_for('line 3 on the page', lambda: 'line 3\n' in (b.text('#log') or ''), DEADLINE_S, 0.02)
    status = d.call('run.get', run_id=run)['status']
    assert status == 'running', 'the run ended before line 3 showed: ' + status
    ok('live: "line 3" shown while run %d is still %s' % (run, status))
    wait_for('the end of the run on the page',
             lambda: b.text('.page-head .badge') == 'succeeded' and 'line 20\n' in b.text('#log'))
    log = b.text('#log')
    assert all(log.count('line %d\n' % i) == 1 for i in range(1, 21)), log
    assert b.text('tr.task-row[data-task="tick"] .badge') == 'succeeded'
    ok('live: all 20 lines once each, and the run shown succeeded when it ended')


def check_workflow_refresh(b, d):
    """A workflow page left open shows a run started elsewhere, and its graph follows it."""
    b.open('/w/ticker')
    run = d.call('run.start', workflow='ticker')['run_id']
    wait_for('run %d in the open page\'s history' % run,
             lambda: b.count('table.history tbody tr[data-run="%d"]' % run) == 1)
    info = "return document.querySelector('.graph-box').previousElementSibling.textContent"
    wait_for('the graph coloured by run %d' % run, lambda: ('run %d' % run) in b.js(info))
    d.call('run.wait', run_id=run)
    ok('workflow page: run %d, started elsewhere, appears and colours the graph without a reload'
       % run)


def runs_of(d, name):
    return [r['id'] for r in d.call('run.list', workflow=name)['runs']]


def check_actions(b, d, ctl, sock):
    b.open('/w/ok')
    before = runs_of(d, 'ok')
    b.click('.run-now')
    wait_for('the 403 message', lambda: '403' in b.message())
    msg403 = b.message()
    assert 'web-token' in msg403, msg403
    assert runs_of(d, 'ok') == before
    ok('run now without a token configured: refused, the page says: ' + msg403)

    out = subprocess.run(command(ctl) + ['--socket', sock, 'web-token'], capture_output=True,
                         text=True, timeout=DEADLINE_S)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().split('\n')[-1].strip()
    assert len(token) >= 16, out.stdout
    b.clear_message()
    b.click('.run-now')
    wait_for('the 401 message', lambda: '401' in b.message())
    assert runs_of(d, 'ok') == before
    assert not b.js("return document.getElementById('token-panel').hidden"), 'the token panel is not offered'
    ok('run now without the token: refused, the page says: ' + b.message())

    b.set_token('wrong' + token)
    b.clear_message()
    b.click('.run-now')
    wait_for('the 401 message for a wrong token', lambda: '401' in b.message())
    assert runs_of(d, 'ok') == before
    b.open('/')
    assert b.message() == '', 'the error followed to another page: ' + b.message()
    b.open('/w/ok')
    ok('run now with a wrong token: 401, nothing started')

    b.set_token(token)
    assert b.js("return localStorage.getItem('picoflow.token')") == token
    b.click('.run-now')
    new = wait_for('a new run', lambda: [i for i in runs_of(d, 'ok') if i not in before])
    wait_for('the new run\'s page', lambda: b.js('return location.hash') == '#/r/%d' % new[0])
    ok('run now with the token: run %d started and shown' % new[0])

    d.call('workflow.submit', source=SLOW)
    slow = d.call('run.start', workflow='slow')['run_id']
    b.forget_token()
    assert b.js("return localStorage.getItem('picoflow.token')") is None
    b.open('/r/%d' % slow)
    b.clear_message()
    b.js("window.confirm = () => true")  # the page asks first (check_run_again)
    b.click('.cancel')
    wait_for('the 401 message on cancel', lambda: '401' in b.message())
    assert d.call('run.get', run_id=slow)['status'] == 'running'
    ok('cancel without the token: refused (401), run %d still running' % slow)
    b.set_token(token)
    b.js("window.confirm = () => true")
    b.click('.cancel')
    wait_for('the run cancelled', lambda: d.call('run.get', run_id=slow)['status'] == 'cancelled')
    wait_for('the page to show it cancelled', lambda: b.text('.page-head .badge') == 'cancelled')
    ok('cancel with the token: run %d cancelled, and the page shows it' % slow)

    b.open('/w/demo')
    b.click('.pause')
    wait_for('demo paused', lambda: d.call('workflow.get', name='demo')['paused'])
    b.open('/w/demo')
    b.click('.resume')
    wait_for('demo resumed', lambda: not d.call('workflow.get', name='demo')['paused'])
    ok('pause and resume with the token')
    return token


def check_triggered(b, d):
    """A run started by a file trigger: the overview says what starts the
    workflow, the run page which file (its name shown as text)."""
    watched = tempfile.mkdtemp(prefix='picoflow-web-trigger-')
    d.call('workflow.submit', source='name: watched\ntriggers:\n  - file: {path: %s, settle: 0s}\n'
           'tasks:\n  - {name: t, type: shell, config: {command: "true"}}\n' % watched)
    landed = os.path.join(watched, '<i>in.csv')
    with open(landed, 'w') as f:
        f.write('x')
    runs = wait_for('the file run', lambda: [r for r in d.call('run.list', workflow='watched')['runs']
                                             if r['status'] == 'succeeded'])
    page = '/w/watched'
    b.driver.get(b.base + '/#' + page)
    wait_for('the workflow page', lambda: b.js('return document.body.dataset.ready') == page)
    assert 'runs start by hand and on file' in b.text('main'), b.text('main')
    assert b.count('.pause') == 1 and 'Pause triggers' in b.text('.pause'), b.text('main')
    b.driver.get(b.base + '/#/')
    wait_for('the overview', lambda: b.js('return document.body.dataset.ready') == '/' and
             b.text('.wf-row[data-name="watched"]') is not None)
    assert 'on file' in b.text('.wf-row[data-name="watched"]'), b.text('.wf-row[data-name="watched"]')
    page = '/r/%d' % runs[0]['id']
    b.driver.get(b.base + '/#' + page)
    wait_for('the run page', lambda: b.js('return document.body.dataset.ready') == page)
    body = b.text('main')
    assert 'file' in body and landed in body, body
    assert b.count('main i') == 0
    shutil.rmtree(watched, ignore_errors=True)
    ok('a run started by a file trigger: "on file" on the overview and the workflow page (with '
       '"Pause triggers"), the file on its run page')


def check_xss(b, d):
    d.call('workflow.submit', source=XSS)
    run = d.call('run.start', workflow='xss')['run_id']
    d.call('run.wait', run_id=run)
    for page in ('/', '/w/xss', '/r/%d' % run):
        b.driver.get(b.base + '/#' + page)  # a new document each time: a fresh alert() trap
        wait_for('page ' + page, lambda: b.js('return document.body.dataset.ready') == page.split('?')[0])
        assert b.js('return document.documentElement.dataset.pwned || null') is None, page
        assert b.count('script') == 1 and b.count('main img, main b, main script') == 0, page
    log = b.text('#log')
    assert '<script>alert(1)</script>' in log and '<img src=x onerror=alert(2)>' in log, log
    b.driver.get(b.base + '/#/')
    wait_for('the overview', lambda: b.js('return document.body.dataset.ready') == '/')
    assert '<img src=x onerror=alert(3)> <b>bold</b>' in b.text('.wf-row[data-name="xss"]')
    assert b.js('return document.documentElement.dataset.pwned || null') is None
    ok('XSS: the description and the output are shown as text, no script ran')


def check_big(b, d, edges):
    source, _ = big_workflow()
    d.call('workflow.submit', source=source)
    run = d.call('run.start', workflow='big')['run_id']
    d.call('run.wait', run_id=run)
    b.open('/')
    took = b.open('/w/big', 120)
    page_ms = b.js('return window.picoflowRenderMs')
    nodes, drawn_edges = b.count('svg.dag g.node'), b.count('svg.dag path.edge')
    assert nodes == BIG_TASKS and drawn_edges == edges, (nodes, drawn_edges, edges)
    wait_for('the big graph coloured', lambda: b.count('svg.dag g.node.st-succeeded') == BIG_TASKS)
    print('  1,000-task workflow page: %d ms in the page (fetch to drawn), %d ms seen by the test'
          % (page_ms, took * 1000))
    if EMULATED:
        print('SKIP the 5 s bound: the daemon runs under an emulator')
    else:
        assert page_ms < BIG_BOUND_MS, page_ms
    ok('1,000-task workflow page: %d nodes, %d edges, drawn in %d ms' % (nodes, drawn_edges, page_ms))
    took = b.open('/r/%d' % run, 120)
    run_ms = b.js('return window.picoflowRenderMs')
    wait_for('all 1,000 task rows', lambda: b.count('tr.task-row') == BIG_TASKS)
    print('  1,000-task run page: %d ms in the page to first rows, %d ms seen by the test'
          % (run_ms, took * 1000))
    if not EMULATED:
        assert run_ms < BIG_BOUND_MS, run_ms
    ok('1,000-task run page: first rows in %d ms, then all 1,000 rows' % run_ms)


EDGES_CLEAR_JS = """
const nodes = [...document.querySelectorAll('svg.dag g.node')].map(g => {
  const r = g.querySelector('rect').getBBox(), m = g.transform.baseVal.consolidate().matrix;
  return {name: g.dataset.task, x: m.e + r.x, y: m.f + r.y, w: r.width, h: r.height};
});
const bad = [];
for (const p of document.querySelectorAll('svg.dag path.edge')) {
  const len = p.getTotalLength();
  for (let d = 0; d <= len; d += 2) {
    const pt = p.getPointAtLength(d);
    for (const n of nodes) {
      if (n.name === p.dataset.from || n.name === p.dataset.to) continue;
      if (pt.x > n.x + 1 && pt.x < n.x + n.w - 1 && pt.y > n.y + 1 && pt.y < n.y + n.h - 1) {
        bad.push(p.dataset.from + '->' + p.dataset.to + ' through ' + n.name);
        break;
      }
    }
    if (bad.length) break;
  }
}
return bad;
"""


def check_graph(b, d):
    """Edges that skip layers go around the nodes between, with arrowheads; the buttons a
    workflow has no use for are not offered."""
    d.call('workflow.submit', source=REPORT)
    b.open('/w/report')
    edges = b.js("return [...document.querySelectorAll('svg.dag path.edge')].map(p => p.dataset.from + '>' + p.dataset.to)")
    assert sorted(edges) == sorted(['count>publish', 'publish>check', 'count>alert', 'publish>alert',
                                    'count>cleanup', 'check>cleanup']), edges
    bad = b.js(EDGES_CLEAR_JS)
    assert not bad, bad
    assert b.count('svg.dag defs marker path') == 1
    assert b.count('svg.dag path.edge[marker-end="url(#arrow)"]') == 6
    ok('graph: 6 edges, none drawn through a node (count->alert, count->cleanup skip layers), each with an arrowhead')
    b.open('/w/demo')
    assert b.js(EDGES_CLEAR_JS) == []
    assert b.count('.run-now') == 1 and b.count('.pause') == 1 and b.count('.run-params') == 0
    b.open('/w/ok')
    assert b.count('.run-now') == 1 and b.count('.pause') == 0 and b.count('.run-params') == 0
    b.open('/w/report')
    assert b.count('.run-params') == 1 and b.count('.pause') == 0
    ok('workflow buttons: "Pause schedule" only with a schedule, "Run with params" only with params')


def check_polish(b, d):
    """Colour codes stripped, output past the cap marked, one header per attempt when two
    tasks' output alternates, times with their UTC offset, round timeline ticks."""
    import re
    d.call('workflow.submit', source=POLISH)
    run = d.call('run.start', workflow='polish')['run_id']
    res = d.call('run.wait', run_id=run)
    assert res['status'] == 'succeeded', res
    b.open('/r/%d' % run)
    log = b.text('#log')
    assert 'red done' in log and '\x1b' not in log and '[31m' not in log, repr(log[:300])
    ok('log: ANSI colour codes stripped ("red done")')
    att = [a for a in d.call('run.get', run_id=run)['attempts'] if a['task'] == 'flood'][0]
    dropped = att['stdout_dropped'] + att['stderr_dropped']
    assert dropped > 0, att
    want = '… %d bytes not kept (output_cap)' % dropped
    assert want in log, (want, log[-400:])
    ok('log: output past the cap shown as "%s"' % want)
    for task in ('ping', 'pong'):
        assert log.count('── %s · attempt 1' % task) == 1, log
        assert all(('%s%d' % (task, i)) in log for i in range(1, 6)), log
    ok('log: alternating output of ping and pong, one header each')
    created = b.js("const dt = [...document.querySelectorAll('.facts dt')].find(x => x.textContent === 'created');"
                   " return dt.nextElementSibling.textContent")
    assert re.match(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d \(', created), created
    ok('times with their UTC offset: ' + created)
    ticks = b.js("return [...document.querySelectorAll('svg.gantt text.tick')].map(t => +t.dataset.ms)")
    assert len(ticks) >= 2 and ticks[0] == 0, ticks
    step = ticks[1]
    mant = step / 10 ** len(str(int(step))) * 10
    assert round(mant, 6) in (1, 2, 5), (step, ticks)
    assert all(abs(t - i * step) < 1e-6 for i, t in enumerate(ticks)), ticks
    ok('timeline ticks at round steps of %g ms' % step)


def check_run_again(b, d, token):
    """"Run again" on a run page starts the workflow with that run's params; Cancel asks first."""
    run = d.call('run.start', workflow='report', params={'day': '2026-12-01'})['run_id']
    d.call('run.wait', run_id=run)
    b.set_token(token)
    b.open('/r/%d' % run)
    label = b.text('.run-again')
    assert 'same params' in label, label
    before = runs_of(d, 'report')
    b.click('.run-again')
    new = wait_for('a new run of report', lambda: [i for i in runs_of(d, 'report') if i not in before])
    params = d.call('run.get', run_id=new[0])['params']
    assert params == {'day': '2026-12-01'}, params
    ok('"%s": run %d started with the params of run %d' % (label, new[0], run))
    d.call('workflow.submit', source=SLOW)
    slow = d.call('run.start', workflow='slow')['run_id']
    b.open('/r/%d' % slow)
    b.js("window.confirm = (m) => { window.pfAsked = m; return false; }")
    b.click('.cancel')
    assert 'Cancel run' in (b.js('return window.pfAsked') or '')
    assert d.call('run.get', run_id=slow)['status'] == 'running'
    b.js("window.confirm = (m) => { window.pfAsked = m; return true; }")
    b.click('.cancel')
    wait_for('run cancelled after confirming', lambda: d.call('run.get', run_id=slow)['status'] == 'cancelled')
    ok('cancel asks for confirmation: declined, nothing stopped; confirmed, cancelled')
    b.open('/w/demo')
    label = b.text('.pager-label')
    assert '#' not in label and '1–' in label, label
    ok('history pager labelled by position: ' + label.strip())


def check_offline(b, d):
    """The daemon stops while a run page is live: a banner says so, without "Failed to fetch";
    it goes when the daemon is back, and the interrupted attempt is labelled as such."""
    d.call('workflow.submit', source=SLEEPER)
    run = d.call('run.start', workflow='sleeper')['run_id']
    b.open('/r/%d' % run)
    wait_for('napping in the log', lambda: 'napping' in (b.text('#log') or ''))
    d.halt()
    wait_for('the banner', lambda: b.js("return !document.getElementById('offline').hidden"))
    assert b.text('#offline') == 'picoflowd is not reachable (retrying)', b.text('#offline')
    wait_for('the run page to say it', lambda: 'not reachable' in b.text('.facts'))
    assert 'Failed to fetch' not in b.text('body')
    ok('daemon stopped: the banner "picoflowd is not reachable (retrying)" on the live run page')
    b.open('/')
    assert 'Failed to fetch' not in b.text('body')
    d.start()
    wait_for('the daemon\'s socket again', lambda: d.call('daemon.version', protocol=1))
    wait_for('the banner gone', lambda: b.js("return document.getElementById('offline').hidden"), 30)
    wait_for('the overview drawn again', lambda: b.count('.wf-row') > 0)
    m = b.message()
    assert not any(x in m for x in ('Refresh failed', 'Failed to fetch', 'not reachable')), m
    ok('daemon back: banner and messages gone, the overview drawn')
    wait_for('attempt 2 of nap', lambda: len(d.call('run.get', run_id=run)['attempts']) >= 2)
    first = d.call('run.get', run_id=run)['attempts'][0]
    b.open('/r/%d' % run)
    if first['status'] == 'interrupted':
        wait_for('the interrupted mark', lambda: b.count('svg.gantt line.wait.interrupted') == 1)
        log = wait_for('both attempts in the log', lambda: (lambda t: 'after an interruption' in t and t)(b.text('#log')))
        assert '── nap · attempt 1 · interrupted ──' in log, log
        assert '(retry)' not in log, log
        ok('the interrupted attempt is labelled interrupted, not a retry, in the timeline and the log')
    else:
        print('  note: attempt 1 is %s, not interrupted' % first['status'])
    d.call('run.cancel', run_id=run)


def screenshots(b, shot_dir, pages, readme_shot):
    os.makedirs(shot_dir, exist_ok=True)
    for scheme in ('light', 'dark'):
        b.scheme(scheme)
        for form, (w, h, mobile) in (('desktop', (1280, 800, False)), ('phone', (390, 844, True))):
            b.size(w, h, mobile)
            for name, path in pages:
                b.driver.get(b.base + '/#' + path)
                wait_for('page ' + path, lambda: b.js('return document.body.dataset.ready') == path.split('?')[0])
                b.clear_message()  # a "done" of an earlier check
                b.js('window.scrollTo(0, 0)')
                bg = b.js('return getComputedStyle(document.documentElement).backgroundColor')
                dark = bg not in ('rgb(246, 247, 249)',)
                assert dark == (scheme == 'dark'), (scheme, bg)
                if form == 'phone':
                    wide = b.js('return document.documentElement.scrollWidth')
                    assert wide <= w, (path, 'wider than the phone', wide)
                    # What matters is on screen, not in a box scrolled sideways.
                    sel = {'overview': '.wf-row td.name, .wf-row td:nth-child(2), .wf-row .strip, .wf-row td:nth-child(5)',
                           'run': 'table.tasks th:nth-child(1), table.tasks th:nth-child(2), table.tasks th:nth-child(7), tr.task-row td.reason',
                           'workflow': 'table.history th:nth-child(1), table.history th:nth-child(2), table.history th:nth-child(4)'
                           }[name if name != 'graph' else 'workflow']
                    off = b.js("return [...document.querySelectorAll(arguments[0])].filter(e => { const r = e.getBoundingClientRect();"
                               " return r.width === 0 || r.right > arguments[1] + 0.5; }).map(e => e.outerHTML.slice(0, 80))", sel, w)
                    assert not off, (path, 'off-screen at 390 px', off)
                b.driver.save_screenshot(os.path.join(shot_dir, '%s-%s-%s.png' % (name, scheme, form)))
                if readme_shot and name == 'run' and scheme == 'light' and form == 'desktop':
                    b.driver.save_screenshot(readme_shot)
    b.scheme('light')
    b.size(1280, 800, False)
    ok('screenshots of %d pages, light and dark, 1280 and 390 px wide, in %s (no page wider than 390 px;'
       ' the important columns on screen)' % (len(pages), shot_dir))


def check_console(b):
    b.drain_console()
    bad = [e for e in b.console if e['level'] == 'SEVERE' and (
        'Content Security Policy' in e['message'] or 'Uncaught' in e['message']
        or 'app.js' in e['message'] and 'Failed to load resource' not in e['message'])]
    assert not bad, bad
    ok('browser console: no CSP violation, no script error (%d entries read)' % len(b.console))


def main():
    picoflowd, ctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix='pfweb-')
    shot_dir = (sys.argv[3] if len(sys.argv) > 3 else os.environ.get('PICOFLOW_SCREENSHOT_DIR')
                or (os.path.join(os.environ['MESON_BUILD_ROOT'], 'meson-logs', 'web-screenshots')
                    if os.environ.get('MESON_BUILD_ROOT') else os.path.join(tmp, 'screenshots')))
    readme_shot = os.environ.get('PICOFLOW_README_SHOT')
    port = free_port()
    base = 'http://127.0.0.1:%d' % port
    d = Daemon(picoflowd, tmp, port)
    b = None
    passed = False
    try:
        wait_for('the daemon\'s socket', lambda: d.call('daemon.version', protocol=1))
        wait_for('the HTTP listener', lambda: urllib.request.urlopen(base + '/', timeout=5).status == 200)
        check_assets(base)
        d.call('workflow.submit', source=OK)
        d.call('run.wait', run_id=d.call('run.start', workflow='ok')['run_id'])
        demo_run = d.call('run.start', workflow='demo')['run_id']
        assert d.call('run.wait', run_id=demo_run)['status'] == 'failed'
        version = d.call('daemon.status')['version']

        b = Browser(base, tmp)
        check_overview(b, d, version)
        check_workflow_page(b, d, demo_run)
        check_run_page(b, d, demo_run)
        check_live(b, d)
        check_workflow_refresh(b, d)
        token = check_actions(b, d, ctl, d.sock)
        check_xss(b, d)
        check_triggered(b, d)
        check_graph(b, d)
        check_polish(b, d)
        check_run_again(b, d, token)
        _, edges = big_workflow()
        check_big(b, d, edges)
        screenshots(b, shot_dir, [('overview', '/'), ('workflow', '/w/demo'), ('run', '/r/%d' % demo_run),
                                  ('graph', '/w/report')],
                    readme_shot)
        check_console(b)
        check_offline(b, d)
        d.stop()
        assert d.proc.returncode == 0, d.proc.returncode
        passed = True
    finally:
        if b:
            try:
                b.quit()
            except Exception as e:  # noqa: BLE001 - the browser may be gone already
                print('browser quit: %s' % e)
        d.stop()
        if not passed:
            with open(d.log_path) as f:
                sys.stderr.write(f.read()[-6000:])
        if not shot_dir.startswith(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print('screenshots were in the temporary directory, removed with it')
            shutil.rmtree(tmp, ignore_errors=True)
    print('%d passed, 0 failed' % len(PASSED))


if __name__ == '__main__':
    main()
