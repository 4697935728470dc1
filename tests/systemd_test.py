#!/usr/bin/python3
"""picoflowd under systemd's protocols, without systemd as PID 1.

Usage: /usr/bin/python3 systemd_test.py PATH/TO/picoflowd

Each case starts a real picoflowd in a fresh temporary directory (HOME and
XDG_* point into it, --config '' so no config file of the machine is read):

* notify: NOTIFY_SOCKET is a datagram socket the test owns. READY=1 must come,
  and the control socket must already answer then; with WATCHDOG_USEC=200000
  WATCHDOG=1 pings keep coming, never more often than every 100 ms; a run
  moves STATUS= to "1 active run"
  and back; the run's task sees neither NOTIFY_SOCKET nor LISTEN_*; SIGTERM
  brings STOPPING=1 and exit 0.
* abstract: NOTIFY_SOCKET=@name (abstract namespace) works too.
* quiet: without WATCHDOG_USEC (or with a WATCHDOG_PID of another process)
  no WATCHDOG=1 is ever sent.
* activate: systemd-socket-activate listens; a client connects and sends its
  request before picoflowd even exists; the daemon started on that
  connection adopts fd 3 and answers it.
* emulated: the test binds and listens itself, then forks and execs
  picoflowd with the socket at fd 3, LISTEN_FDS=1 and LISTEN_PID set in the
  child; also checks that the daemon never unlinks a socket it adopted.
* config: picoflowd.yaml given by --config and found in XDG_CONFIG_HOME sets
  the socket; a flag wins over it; an unknown key stops the daemon (exit 2)
  with FILE:LINE:COL and a did-you-mean hint.

Every wait has a deadline, which only ends a hang (no speed is asserted);
every process started is killed at the end; the daemon's log is printed when
a case fails. Exit 0 only if every case passed.
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

from exec_wrapper import command

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 30.0


class Failure(Exception):
    """A broken expectation."""


class Case:
    """A temporary directory, the daemon started in it, and its log."""

    def __init__(self, picoflowd, name):
        self.picoflowd = picoflowd
        self.name = name
        self.dir = tempfile.mkdtemp(prefix='picoflow-systemd-')
        self.log_path = os.path.join(self.dir, 'daemon.log')
        self.proc = None
        self.pid = None  # for a daemon forked by hand
        self.sockets = []

    def env(self, extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('NOTIFY_SOCKET', 'WATCHDOG_', 'LISTEN_'))}
        env.update({
            'HOME': self.dir,
            'XDG_RUNTIME_DIR': os.path.join(self.dir, 'run'),
            'XDG_STATE_HOME': os.path.join(self.dir, 'state-home'),
            'XDG_CONFIG_HOME': os.path.join(self.dir, 'config'),
        })
        env.update(extra)
        return env

    def args(self):
        return command(self.picoflowd) + [
                '--config', '', '--socket', self.path('s.sock'),
                '--state-dir', self.path('state'), '--workflows-dir', self.path('workflows'),
                '--shutdown-grace', '2']

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, extra_env, argv=None):
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(argv or self.args(), env=self.env(extra_env),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.dir)
        self.pid = self.proc.pid

    def notify_socket(self, abstract=False):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = 'picoflow-test-%d-%d' % (os.getpid(), time.monotonic_ns())
            sock.bind('\0' + name)
            address = '@' + name
        else:
            address = self.path('notify.sock')
            sock.bind(address)
        self.sockets.append(sock)
        return sock, address

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.pid = None
                if self.proc is not None:
                    self.proc.returncode = os.waitstatus_to_exitcode(status)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        raise Failure('picoflowd did not exit within %.0f s' % timeout)

    def close(self, failed):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for sock in self.sockets:
            sock.close()
        if failed and os.path.exists(self.log_path):
            sys.stderr.write('---- picoflowd log (%s) ----\n' % self.name)
            with open(self.log_path, encoding='utf-8', errors='replace') as f:
                sys.stderr.write(f.read())
            sys.stderr.write('---- end of log ----\n')
        shutil.rmtree(self.dir, ignore_errors=True)


def receive(sock, timeout):
    """The next datagram as a dict of KEY=VALUE lines, or None at the deadline."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return None
    fields = {}
    for line in data.decode().split('\n'):
        if '=' in line:
            key, value = line.split('=', 1)
            fields[key] = value
    return fields


