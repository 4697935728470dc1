#!/usr/bin/python3
"""Replays every example of docs/rpc.md against a real picoflowd.

Usage: /usr/bin/python3 rpc_docs_test.py PATH/TO/picoflowd PATH/TO/docs/rpc.md

What it reads from the document (see its section "How to read the examples"):

* `File: PATH` followed by a fenced block: written to DIR/PATH before the
  daemon starts (DIR is a fresh temporary directory).
* `Request:` (or `Request (note):`) followed by a fenced block: the request
  lines, sent together in one write on the test's connection. With the note
  `read-only peer` they are sent instead on a new connection by a process that
  is neither root nor the daemon's user but a member of its --read-group
  (needs root; skipped otherwise).
* `Response:` (or `Response (note):`) followed by a fenced block: every line
  the daemon must send back for that request block, in order, notifications
  included. The test reads until it has as many responses (lines without
  "method") as the block holds, then compares line by line.

Expected values may use placeholders (docs/rpc.md, "Placeholders"): a string
that is exactly `<int>`, `<number>`, `<string>`, `<bool>`, `<time>`, `<any>`
or `<dir>` matches any value of that kind; inside a longer string each one
matches text of that kind. Objects must have exactly the documented keys,
arrays exactly the documented elements.

The daemon runs as `picoflowd --socket DIR/s.sock --state-dir DIR/state
--workflows-dir DIR/workflows [--read-group nogroup]` with cwd DIR and HOME and
XDG_* pointing into DIR. It is always stopped at the end (SIGTERM, then SIGKILL)
and its log is printed when anything fails. Exit status 0 only if every
example matched.
"""

import ctypes
import grp
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from exec_wrapper import EMULATED, command

# Deadlines only end a hang: no speed is asserted.
READY_TIMEOUT_S = 60.0
BLOCK_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0

TIME_RE = r'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z'
PLACEHOLDERS = ('int', 'number', 'string', 'bool', 'time', 'any', 'dir')
PLACEHOLDER_RE = re.compile(r'<(' + '|'.join(PLACEHOLDERS) + r')>')
LABEL_RE = re.compile(r'^(?:(Request|Response)\s*(?:\(([^)]*)\))?|(File)):\s*(\S*)\s*$')


class Failure(Exception):
    """A mismatch or a broken expectation; the message says what and where."""


# ---- the document ----

class Example:
    def __init__(self, line_no, requests, note):
        self.line_no = line_no      # line of the `Request:` label in the document
        self.requests = requests    # request lines, verbatim
        self.note = note            # '' or the label's parenthesised note
        self.expected = None        # response lines, verbatim
        self.expected_line_no = 0

    @property
    def read_only_peer(self):
        return 'read-only peer' in self.note


