#!/usr/bin/python3
"""The Debian packages: built, checked, installed, run and purged for real.

Usage: /usr/bin/python3 deb_test.py SOURCE_ROOT ARCH

Builds the packages of debian/ for ARCH from a clean copy of the tree with
`cross/deb.sh ARCH` (DEB_BUILD_OPTIONS="nocheck parallel=2"), then:

* lintian on the .changes and every .deb: no error and no warning, and every
  override in debian/*.lintian-overrides has a written reason above it;
* the file list of picoflow, picoflow-http and picoflow-ssh, whole, and their
  Depends (dpkg-shlibdeps': libcurl only for picoflow-http, libssh2 only for
  picoflow-ssh) and Recommends;

for the build machine's own architecture (amd64 in CI):

* `apt-get install ./picoflow*.deb` (runtime dependencies pulled in): the
  programs print the package's version, the picoflow system user and group
  exist, picoflowd.socket and picoflowd.service are enabled, the config is a
  conffile, the unit's Documentation= file is there;
* picoflowd started as its unit starts it: where systemd is PID 1, by
  systemd itself (the postinst started it; the socket is
  /run/picoflow/picoflowd.sock); elsewhere (containers) the test runs the
  installed unit's ExecStart with the unit's Environment=, UMask=,
  StateDirectory= and a NOTIFY_SOCKET of its own, waiting for READY=1 as
  systemd would, plus `--socket` on a temporary socket. Through that socket
  the installed picoflowctl runs the shipped examples/diamond.yaml, and a
  workflow whose http task (against a loopback HTTP server of the test)
  succeeds and whose ssh task fails on the network, not on a missing module;
* an upgrade (`apt-get install --reinstall`) with a run in flight: the run
  resumes after the daemon's restart (systemd's, from the postinst; else the
  test's SIGTERM and start, what the postinst asks systemd for) and
  succeeds, its interrupted attempt recorded; an edited conffile is kept;
* `apt-get remove` keeps the config and /var/lib/picoflow; `apt-get purge`
  leaves nothing: no file of the packages, no /etc/picoflow, no
  /var/lib/picoflow, no user or group, no enablement symlink, no dpkg entry.
  Packages the install pulled in are purged too.

for armhf: the packages are extracted (they cannot be installed on amd64),
`apt-get install --simulate` shows their dependencies resolve for armhf,
and the extracted programs run under qemu-user: --version, and a daemon
(PICOFLOW_MODULE_DIR pointing at the extracted modules) that runs the
diamond and an http task.

Whatever fails, the packages are purged and every process it started is
killed (try/finally). Exit 77 (skipped, with the reason) when not root, or
when a picoflow package is already installed (the test would remove it).
Deadlines only end a hang; no speed is asserted.
"""

import http.server
import json
import os
import pwd
import grp
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
PACKAGES = ('picoflow', 'picoflow-http', 'picoflow-ssh')
BUILD_TIMEOUT_S = 3600.0
CMD_TIMEOUT_S = 600.0
READY_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
UNIT_DIR = '/lib/systemd/system'
UNIT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
QEMU = {'armhf': 'qemu-arm-static', 'arm64': 'qemu-aarch64-static'}


class Failure(Exception):
    """A broken expectation."""


def expect(condition, message):
    if not condition:
        raise Failure(message)


def run(argv, timeout=CMD_TIMEOUT_S, check=True, **kw):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL, **kw)
    if check and out.returncode != 0:
        raise Failure('%s: exit %d\n%s%s' % (shlex.join(argv), out.returncode, out.stdout,
                                             out.stderr))
    return out


def apt_env():
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    for k in [k for k in env if k.startswith('MALLOC_')]:
        del env[k]  # meson's MALLOC_PERTURB_ is for the tests, not for dpkg and g++
    return env


def installed_packages():
    out = run(['dpkg-query', '-W', '-f=${binary:Package} ${db:Status-Abbrev}\n'])
    return {line.split()[0] for line in out.stdout.splitlines()
            if len(line.split()) > 1 and line.split()[1].startswith('i')}