def wait_for(sock, key, timeout, seen=None):
    """Reads datagrams until one sets `key`; returns it. Others go to `seen`."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        msg = receive(sock, max(left, 0.001)) if left > 0 else None
        if msg is None:
            raise Failure('no %s= within %.1f s (got %r)' % (key, timeout, seen))
        if seen is not None:
            seen.append(msg)
        if key in msg:
            return msg


def call(path, method, params=None, timeout=CALL_TIMEOUT_S, connected=None):
    """One JSON-RPC call on a new connection (or `connected`); returns the answer."""
    sock = connected or socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if connected is None:
            sock.connect(path)
        request = {'jsonrpc': '2.0', 'id': 1, 'method': method, 'params': params or {}}
        sock.sendall((json.dumps(request) + '\n').encode())
        buf = b''
        while b'\n' not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise Failure('%s: connection closed before an answer' % method)
            buf += chunk
        return json.loads(buf.split(b'\n', 1)[0])
    finally:
        sock.close()


def expect(condition, message):
    if not condition:
        raise Failure(message)


def count_watchdogs(sock, seconds):
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        msg = receive(sock, max(deadline - time.monotonic(), 0.001))
        if msg is not None and msg.get('WATCHDOG') == '1':
            n += 1
    return n


def count_watchdogs_until(sock, wanted, at_least_s, timeout):
    """Counts WATCHDOG=1 pings until `wanted` came and `at_least_s` passed, or
    until `timeout` (which only ends a hang)."""
    start = time.monotonic()
    deadline = start + timeout
    n = 0
    while True:
        now = time.monotonic()
        left = deadline - now if n < wanted else min(deadline, start + at_least_s) - now
        if left <= 0:
            return n
        msg = receive(sock, left)
        if msg is not None and msg.get('WATCHDOG') == '1':
            n += 1


def case_notify(c):
    sock, address = c.notify_socket()
    spawned = time.monotonic()  # the daemon's clock, and its pings, start later
    c.start({'NOTIFY_SOCKET': address, 'WATCHDOG_USEC': '200000'})
    ready = wait_for(sock, 'READY', READY_TIMEOUT_S)
    expect(ready['READY'] == '1', 'READY=%s' % ready['READY'])
    expect(ready.get('STATUS') == '0 active runs', 'STATUS with READY: %r' % ready)
    # READY comes after the socket listens: it must answer at once.
    version = call(c.path('s.sock'), 'daemon.version')
    expect('result' in version, 'daemon.version after READY: %r' % version)
    # Pings keep coming (a busy machine may delay them, never advance them):
    # five, over a second at least; one at READY, then at most one per 100 ms
    # of the daemon's clock (+1 for its rounding to whole milliseconds).
    pings = count_watchdogs_until(sock, 5, 1.0, READY_TIMEOUT_S)
    elapsed = time.monotonic() - spawned
    expect(pings >= 5, 'WATCHDOG=1 pings with WATCHDOG_USEC=200000: only %d' % pings)
    expect(pings <= 2 + elapsed / 0.1,
           'WATCHDOG=1 pings with WATCHDOG_USEC=200000: %d in %.2f s' % (pings, elapsed))

    # A run moves STATUS=; its task must see none of the daemon's systemd env.
    env_file = c.path('task-env.txt')
    source = ('name: envcheck\ntasks:\n  - name: dump\n    type: shell\n'
              '    config: { command: "sleep 0.3; env > %s" }\n' % env_file)
    started = call(c.path('s.sock'), 'run.start', {'source': source})
    expect('result' in started, 'run.start: %r' % started)
    seen = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    statuses = []
    while time.monotonic() < deadline and '0 active runs' not in statuses:
        msg = wait_for(sock, 'STATUS', deadline - time.monotonic(), seen)
        statuses.append(msg['STATUS'])
    expect(statuses == ['1 active run', '0 active runs'],
           'STATUS lines during a run: %r' % statuses)
    with open(env_file, encoding='utf-8') as f:
        names = [line.split('=', 1)[0] for line in f]
    leaked = [n for n in names if n in ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID',
                                        'LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES')]
    expect(not leaked, 'the task saw %r' % leaked)

    os.kill(c.pid, signal.SIGTERM)
    stopping = wait_for(sock, 'STOPPING', STOP_TIMEOUT_S, [])
    expect(stopping['STOPPING'] == '1', 'STOPPING=%s' % stopping['STOPPING'])
    code = c.wait_exit(STOP_TIMEOUT_S)
    expect(code == 0, 'exit code after SIGTERM: %d' % code)
    # Nothing pings after the daemon is gone.
    expect(count_watchdogs(sock, 0.3) == 0, 'WATCHDOG=1 after exit')


def case_abstract(c):
    sock, address = c.notify_socket(abstract=True)
    c.start({'NOTIFY_SOCKET': address})
    wait_for(sock, 'READY', READY_TIMEOUT_S)
    os.kill(c.pid, signal.SIGTERM)
    wait_for(sock, 'STOPPING', STOP_TIMEOUT_S, [])
    expect(c.wait_exit(STOP_TIMEOUT_S) == 0, 'exit code after SIGTERM')


def case_quiet(c):
    for extra in ({}, {'WATCHDOG_USEC': '200000', 'WATCHDOG_PID': '1'}):
        sock, address = c.notify_socket()
        c.start(dict(extra, NOTIFY_SOCKET=address))
        wait_for(sock, 'READY', READY_TIMEOUT_S)
        pings = count_watchdogs(sock, 0.6)
        expect(pings == 0, 'WATCHDOG=1 sent with %r: %d' % (extra, pings))
        os.kill(c.pid, signal.SIGTERM)
        expect(c.wait_exit(STOP_TIMEOUT_S) == 0, 'exit code after SIGTERM')
        sock.close()
        c.sockets.remove(sock)
        os.unlink(address)


def find_socket_activate():
    for path in ('/usr/bin/systemd-socket-activate', '/lib/systemd/systemd-socket-activate'):
        if os.access(path, os.X_OK):
            return path
    return None


def connect_retry(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise Failure('nothing listens on %s' % path)
            time.sleep(0.02)


def case_activate(c):
    tool = find_socket_activate()
    if tool is None:
        print('activate: SKIP (systemd-socket-activate not installed)')
        return
    listen = c.path('act.sock')
    daemon = c.args()
    daemon[daemon.index('--socket') + 1] = c.path('unused.sock')
    c.start({}, [tool, '-l', listen] + daemon)
    # The tool listens first and execs picoflowd only on the first connection:
    # the request is written before the daemon exists.
    client = connect_retry(listen, READY_TIMEOUT_S)
    answer = call(listen, 'daemon.version', connected=client, timeout=READY_TIMEOUT_S)
    expect('result' in answer, 'daemon.version through an activated socket: %r' % answer)
    expect(not os.path.exists(c.path('unused.sock')), 'picoflowd listened on --socket too')
    second = call(listen, 'daemon.status')
    expect('result' in second, 'second connection: %r' % second)
    os.kill(c.pid, signal.SIGTERM)  # the tool exec()ed picoflowd: same pid
    expect(c.wait_exit(STOP_TIMEOUT_S) == 0, 'exit code after SIGTERM')


def case_emulated(c):
    listen_path = c.path('emu.sock')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(listen_path)
    listener.listen(16)
    c.sockets.append(listener)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(listen_path)  # queued in the backlog before the daemon starts
    argv = c.args()
    argv[argv.index('--socket') + 1] = c.path('unused.sock')
    env = c.env({'LISTEN_FDS': '1'})
    log = os.open(c.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    pid = os.fork()
    if pid == 0:  # the child: fd 3 is the socket, LISTEN_PID is its own pid
        try:
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.dup2(listener.fileno(), 3, inheritable=True)
            os.set_inheritable(3, True)  # dup2 does nothing if it already was fd 3
            env['LISTEN_PID'] = str(os.getpid())
            os.chdir(c.dir)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(log)
    c.pid = pid
    answer = call(listen_path, 'daemon.version', connected=client, timeout=READY_TIMEOUT_S)
    expect('result' in answer, 'daemon.version through an inherited socket: %r' % answer)
    expect(not os.path.exists(c.path('unused.sock')), 'picoflowd listened on --socket too')
    os.kill(pid, signal.SIGTERM)
    expect(c.wait_exit(STOP_TIMEOUT_S) == 0, 'exit code after SIGTERM')
    expect(os.path.exists(listen_path), 'picoflowd removed the socket file it was given')


def wait_answer(path, timeout):
    """daemon.version on `path` once something listens there, within `timeout`."""
    client = connect_retry(path, timeout)
    return call(path, 'daemon.version', connected=client, timeout=timeout)


def case_config(c):
    """picoflowd.yaml: read by --config and from XDG_CONFIG_HOME; flags win; errors stop."""
    conf = c.path('pf.yaml')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write('# test\nsocket: %s\nstate_dir: %s\nworkflows_dir: %s\nlog_level: debug\n'
                'shutdown_grace: 1s\n' % (c.path('c.sock'), c.path('st'), c.path('wf')))
    base = command(c.picoflowd) + ['--config', conf]
    c.start({}, base)
    expect('result' in wait_answer(c.path('c.sock'), READY_TIMEOUT_S), 'no answer on c.sock')
    os.kill(c.pid, signal.SIGTERM)
    expect(c.wait_exit(STOP_TIMEOUT_S) == 0, 'exit code after SIGTERM')

    c.start({}, base + ['--socket', c.path('flag.sock')])
    expect('result' in wait_answer(c.path('flag.sock'), READY_TIMEOUT_S), 'no answer on flag.sock')
    expect(not os.path.exists(c.path('c.sock')), 'the file won over --socket')
    os.kill(c.pid, signal.SIGTERM)
    expect(c.wait_exit(STOP_TIMEOUT_S) == 0, 'exit code after SIGTERM')

    # User mode without --config: $XDG_CONFIG_HOME/picoflow/picoflowd.yaml.
    os.makedirs(c.path('config/picoflow'))
    shutil.copy(conf, c.path('config/picoflow/picoflowd.yaml'))
    c.start({}, command(c.picoflowd))
    expect('result' in wait_answer(c.path('c.sock'), READY_TIMEOUT_S), 'XDG config not read')
    os.kill(c.pid, signal.SIGTERM)
    expect(c.wait_exit(STOP_TIMEOUT_S) == 0, 'exit code after SIGTERM')

    bad = c.path('bad.yaml')
    with open(bad, 'w', encoding='utf-8') as f:
        f.write('socket: /x.sock\nstate-dir: /y\n')
    out = subprocess.run(command(c.picoflowd) + ['--config', bad], env=c.env({}), capture_output=True,
                         text=True, timeout=READY_TIMEOUT_S, check=False)
    want = "%s:2:1: unknown key 'state-dir' (did you mean 'state_dir'?)" % bad
    expect(out.returncode == 2 and want in out.stderr,
           'bad config: %d %r' % (out.returncode, out.stderr))


CASES = [('notify', case_notify), ('abstract', case_abstract), ('quiet', case_quiet),
         ('activate', case_activate), ('emulated', case_emulated), ('config', case_config)]


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    picoflowd = os.path.abspath(sys.argv[1])
    failed = 0
    for name, fn in CASES:
        c = Case(picoflowd, name)
        ok = False
        try:
            fn(c)
            ok = True
            print('%s: ok' % name)
        except Exception as e:  # noqa: BLE001 - report every kind of failure
            print('%s: FAILED: %s' % (name, e))
            failed += 1
        finally:
            c.close(not ok)
    print('%d passed, %d failed' % (len(CASES) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