def fenced_block(lines, start):
    """Returns (content lines, index after the closing fence) of the fenced
    block opening at or after `start` (blank lines may precede it)."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or not lines[i].startswith('```'):
        raise Failure(f'line {start}: a label must be followed by a fenced block')
    fence = lines[i][:3]
    body = []
    i += 1
    while i < len(lines) and not lines[i].startswith(fence):
        body.append(lines[i])
        i += 1
    if i >= len(lines):
        raise Failure(f'line {start}: unterminated fenced block')
    return body, i + 1


def parse_document(text):
    """Returns (files {relative path: content}, [Example]) in document order."""
    lines = text.split('\n')
    files = {}
    examples = []
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        if line.startswith('```'):
            in_fence = not in_fence
            i += 1
            continue
        m = None if in_fence else LABEL_RE.match(line)
        if not m:
            i += 1
            continue
        kind, note, arg = m.group(1) or m.group(3), m.group(2) or '', m.group(4)
        if kind != 'File' and arg:
            i += 1
            continue  # prose such as "Response: the run", not a label
        body, after = fenced_block(lines, i + 1)
        if kind == 'File':
            if not arg or arg.startswith('/') or '..' in arg.split('/'):
                raise Failure(f'line {i + 1}: File: needs a relative path')
            files[arg] = '\n'.join(body) + '\n'
        elif kind == 'Request':
            if examples and examples[-1].expected is None:
                raise Failure(f'line {i + 1}: Request without a Response before it '
                              f'(line {examples[-1].line_no})')
            reqs = [l for l in body if l.strip()]
            if not reqs:
                raise Failure(f'line {i + 1}: empty Request block')
            examples.append(Example(i + 1, reqs, note))
        else:  # Response
            if not examples or examples[-1].expected is not None:
                raise Failure(f'line {i + 1}: Response without a Request')
            expected = [l for l in body if l.strip()]
            for l in expected:
                try:
                    json.loads(l)
                except ValueError as e:
                    raise Failure(f'line {i + 1}: a Response line is not JSON: {e}: {l}')
            examples[-1].expected = expected
            examples[-1].expected_line_no = i + 1
        i = after
    if examples and examples[-1].expected is None:
        raise Failure(f'line {examples[-1].line_no}: Request without a Response')
    return files, examples


# ---- matching ----

def kind_pattern(name, tmp_dir):
    return {
        'int': r'-?\d+',
        'number': r'-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?',
        'string': r'.*',
        'bool': r'true|false',
        'time': TIME_RE,
        'any': r'.*',
        'dir': re.escape(tmp_dir),
    }[name]


def whole_matches(name, value, tmp_dir):
    if name == 'int':
        return isinstance(value, int) and not isinstance(value, bool)
    if name == 'number':
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == 'string':
        return isinstance(value, str)
    if name == 'bool':
        return isinstance(value, bool)
    if name == 'time':
        return isinstance(value, str) and re.fullmatch(TIME_RE, value) is not None
    if name == 'dir':
        return value == tmp_dir
    return True  # any


def compare(expected, actual, path, tmp_dir, out):
    """Appends to `out` one message per difference under `path`."""
    if isinstance(expected, str):
        whole = PLACEHOLDER_RE.fullmatch(expected)
        if whole:
            if not whole_matches(whole.group(1), actual, tmp_dir):
                out.append(f'{path}: expected {expected}, got {json.dumps(actual)}')
            return
        if PLACEHOLDER_RE.search(expected):
            pattern = ''
            pos = 0
            for m in PLACEHOLDER_RE.finditer(expected):
                pattern += re.escape(expected[pos:m.start()]) + '(?:' + \
                    kind_pattern(m.group(1), tmp_dir) + ')'
                pos = m.end()
            pattern += re.escape(expected[pos:])
            if not isinstance(actual, str) or not re.fullmatch(pattern, actual, re.S):
                out.append(f'{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}')
            return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            out.append(f'{path}: expected an object, got {json.dumps(actual)}')
            return
        for key in expected.keys() - actual.keys():
            out.append(f'{path}.{key}: missing (expected {json.dumps(expected[key])})')
        for key in actual.keys() - expected.keys():
            out.append(f'{path}.{key}: not documented (got {json.dumps(actual[key])})')
        for key in expected.keys() & actual.keys():
            compare(expected[key], actual[key], f'{path}.{key}', tmp_dir, out)
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            out.append(f'{path}: expected an array, got {json.dumps(actual)}')
            return
        if len(expected) != len(actual):
            out.append(f'{path}: expected {len(expected)} elements, got {len(actual)}: '
                       f'{json.dumps(actual)}')
            return
        for n, (e, a) in enumerate(zip(expected, actual)):
            compare(e, a, f'{path}[{n}]', tmp_dir, out)
        return
    same_type = type(expected) is type(actual) or (
        isinstance(expected, (int, float)) and isinstance(actual, (int, float))
        and not isinstance(expected, bool) and not isinstance(actual, bool))
    if not same_type or expected != actual:
        out.append(f'{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}')


def is_response(message):
    return isinstance(message, dict) and 'method' not in message


# ---- the daemon ----

class LineReader:
    """Reads '\\n'-terminated lines from a socket with a deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b''

    def read_line(self, deadline):
        while b'\n' not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no complete line from picoflowd in time')
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError('picoflowd closed the connection')
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b'\n')
        return line.decode('utf-8')


def exchange(sock, reader, requests, responses_wanted, timeout):
    """Sends `requests` in one write; returns the lines received up to and
    including the `responses_wanted`-th response."""
    sock.sendall(''.join(r + '\n' for r in requests).encode('utf-8'))
    deadline = time.monotonic() + timeout
    received = []
    got = 0
    while got < responses_wanted:
        try:
            line = reader.read_line(deadline)
        except (TimeoutError, ConnectionError) as e:
            received.append(f'<{e}>')
            break
        received.append(line)
        try:
            if is_response(json.loads(line)):
                got += 1
        except ValueError:
            got += 1
    return received


