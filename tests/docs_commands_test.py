#!/usr/bin/python3
"""Runs the shell commands that README.md and docs/*.md show, against a real picoflowd.

Usage: /usr/bin/python3 docs_commands_test.py PATH/TO/picoflowd PATH/TO/picoflowctl SOURCE_ROOT

What it reads: every fenced block marked ```sh (also ```bash, ```console) of
README.md and docs/*.md. A block right after the line
`<!-- docs-test: skip: REASON -->` is not run (the reason is required: root,
systemd, package installs, cross builds). An indented block that starts with a
`picoflowctl` or `picoflowd` command is an error: commands are fenced ```sh.

How it runs them: per document, one picoflowd on a temporary socket
(PICOFLOW_SOCKET points at it), cwd a temporary directory holding a copy of
examples/*.yaml (plus the hello.yaml docs/rpc.md submits), HOME and XDG_*
inside it. A document's runnable blocks run in order in one bash script, so a
variable one block sets serves the next. In it `picoflowctl` is a function
that runs this build's picoflowctl and records its arguments, exit status and
output; `picoflowd` runs this build's picoflowd for `--once` and is a no-op
otherwise (the test's daemon is already running). Placeholders (RUN_ID) are
replaced by real values. The daemon also serves its HTTP listener on a free
port, which stands in for the docs' 127.0.0.1:8080.

It fails if a `picoflowctl` command exits with another status than expected
(0, or what EXPECTED_EXIT says and why), if any picoflowctl prints an
"unknown command/option" style error, or if another command of a block
fails. Also: every subcommand `picoflowctl --help` lists must be in
man/picoflowctl.1's COMMANDS. Tools a block needs that this machine lacks
(socat) are replaced by a stub that says so, and the test prints a note.
"""

import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from exec_wrapper import command

# Deadlines only end a hang: no speed is asserted.
READY_TIMEOUT_S = 60.0
SCRIPT_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0

FENCE_RE = re.compile(r'^```(\w*)\s*$')
SKIP_RE = re.compile(r'^<!-- docs-test: skip: (.*\S) -->$')
SHELL_LANGS = ('sh', 'bash', 'console')
UNKNOWN_RE = re.compile(r'unknown (command|option|subcommand|flag)|not a command|'
                        r'The following argument was not expected|'
                        r'could not be matched', re.IGNORECASE)

# Commands whose documented use does not exit 0 here, and why. Keyed by the
# command as the document shows it (comments stripped).
EXPECTED_EXIT = {
    # examples/backup.yaml names hosts that do not exist (its own comment says so).
    'picoflowctl run backup-workflow --follow': 1,
    # README's failed-run example: examples/timeout.yaml times out on purpose.
    'picoflowctl run timeout-demo --wait': 1,
    'picoflowd --once backup.yaml': 1,
    # RUN_ID is the run above, which has ended: there is nothing to cancel.
    'picoflowctl cancel RUN_ID': 1,
    # docs/notifications.md shows the records of a run 12 it does not have: `no run 12`.
    'picoflowctl notifications 12': 1,
}

# A workflow named hello for docs/rpc.md's "Using the socket from a script".
HELLO_YAML = """name: hello
tasks:
  - name: greet
    type: shell
    config: { command: "echo hello" }
"""

# What stands in for socat when it is not installed: the one form the docs
# use, `socat -t SECONDS - UNIX-CONNECT:PATH` (send standard input, then print
# what comes back until the peer closes or SECONDS pass without a byte).
SOCAT_STUB = r'''
import socket, sys
args = sys.argv[1:]
if len(args) != 4 or args[0] != '-t' or args[2] != '-' or not args[3].startswith('UNIX-CONNECT:'):
    sys.exit('socat stand-in: only `socat -t N - UNIX-CONNECT:PATH` is supported: %s' % args)
s = socket.socket(socket.AF_UNIX)
s.settimeout(float(args[1]))
s.connect(args[3][len('UNIX-CONNECT:'):])
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
while True:
    data = s.recv(65536)
    if not data:
        break
    sys.stdout.buffer.write(data)
'''


class Block:
    def __init__(self, path, line_no, lang, lines, skip_reason):
        self.path = path
        self.line_no = line_no      # line of the opening fence
        self.lang = lang
        self.lines = lines
        self.skip_reason = skip_reason