# ---- building and looking at the packages ----

def build(src, arch, out):
    env = apt_env()
    env['DEB_BUILD_OPTIONS'] = 'nocheck parallel=2'
    log = os.path.join(os.path.dirname(out), 'build-%s.log' % arch)
    started = time.monotonic()
    with open(log, 'w') as f:
        r = subprocess.run([os.path.join(src, 'cross', 'deb.sh'), arch, out], cwd=src, env=env,
                           stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                           timeout=BUILD_TIMEOUT_S)
    took = time.monotonic() - started
    if r.returncode != 0:
        raise Failure('cross/deb.sh %s failed (%d); the end of its log:\n%s' %
                      (arch, r.returncode, ''.join(open(log).readlines()[-60:])))
    print('cross/deb.sh %s: %.0f s' % (arch, took))
    debs = {}
    for name in sorted(os.listdir(out)):
        m = re.match(r'^([a-z0-9.+-]+)_([^_]+)_([a-z0-9]+)\.deb$', name)
        if m:
            debs[m.group(1)] = os.path.join(out, name)
            print('  %s %d KiB' % (name, (os.path.getsize(os.path.join(out, name)) + 1023) // 1024))
    for p in PACKAGES:
        expect(p in debs, 'no %s package among %s' % (p, sorted(debs)))
    return debs


def check_lintian(src, out):
    changes = [os.path.join(out, n) for n in os.listdir(out) if n.endswith('.changes')]
    expect(len(changes) == 1, 'expected one .changes in %s: %s' % (out, os.listdir(out)))
    r = run(['lintian', '--fail-on', 'error,warning', '--info', changes[0]], check=False)
    print('lintian %s: exit %d\n%s%s' % (os.path.basename(changes[0]), r.returncode, r.stdout,
                                         r.stderr))
    bad = [l for l in r.stdout.splitlines() if re.match(r'^[EW]: ', l)]
    expect(r.returncode == 0 and not bad, 'lintian reports errors or warnings:\n' + '\n'.join(bad))
    for name in os.listdir(os.path.join(src, 'debian')):
        if not name.endswith('lintian-overrides'):
            continue
        previous = ''
        for line in open(os.path.join(src, 'debian', name)):
            line = line.strip()
            if line and not line.startswith('#'):
                expect(previous.startswith('#'),
                       'debian/%s: override without a reason above it: %s' % (name, line))
            previous = line


def contents(deb):
    """The files and symlinks of a .deb ("path" or "path -> target"), sorted."""
    entries = []
    for line in run(['dpkg-deb', '-c', deb]).stdout.splitlines():
        kind, path = line[0], line.split(None, 5)[5]
        if kind != 'd':
            entries.append(path[2:] if path.startswith('./') else path)
    return sorted(entries)


def expected_contents(src, multiarch):
    examples = sorted(n for n in os.listdir(os.path.join(src, 'examples')) if n.endswith('.yaml'))
    doc = 'usr/share/doc/picoflow/'
    picoflow = [
        'etc/picoflow/picoflowd.yaml',
        'lib/systemd/system/picoflowd.service',
        'lib/systemd/system/picoflowd.socket',
        'usr/bin/picoflowctl',
        'usr/sbin/picoflowd',
        'usr/share/bash-completion/completions/picoflowctl',
        'usr/share/man/man1/picoflowctl.1.gz',
        'usr/share/man/man8/picoflowd.8.gz',
    ] + [doc + n for n in ('README.md', 'changelog.gz', 'copyright', 'cron.md', 'operations.md',
                           'rpc.md', 'workflow-format.md', 'notifications.md', 'scheduling.md',
                           'http-api.md', 'triggers.md', 'fleet.md', 'web-run-page.png',
                           'examples/hardened.conf')]
    picoflow += [doc + 'examples/' + n for n in examples]
    module_dir = 'usr/lib/%s/picoflow/' % multiarch
    return {
        'picoflow': sorted(picoflow),
        'picoflow-http': [module_dir + 'picoflow-http.so', 'usr/share/doc/picoflow-http -> picoflow'],
        'picoflow-ssh': [module_dir + 'picoflow-ssh.so', 'usr/share/doc/picoflow-ssh -> picoflow'],
    }


def field(deb, name):
    return run(['dpkg-deb', '-f', deb, name]).stdout.strip()


def check_packages(src, debs, version, multiarch):
    want = expected_contents(src, multiarch)
    for p in PACKAGES:
        got = contents(debs[p])
        expect(got == want[p], '%s contents differ\n got: %s\nwant: %s' % (p, got, want[p]))
        expect(field(debs[p], 'Version') == version,
               '%s: Version %s, debian/changelog says %s' % (p, field(debs[p], 'Version'), version))
    depends = {p: field(debs[p], 'Depends') for p in PACKAGES}
    print('Depends:\n' + '\n'.join('  %s: %s' % kv for kv in depends.items()))
    expect(not re.search(r'libcurl|libssh2', depends['picoflow']),
           'picoflow depends on libcurl or libssh2: ' + depends['picoflow'])
    expect(re.search(r'\blibcurl4\b', depends['picoflow-http']) and
           'libssh2' not in depends['picoflow-http'], 'picoflow-http: ' + depends['picoflow-http'])
    expect(re.search(r'\blibssh2-1\b', depends['picoflow-ssh']) and
           'libcurl' not in depends['picoflow-ssh'], 'picoflow-ssh: ' + depends['picoflow-ssh'])
    for p in ('picoflow-http', 'picoflow-ssh'):
        expect('picoflow (= %s)' % version in depends[p], '%s: no picoflow (= %s)' % (p, version))
    # Loaded with dlopen, so named by hand (debian/control).
    for lib in ('libhttp-parser2.9', 'libmosquitto1'):
        expect(lib in depends['picoflow'], 'picoflow does not depend on %s: %s' %
               (lib, depends['picoflow']))
    recommends = field(debs['picoflow'], 'Recommends')
    expect(recommends == 'picoflow-http, picoflow-ssh', 'picoflow Recommends: ' + recommends)


# ---- a daemon, and talking to it ----

class Rpc:
    """JSON-RPC calls on a socket, one connection each."""

    def __init__(self, path):
        self.path = path

    def call(self, method, params=None, timeout=RUN_TIMEOUT_S):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(self.path)
            s.sendall(json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': method,
                                  'params': params or {}}).encode() + b'\n')
            reply = json.loads(s.makefile('rb').readline())
        if 'error' in reply:
            raise Failure('%s: %s' % (method, reply['error']))
        return reply['result']