# Run as a read-only peer: argv = socket path, responses wanted, timeout;
# request lines on stdin; prints what came back, one line each.
PEER_SCRIPT = r'''
import json, select, socket, sys, time
path, wanted, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(sys.stdin.read().encode())
deadline = time.monotonic() + timeout
buf, got = b"", 0
while got < wanted:
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            print("<no complete line from picoflowd in time>"); sys.exit(0)
        data = s.recv(65536)
        if not data:
            print("<picoflowd closed the connection>"); sys.exit(0)
        buf += data
    line, _, buf = buf.partition(b"\n")
    print(line.decode(), flush=True)
    try:
        if "method" not in json.loads(line): got += 1
    except ValueError:
        got += 1
'''


def read_only_identity():
    """(uid, gid, group name) of a peer for the read group, or None if this
    process cannot act as one (not root, or no nobody/nogroup)."""
    if os.geteuid() != 0:
        return None
    try:
        uid = pwd.getpwnam('nobody').pw_uid
    except KeyError:
        return None
    for name in ('nogroup', 'nobody'):
        try:
            return uid, grp.getgrnam(name).gr_gid, name
        except KeyError:
            continue
    return None


def die_with_parent():
    # PR_SET_PDEATHSIG: the daemon gets SIGTERM if this script dies abruptly.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except Exception:  # pylint: disable=broad-except
        pass


class Daemon:
    def __init__(self, exe, tmp_dir, read_group):
        self.exe = exe
        self.dir = tmp_dir
        self.socket = os.path.join(tmp_dir, 's.sock')
        self.log_path = os.path.join(tmp_dir, 'picoflowd.log')
        self.read_group = read_group
        self.proc = None

    def start(self):
        args = command(self.exe) + [
            '--socket', self.socket, '--state-dir', os.path.join(self.dir, 'state'),
            '--workflows-dir', os.path.join(self.dir, 'workflows')]
        if self.read_group:
            args += ['--read-group', self.read_group]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('XDG_', 'NOTIFY_SOCKET', 'LISTEN_', 'PICOFLOW_'))}
        env.update(HOME=self.dir, XDG_RUNTIME_DIR=self.dir,
                   XDG_STATE_HOME=os.path.join(self.dir, 'xdg-state'),
                   XDG_CONFIG_HOME=os.path.join(self.dir, 'xdg-config'), TZ='UTC')
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(args, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=die_with_parent)

    def wait_ready(self):
        """Polls daemon.version until it answers, against a deadline."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = 'nothing tried'
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f'picoflowd exited with status {self.proc.returncode} at start')
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                    s.sendall(b'{"jsonrpc":"2.0","id":0,"method":"daemon.version"}\n')
                    line = LineReader(s).read_line(deadline)
                    if json.loads(line).get('result', {}).get('protocol') is not None:
                        return
                    last = line
            except (OSError, TimeoutError, ConnectionError, ValueError) as e:
                last = str(e)
            # Poll interval of the readiness loop (bounded by the deadline).
            time.sleep(0.02)
        raise Failure(f'picoflowd not ready after {READY_TIMEOUT_S} s: {last}')

    def stop(self):
        """SIGTERM, then SIGKILL past the timeout. Returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return 'killed'

    def log(self):
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as f:
                return f.read()
        except OSError as e:
            return f'(no log: {e})'


# ---- the test ----

def run_peer_example(daemon, example, identity):
    uid, gid, _ = identity
    wanted = sum(1 for l in example.expected if is_response(json.loads(l)))
    proc = subprocess.run(
        [sys.executable, '-c', PEER_SCRIPT, daemon.socket, str(wanted), str(BLOCK_TIMEOUT_S)],
        input=''.join(r + '\n' for r in example.requests), capture_output=True, text=True,
        user=uid, group=gid, extra_groups=[], cwd='/', timeout=BLOCK_TIMEOUT_S + 10)
    if proc.returncode != 0:
        return [f'<the read-only peer failed: {proc.stderr.strip()}>']
    return proc.stdout.splitlines()


# Under qemu-user (cross/test.sh) posix_spawn returns before the task's
# setsid(), so a run.cancel sent at once can miss the new process group; the
# task then ends with the grace period's SIGKILL instead of the SIGTERM.
EMULATION_SIGNAL_DIFF = re.compile(r'\$\.result\.attempts\[\d+\]\.signal: expected 15, got 9')