def read_blocks(path):
    """The fenced shell blocks of `path`, and errors for unfenced commands."""
    blocks, errors = [], []
    lines = open(path, encoding='utf-8').read().split('\n')
    i = 0
    prev_text = ''
    while i < len(lines):
        line = lines[i]
        m = FENCE_RE.match(line)
        if m:
            start = i
            j = i + 1
            while j < len(lines) and not lines[j].startswith('```'):
                j += 1
            if m.group(1) in SHELL_LANGS:
                skip = SKIP_RE.match(prev_text)
                if prev_text.startswith('<!-- docs-test') and not skip:
                    errors.append(f'{path}:{start}: a skip marker needs a reason: {prev_text}')
                blocks.append(Block(path, start + 1, m.group(1), lines[start + 1:j],
                                    skip.group(1) if skip else None))
            i = j + 1
            prev_text = ''
            continue
        if (line.startswith('    ') and i > 0 and not lines[i - 1].startswith('    ') and
                re.match(r'(\$ )?picoflow(ctl|d)( |$)', line[4:]) and
                not lines[i - 1].strip().startswith(('-', '|', '*'))):
            errors.append(f'{path}:{i + 1}: an indented command block; fence it as ```sh '
                          f'(or mark it skipped): {line.strip()}')
        if line.strip():
            prev_text = line.strip()
        elif not line.startswith('    '):
            prev_text = ''
        i += 1
    return blocks, errors


def strip_comment(cmd):
    """A command line without its trailing `# comment`."""
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        return cmd.strip()
    return shlex.join(words) if words else ''


# ---- the daemon ----

def isolated_work(prefix, extra_env):
    """A new temporary directory and an environment whose HOME, XDG_* and
    `extra_env` point into it or are set by the test, with its workflows/ and
    run/ made: a daemon started there touches nothing of the reader's."""
    work = tempfile.mkdtemp(prefix=prefix)
    env = dict(os.environ)
    env.update({'HOME': work, 'XDG_RUNTIME_DIR': os.path.join(work, 'run'),
                'XDG_STATE_HOME': os.path.join(work, 'xstate'),
                'XDG_CONFIG_HOME': os.path.join(work, 'xconfig')})
    env.update(extra_env)
    os.makedirs(os.path.join(work, 'workflows'))
    os.makedirs(os.path.join(work, 'run'), mode=0o700)
    return work, env


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_daemon(picoflowd, work, env, http_port=None):
    sock = os.path.join(work, 's.sock')
    log = open(os.path.join(work, 'daemon.log'), 'wb')
    proc = subprocess.Popen(command(picoflowd) + ['--socket', sock, '--state-dir',
                                                  os.path.join(work, 'state'), '--workflows-dir',
                                                  os.path.join(work, 'workflows')] +
                            (['--http-listen', f'127.0.0.1:{http_port}'] if http_port else []),
                            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f'picoflowd exited with {proc.returncode} before it was ready')
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(sock)
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.version"}\n')
                if b'"result"' in s.makefile('rb').readline():
                    return proc, sock
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError('picoflowd was not ready in time')