def wait_for(what, predicate, timeout=RUN_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure('gave up waiting for ' + what)
        time.sleep(0.05)


def unit_section(path, section='Service'):
    """KEY -> [values] of one section of a unit file (continuation lines joined)."""
    values, current = {}, None
    text = open(path).read().replace('\\\n', ' ')
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('['):
            current = line.strip('[]')
        elif current == section and '=' in line:
            k, v = line.split('=', 1)
            values.setdefault(k.strip(), []).append(v.strip())
    return values


class UnitDaemon:
    """picoflowd run as the installed unit says, by the test (no systemd as PID 1).

    `root` prefixes the unit's paths (packages extracted, not installed);
    `wrapper` runs the program (qemu-user); `extra_args` come after the
    unit's ExecStart and before --socket; `env` after the unit's environment.
    """

    def __init__(self, work, root='/', wrapper=(), extra_args=(), env=None):
        self.work = work
        self.root = root
        self.wrapper = list(wrapper)
        self.extra_args = list(extra_args)
        self.extra_env = env or {}
        self.socket = os.path.join(work, 'picoflowd.sock')
        self.log_path = os.path.join(work, 'daemon.log')
        self.proc = None
        self.notify = None

    def start(self):
        unit = unit_section(os.path.join(self.root, UNIT_DIR.lstrip('/'), 'picoflowd.service'))
        expect(unit.get('Type') == ['notify'], 'picoflowd.service is not Type=notify')
        argv = shlex.split(unit['ExecStart'][-1].lstrip('@-:+!'))
        argv[0] = os.path.join(self.root, argv[0].lstrip('/'))
        env = {'PATH': UNIT_PATH, 'LANG': 'C.UTF-8'}
        for assignments in unit.get('Environment', []):
            env.update(a.split('=', 1) for a in shlex.split(assignments))
        for f in unit.get('EnvironmentFile', []):
            optional, f = f.startswith('-'), f.lstrip('-')
            if os.path.exists(f) or not optional:
                env.update(l.strip().split('=', 1) for l in open(f)
                           if '=' in l and not l.lstrip().startswith('#'))
        env.update(self.extra_env)
        for name in unit.get('StateDirectory', []) if self.root == '/' else []:
            mode = int(unit.get('StateDirectoryMode', ['0755'])[-1], 8)
            os.makedirs('/var/lib/' + name, exist_ok=True)
            os.chmod('/var/lib/' + name, mode)
        umask = int(unit.get('UMask', ['0022'])[-1], 8)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify_path = os.path.join(self.work, 'notify')
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify.bind(notify_path)
        env['NOTIFY_SOCKET'] = notify_path
        argv = self.wrapper + argv + self.extra_args + ['--socket', self.socket]
        print('starting as the unit would: %s' % shlex.join(argv))
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(argv, cwd='/', env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(umask))
        # Open while the daemon runs, as systemd's is: it also sends STATUS=.
        self.notify = notify
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            notify.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
            try:
                msg = notify.recv(4096).decode()
            except socket.timeout:
                msg = ''
            if 'READY=1' in msg.split('\n'):
                return
            if self.proc.poll() is not None:
                raise Failure('picoflowd exited with %d before READY=1' % self.proc.returncode)
            if time.monotonic() > deadline:
                raise Failure('picoflowd sent no READY=1')

    def restart(self):
        """What `systemctl restart picoflowd` does: SIGTERM, wait, start."""
        self.stop()
        self.start()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure('picoflowd did not stop on SIGTERM')
        self.notify.close()
        expect(code == 0, 'picoflowd exited %d on SIGTERM' % code)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.notify is not None:
            self.notify.close()

    def log(self):
        return open(self.log_path, errors='replace').read() if os.path.exists(self.log_path) else ''


class SystemdDaemon:
    """picoflowd as systemd (PID 1) runs it from the installed units."""

    def __init__(self):
        self.socket = '/run/picoflow/picoflowd.sock'

    def main_pid(self):
        return run(['systemctl', 'show', '-P', 'MainPID', 'picoflowd.service']).stdout.strip()

    def start(self):
        for unit in ('picoflowd.socket', 'picoflowd.service'):
            state = run(['systemctl', 'is-active', unit], check=False).stdout.strip()
            expect(state == 'active', '%s is %s after installation' % (unit, state))

    def restart(self):
        pass  # the postinst did it (deb-systemd-invoke restart picoflowd.service)

    def stop(self):
        pass

    def kill(self):
        pass

    def log(self):
        return run(['journalctl', '-u', 'picoflowd', '--no-pager', '-n', '200'], check=False).stdout


class HttpOk(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '3')
        self.end_headers()
        self.wfile.write(b'ok\n')

    def log_message(self, *args):
        pass


def serve_http():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), HttpOk)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def closing_listener():
    """A TCP port that accepts and at once closes: an ssh task there fails on the network."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(8)

    def loop():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            conn.close()
    threading.Thread(target=loop, daemon=True).start()
    return s


def modules_workflow(http_port, ssh_port):
    return """name: deb-modules