def check_example(example, received, tmp_dir, doc_name):
    """Returns the report of a mismatch, or '' if `received` matches."""
    problems = []
    for n in range(max(len(example.expected), len(received))):
        if n >= len(received):
            problems.append(f'line {n + 1}: missing; expected {example.expected[n]}')
            continue
        if n >= len(example.expected):
            problems.append(f'line {n + 1}: not documented: {received[n]}')
            continue
        try:
            actual = json.loads(received[n])
        except ValueError:
            problems.append(f'line {n + 1}: not JSON: {received[n]}')
            continue
        diffs = []
        compare(json.loads(example.expected[n]), actual, '$', tmp_dir, diffs)
        if EMULATED and any(EMULATION_SIGNAL_DIFF.fullmatch(d) for d in diffs):
            print(f'SKIP {doc_name}:{example.line_no} line {n + 1}: signal 9 for 15 accepted '
                  'under qemu-user (its posix_spawn returns before the setsid)')
            diffs = [d for d in diffs if not EMULATION_SIGNAL_DIFF.fullmatch(d)]
        if diffs:
            problems.append(f'line {n + 1}:\n      expected {example.expected[n]}\n'
                            f'      got      {received[n]}\n' +
                            '\n'.join('      - ' + d for d in diffs))
    if not problems:
        return ''
    return (f'example at {doc_name}:{example.line_no} (response at line '
            f'{example.expected_line_no}) does not match\n  request:\n' +
            ''.join(f'    {r}\n' for r in example.requests) +
            '  differences:\n' + '\n'.join('    ' + p for p in problems))


def prepare_dir(files, identity):
    tmp_dir = tempfile.mkdtemp(prefix='pfdoc-', dir='/tmp')
    if identity:
        # The read group must be able to reach the socket: 0750, group-owned.
        os.chown(tmp_dir, 0, identity[1])
        os.chmod(tmp_dir, 0o750)
    os.mkdir(os.path.join(tmp_dir, 'workflows'), 0o700)
    for rel, content in files.items():
        path = os.path.join(tmp_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(content)
    return tmp_dir


def main(argv):
    if len(argv) != 3:
        print('usage: rpc_docs_test.py PICOFLOWD RPC_MD', file=sys.stderr)
        return 2
    exe, doc_path = os.path.abspath(argv[1]), argv[2]
    # meson stops a test with SIGTERM: turn it into an exception so the
    # daemon is still stopped by the finally below.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _f: sys.exit(f'stopped by signal {s}'))
    try:
        with open(doc_path, encoding='utf-8') as f:
            files, examples = parse_document(f.read())
    except (Failure, OSError) as e:
        print(f'FAIL: {doc_path}: {e}')
        return 1
    if not examples:
        print(f'FAIL: no examples found in {doc_path}')
        return 1
    identity = read_only_identity()
    tmp_dir = prepare_dir(files, identity)
    daemon = Daemon(exe, tmp_dir, identity[2] if identity else None)
    failures = []
    skipped = 0
    started = time.monotonic()
    ok = False
    try:
        daemon.start()
        daemon.wait_ready()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(daemon.socket)
            reader = LineReader(sock)
            for example in examples:
                if example.read_only_peer:
                    if identity is None:
                        skipped += 1
                        print(f'SKIP {os.path.basename(doc_path)}:{example.line_no}: '
                              'a read-only peer needs root')
                        continue
                    received = run_peer_example(daemon, example, identity)
                else:
                    wanted = sum(1 for l in example.expected if is_response(json.loads(l)))
                    received = exchange(sock, reader, example.requests, wanted, BLOCK_TIMEOUT_S)
                report = check_example(example, received, tmp_dir,
                                       os.path.basename(doc_path))
                if report:
                    failures.append(report)
                    print('FAIL ' + report)
                    if any(l.startswith('<') for l in received):
                        break  # the connection is gone or stuck: nothing after can match
        ok = not failures
    except (Failure, OSError) as e:
        failures.append(str(e))
        print(f'FAIL: {e}')
    except SystemExit as e:  # SIGTERM/SIGINT, see above
        failures.append(str(e.code))
        print(f'FAIL: {e.code}')
    finally:
        status = daemon.stop()
        if status not in (0, None) and ok:
            failures.append(f'picoflowd exited with status {status} on SIGTERM')
            print(f'FAIL: picoflowd exited with status {status} on SIGTERM')
        if failures:
            print(f'---- picoflowd log ({daemon.log_path}) ----')
            print(daemon.log())
            print(f'---- kept {tmp_dir} for inspection ----')
        else:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    checked = len(examples) - skipped
    print(f'{checked} examples checked, {skipped} skipped, {len(failures)} failed, '
          f'{time.monotonic() - started:.2f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