def stop_daemon(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- one document ----

PRELUDE = r'''
set -u
record() { printf '%s\n' "$1" >> "$DOCS_TEST_LOG"; }
picoflowctl() {
  local out rc
  out=$($DOCS_TEST_CTL "$@" 2>&1 < /dev/null); rc=$?
  printf '%s\n' "$out"
  record "$(printf 'ctl\t%s\t%s\t%s' "$rc" "$*" "$(printf '%s' "$out" | tr '\n\t' '  ')")"
  return $rc
}
picoflowd() {
  case " $* " in
    *" --once "*) local rc; $DOCS_TEST_DAEMON "$@" < /dev/null; rc=$?
                  record "$(printf 'ctl\t%s\tpicoflowd %s\t' "$rc" "$*")"; return $rc ;;
    *) echo "(the test's picoflowd is already running)" ;;
  esac
}
# A failed command of the document (not one inside these functions; picoflowctl
# and picoflowd are judged by what they recorded).
trap 'rc=$?; if [ ${#FUNCNAME[@]} -eq 0 ]; then case "$BASH_COMMAND" in picoflowctl*|picoflowd*) ;; *) record "$(printf "err\t%s\t%s" "$rc" "$BASH_COMMAND")";; esac; fi' ERR
'''


def script_for(blocks, run_id, http_port):
    parts = [PRELUDE]
    if shutil.which('socat') is None:
        parts.append('socat() { record "$(printf "missing\\tsocat")"; '
                     'python3 -c "$DOCS_TEST_SOCAT" "$@"; }\n')
    for b in blocks:
        parts.append(f'# {b.path}:{b.line_no}\n')
        for line in b.lines:
            if b.lang == 'console':
                if not line.startswith('$ '):
                    continue  # the output shown
                line = line[2:]
            line = line.replace('127.0.0.1:8080', f'127.0.0.1:{http_port}')
            parts.append(line.replace('RUN_ID', str(run_id)) + '\n')
    return ''.join(parts)


def expected_exit(shown):
    return EXPECTED_EXIT.get(strip_comment(shown), 0)


def run_document(path, blocks, args, all_failures, notes):
    picoflowd, picoflowctl, root = args
    runnable = [b for b in blocks if b.skip_reason is None]
    if not runnable:
        return
    work, env = isolated_work('pf-docs-', {'NO_COLOR': '1', 'TZ': 'UTC'})
    # As files of the reader's directory (backup.yaml) and from the source
    # tree's root (examples/timeout.yaml).
    shutil.copytree(os.path.join(root, 'examples'), os.path.join(work, 'examples'))
    for f in glob.glob(os.path.join(root, 'examples', '*.yaml')):
        shutil.copy(f, work)
    with open(os.path.join(work, 'hello.yaml'), 'w') as f:
        f.write(HELLO_YAML)
    failures = []
    proc = None
    log_path = os.path.join(work, 'commands.log')
    try:
        http_port = free_port()
        proc, sock = start_daemon(picoflowd, work, env, http_port)
        env.update({'PICOFLOW_SOCKET': sock, 'DOCS_TEST_LOG': log_path,
                    'DOCS_TEST_CTL': ' '.join(command(picoflowctl)),
                    'DOCS_TEST_DAEMON': ' '.join(command(picoflowd)),
                    'DOCS_TEST_SOCAT': SOCAT_STUB})
        # RUN_ID stands for a run the reader has: the first run of the document.
        script = script_for(runnable, 1, http_port)
        try:
            r = subprocess.run(['/bin/bash', '-c', script], cwd=work, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=SCRIPT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            failures.append(f'{path}: its commands did not end within {SCRIPT_TIMEOUT_S:.0f} s')
            return
        shown = [strip_comment(l) for b in runnable for l in b.lines]
        for rec in open(log_path).read().splitlines() if os.path.exists(log_path) else []:
            fields = rec.split('\t')
            if fields[0] == 'missing':
                notes.append(f'{path}: {fields[1]} is not installed; a stand-in ran its commands')
            elif fields[0] == 'err':
                failures.append(f'{path}: `{fields[2]}` exited {fields[1]}\n{r.stderr}')
            elif fields[0] == 'ctl':
                rc, argv, out = int(fields[1]), fields[2], fields[3] if len(fields) > 3 else ''
                prog = argv if argv.startswith('picoflowd ') else 'picoflowctl ' + argv
                doc_form = next((s for s in shown if s.replace('RUN_ID', '1') == strip_comment(
                    prog)), strip_comment(prog))
                want = expected_exit(doc_form)
                if rc != want:
                    failures.append(f'{path}: `{doc_form}` exited {rc}, expected {want}: {out}')
                if UNKNOWN_RE.search(out):
                    failures.append(f'{path}: `{doc_form}` does not know what it was given: {out}')
        if failures:
            sys.stderr.write(f'--- {path}: script output ---\n{r.stdout}{r.stderr}')
    finally:
        if proc is not None:
            stop_daemon(proc)
            if failures:
                sys.stderr.write(open(os.path.join(work, 'daemon.log'), errors='replace').read())
        shutil.rmtree(work, ignore_errors=True)
        all_failures += failures


def check_man_page(picoflowctl, root, failures):
    """Every subcommand of `picoflowctl --help` has an entry in picoflowctl(1)."""
    out = subprocess.run(command(picoflowctl) + ['--help'], capture_output=True, text=True,
                         timeout=30).stdout
    section = re.split(r'^subcommands:$', out, flags=re.IGNORECASE | re.MULTILINE)[-1]
    subs = re.findall(r'^\s{2}(\w+)\s', section, re.MULTILINE)
    if not subs:
        failures.append(f'picoflowctl --help lists no subcommands:\n{out}')
    man = open(os.path.join(root, 'man', 'picoflowctl.1'), encoding='utf-8').read()
    commands = man.split('.SH COMMANDS')[1].split('.SH ')[0]
    for sub in subs:
        if not re.search(r'^\.B[IR]? ' + sub + r'\b|^\.BR \S+ " \| " ' + sub + r'\b', commands,
                         re.MULTILINE):
            failures.append(f'man/picoflowctl.1: no entry for `picoflowctl {sub}` under COMMANDS')


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    args = sys.argv[1:]
    root = args[2]
    failures, notes = [], []
    check_man_page(args[1], root, failures)
    docs = [os.path.join(root, 'README.md')] + sorted(glob.glob(os.path.join(root, 'docs', '*.md')))
    for path in docs:
        blocks, errors = read_blocks(path)
        failures += errors
        for b in blocks:
            if b.skip_reason is not None:
                print(f'skip {os.path.relpath(b.path, root)}:{b.line_no}: {b.skip_reason}')
        run_document(os.path.relpath(path, root), blocks, args, failures, notes)
    for n in sorted(set(notes)):
        print('note:', n)
    for f in failures:
        print('FAIL:', f)
    print(f'{len(failures)} failure(s)')
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