config: { retry_default: 0, timeout_default: 60s }
tasks:
  - name: get
    type: http
    config: { url: "http://127.0.0.1:%d/health", method: GET }
  - name: remote
    type: ssh
    config: { host: 127.0.0.1, port: %d, user: nobody, command: "true" }
""" % (http_port, ssh_port)


def run_workflows(ctl, sock, workdir, with_ssh=True):
    """The shipped diamond, then the modules, through the installed socket."""
    ctl_env = dict(os.environ, PICOFLOW_SOCKET=sock, NO_COLOR='1')
    diamond = os.path.join(workdir, 'diamond.yaml')
    r = run(ctl + ['submit', diamond], env=ctl_env)
    r = run(ctl + ['run', 'diamond', '--wait'], env=ctl_env, check=False)
    expect(r.returncode == 0, 'picoflowctl run diamond --wait: %d\n%s%s' %
           (r.returncode, r.stdout, r.stderr))
    http_server, listener = serve_http(), closing_listener()
    try:
        rpc = Rpc(sock)
        started = rpc.call('run.start', {'source': modules_workflow(
            http_server.server_address[1], listener.getsockname()[1]), 'file': 'modules.yaml'})
        detail = rpc.call('run.wait', {'run_id': started['run_id']})
    finally:
        http_server.shutdown()
        listener.close()
    tasks = {t['name']: t for t in detail['tasks']}
    expect(tasks['get']['status'] == 'succeeded', 'the http task: %s' % tasks['get'])
    if with_ssh:
        expect(tasks['remote']['status'] == 'failed' and
               'cannot load executor module' not in tasks['remote']['error'],
               'the ssh task did not get past loading its module: %s' % tasks['remote'])
        print('ssh task failed as it should, on the network: %s' % tasks['remote']['error'])


# ---- the installed packages (the build machine's architecture) ----

HOLD_WORKFLOW = """name: deb-upgrade
config: { retry_default: 0, timeout_default: 10m }
tasks:
  - name: hold
    type: shell
    config: { command: "until [ -e %s ]; do sleep 0.1; done" }
"""


def check_installed(version, debs):
    for exe in ('/usr/bin/picoflowctl', '/usr/sbin/picoflowd'):
        out = run([exe, '--version']).stdout
        expect(version in out, '%s --version: %r, not %s' % (exe, out, version))
    user, group = pwd.getpwnam('picoflow'), grp.getgrnam('picoflow')
    expect(user.pw_uid < 1000 and group.gr_gid < 1000 and user.pw_gid == group.gr_gid,
           'picoflow is not a system user with its own group: %s %s' % (user, group))
    conffiles = run(['dpkg-query', '-W', '-f=${Conffiles}', 'picoflow']).stdout
    expect('/etc/picoflow/picoflowd.yaml' in conffiles, 'not a conffile: ' + conffiles)
    for link in ('/etc/systemd/system/sockets.target.wants/picoflowd.socket',
                 '/etc/systemd/system/multi-user.target.wants/picoflowd.service'):
        expect(os.path.islink(link), 'not enabled: %s missing' % link)
    docs = [v for v in unit_section(os.path.join(UNIT_DIR, 'picoflowd.service'), 'Unit')
            ['Documentation'][-1].split() if v.startswith('file://')]
    for d in docs:
        expect(os.path.isfile(d[len('file://'):]), 'the unit documents %s: missing' % d)
    for p in PACKAGES:
        listed = run(['dpkg', '-L', p]).stdout.split()
        expect(all(os.path.lexists(f) for f in listed), '%s: a listed file is missing' % p)


def upgrade_with_run_in_flight(daemon, debs, work):
    """`apt-get install --reinstall` while a run waits; the run resumes after the restart."""
    release = os.path.join(work, 'release')
    rpc = Rpc(daemon.socket)
    run_id = rpc.call('run.start', {'source': HOLD_WORKFLOW % release,
                                    'file': 'upgrade.yaml'})['run_id']
    wait_for('the task to run', lambda: rpc.call('run.get', {'run_id': run_id})['tasks'][0]
             ['status'] == 'running')
    with open('/etc/picoflow/picoflowd.yaml', 'a') as f:
        f.write('# edited by deb_test\n')
    run(['apt-get', 'install', '-y', '-q', '--reinstall'] + [debs[p] for p in PACKAGES],
        env=apt_env())
    expect(open('/etc/picoflow/picoflowd.yaml').read().endswith('# edited by deb_test\n'),
           'the upgrade replaced the edited conffile')
    daemon.restart()
    rpc = Rpc(daemon.socket)
    wait_for('the resumed attempt', lambda: rpc.call('run.get', {'run_id': run_id})
             ['tasks'][0]['attempts'] >= 2)
    open(release, 'w').close()
    detail = rpc.call('run.wait', {'run_id': run_id})
    statuses = [a['status'] for a in detail['attempts']]
    expect(detail['status'] == 'succeeded' and statuses == ['interrupted', 'succeeded'],
           'the run across the upgrade: %s, attempts %s' % (detail['status'], statuses))
    print('a run in flight across the upgrade: attempts %s, run %s' % (statuses, detail['status']))


def leftovers(listed):
    left = [f for f in listed if os.path.lexists(f)]
    for path in ('/etc/picoflow', '/var/lib/picoflow', '/run/picoflow'):
        if os.path.lexists(path):
            left.append(path)
    for d in ('/etc/systemd/system', '/var/lib/systemd/deb-systemd-helper-enabled',
              '/var/lib/systemd/deb-systemd-helper-masked'):
        for dirpath, _, names in os.walk(d):
            left += [os.path.join(dirpath, n) for n in names if 'picoflowd' in n]
    for name, db in (('user', pwd.getpwnam), ('group', grp.getgrnam)):
        try:
            db('picoflow')
            left.append('the %s picoflow' % name)
        except KeyError:
            pass
    left += [p for p in PACKAGES if run(['dpkg-query', '-W', '-f=${db:Status-Abbrev}', p],
                                        check=False).stdout.strip() not in ('', 'un')]
    return left


def install_run_purge(src, debs, version, work):
    before = installed_packages()
    systemd = os.path.isdir('/run/systemd/system')
    print('systemd is %sPID 1 here' % ('' if systemd else 'not '))
    daemon = SystemdDaemon() if systemd else UnitDaemon(work)
    listed = []
    try:
        for p in PACKAGES:
            listed += ['/' + entry.split(' -> ')[0] for entry in contents(debs[p])]
        run(['apt-get', 'install', '-y', '-q'] + [debs[p] for p in PACKAGES], env=apt_env())
        check_installed(version, debs)
        daemon.start()
        shutil.copy('/usr/share/doc/picoflow/examples/diamond.yaml', work)
        run_workflows(['/usr/bin/picoflowctl'], daemon.socket, work)
        upgrade_with_run_in_flight(daemon, debs, work)
        daemon.stop()
        run(['apt-get', 'remove', '-y', '-q'] + list(PACKAGES), env=apt_env())
        for kept in ('/etc/picoflow/picoflowd.yaml', '/var/lib/picoflow/picoflow.db'):
            expect(os.path.exists(kept), '%s went with apt-get remove' % kept)
        expect(not os.path.exists('/usr/sbin/picoflowd'), 'apt-get remove left picoflowd')
        run(['apt-get', 'purge', '-y', '-q'] + list(PACKAGES), env=apt_env())
        left = leftovers(listed)
        expect(not left, 'apt-get purge left: %s' % left)
        print('installed, ran, upgraded, removed and purged: nothing left')
    except Failure:
        sys.stderr.write('--- picoflowd log ---\n%s' % daemon.log())
        raise
    finally:
        daemon.kill()
        if any(run(['dpkg-query', '-W', '-f=${db:Status-Abbrev}', p], check=False).stdout.strip()
               not in ('', 'un') for p in PACKAGES):
            run(['apt-get', 'purge', '-y', '-q'] + list(PACKAGES), env=apt_env(), check=False)
        pulled = sorted(installed_packages() - before)
        if pulled:
            print('purging what the install pulled in: %s' % ' '.join(pulled))
            run(['apt-get', 'purge', '-y', '-q'] + pulled, env=apt_env(), check=False)


# ---- a foreign architecture: extracted, run under qemu-user ----

def run_foreign(debs, arch, version, multiarch, work):
    r = run(['apt-get', 'install', '--simulate', '-q'] + [debs[p] for p in PACKAGES],
            env=apt_env(), check=False)
    expect(r.returncode == 0, 'the %s packages do not resolve:\n%s%s' % (arch, r.stdout, r.stderr))
    root = os.path.join(work, 'root')
    for p in PACKAGES:
        run(['dpkg-deb', '-x', debs[p], root])
    qemu = shutil.which(QEMU[arch])
    expect(qemu is not None, '%s not installed (cross/deps.sh installs it)' % QEMU[arch])
    ctl = [qemu, os.path.join(root, 'usr/bin/picoflowctl')]
    for exe in (ctl, [qemu, os.path.join(root, 'usr/sbin/picoflowd')]):
        out = run(exe + ['--version']).stdout
        expect(version in out, '%s --version: %r' % (exe[1], out))
    # The unit's ExecStart (--system) with the packaged config, and state and
    # workflows of the test's: nothing of this machine's /etc or /var is used.
    daemon = UnitDaemon(work, root=root, wrapper=[qemu], extra_args=[
        '--config', os.path.join(root, 'etc/picoflow/picoflowd.yaml'),
        '--state-dir', os.path.join(work, 'state'),
        '--workflows-dir', os.path.join(work, 'workflows')],
        env={'PICOFLOW_MODULE_DIR': os.path.join(root, 'usr/lib', multiarch, 'picoflow')})
    try:
        daemon.start()
        shutil.copy(os.path.join(root, 'usr/share/doc/picoflow/examples/diamond.yaml'), work)
        # No sshd-free way to tell a foreign libssh2 is loadable but by the
        # module's own dlopen: its task must fail on the network too.
        run_workflows(ctl, daemon.socket, work)
        daemon.stop()
        print('%s programs ran under %s' % (arch, os.path.basename(qemu)))
    except Failure:
        sys.stderr.write('--- picoflowd log ---\n%s' % daemon.log())
        raise
    finally:
        daemon.kill()


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    src, arch = sys.argv[1:]
    if os.geteuid() != 0:
        print('SKIP: not root: the test installs and purges packages')
        return SKIP
    present = [p for p in PACKAGES if run(['dpkg-query', '-W', '-f=${db:Status-Abbrev}', p],
                                          check=False).stdout.strip() not in ('', 'un')]
    if present:
        print('SKIP: %s already installed here; the test would purge it' % ' '.join(present))
        return SKIP
    version = run(['dpkg-parsechangelog', '-l', os.path.join(src, 'debian', 'changelog'),
                   '-SVersion']).stdout.strip()
    native = run(['dpkg', '--print-architecture']).stdout.strip()
    work = tempfile.mkdtemp(prefix='picoflow-deb-')
    os.chmod(work, 0o755)  # apt's _apt user reads the .deb files from here
    # examples/diamond.yaml writes it (the unit's environment has no TMPDIR).
    diamond_file = '/tmp/picoflow-diamond.txt'
    diamond_was_there = os.path.exists(diamond_file)
    try:
        out = os.path.join(work, 'debs')
        debs = build(src, arch, out)
        multiarch = run(['dpkg-architecture', '-a' + arch, '-qDEB_HOST_MULTIARCH'],
                        env=dict(os.environ, LC_ALL='C')).stdout.strip()
        check_lintian(src, out)
        check_packages(src, debs, version, multiarch)
        if arch == native:
            install_run_purge(src, debs, version, work)
        else:
            run_foreign(debs, arch, version, multiarch, work)
    except (Failure, subprocess.TimeoutExpired, OSError, KeyError) as e:
        print('FAILED: %s' % e)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not diamond_was_there and os.path.exists(diamond_file):
            os.unlink(diamond_file)
    print('deb %s ok' % arch)
    return 0


if __name__ == '__main__':
    sys.exit(main())
