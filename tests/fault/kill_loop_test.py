#!/usr/bin/python3
"""kill -9 at random points of 200 runs: the store stays sound and agrees with
what really ran (issue 13: group commit must not change crash recovery).

A real picoflowd runs a five-task DAG (extract -> left, right -> merge ->
report) 200 times, several runs at a time, each followed live by a client
(run.start / run.logs with `follow`). The test kills the daemon with SIGKILL at
random moments (a seeded RNG, the seed printed; a quarter of the delays counted
from the launch, to hit start-up and recovery, the rest from its first answer;
fired by a timer thread, so the moment does not follow the test's own loop),
restarts it on the same state directory (20 to 40 kills, while runs are left to
start; fewer only if all runs are over sooner), and goes on until all
200 runs have ended. Every task, when it really runs, appends to a ground-truth
file `start RUN TASK ATTEMPT PID` first and `done RUN TASK ATTEMPT PID` last
(PID is the task's shell: the process the store records for the attempt);
the test appends `ready K` there once boot K answers.

The semantics checked (DESIGN.md "Run semantics" and "Daemon lifecycle",
docs/architecture.md "Crash recovery"): a restart kills what is left of each
attempt the store has as running, if it is still that process group, records
the attempt `interrupted`, and resumes the run; finished tasks stay finished;
an interrupted task starts again with the next attempt number (an interruption
is not a failure: tasks here never fail, so every run must succeed). Rules:

After every kill, with the daemon down, the store opened read-only:
  S1. `PRAGMA integrity_check` is ok, `PRAGMA foreign_key_check` empty, and
      the bytes of every output chunk kept in a run's file are there.
  S2. What a client was shown is in the store (group commit commits before
      anything is written to a client): every run a client saw (run.started)
      exists; every attempt a client saw start (run.event started) has its row,
      with its process identity; every attempt it saw succeed is `succeeded`;
      every run it saw end has that final status.
At the end (after a clean SIGTERM stop):
  F1. S1 again; exactly RUNS runs; each run and each of its tasks `succeeded`;
      every run a client started is among them.
  F2. A task's attempts are numbered 1..n; attempt n `succeeded`, every
      earlier one `interrupted`; the task's `attempts` is n; the succeeded
      attempt's stdout is stored whole (a line in the database; merge's
      2 KiB in its run's output file).
  F3. Every succeeded attempt's process (its recorded pid) wrote both its
      start and its done line: the store never says succeeded for work that
      did not complete.
  F4. A succeeded task never ran again: no line of the task has an attempt
      number above the succeeded one, no recorded process of the task starts
      after the succeeded attempt's done line, and of two done lines of one
      task the first is an attempt the store has `interrupted` (its work
      completed, but the daemon died before it stored the end).
  F5. A task never starts before its dependencies are done: a recorded
      attempt's start line comes after the done line of each dependency's
      succeeded attempt (group commit stores the success with or before the
      start).
  F6. Recovery kills what the store had as running: once boot K answers, no
      process of an attempt that was `starting` or `running` in the store at an
      earlier kill (since the last boot that answered) writes another line.
  F7. No task runs without its record: every process that wrote a line has
      its attempt in the store, with its pid or, if the kill came before the
      identity was stored, none (an attempt is committed `starting` before its
      spawn, its process identity with a later commit; issue 14).

Usage: kill_loop_test.py PICOFLOWD [SEED] [--long]  (--long: 500 kills over 2,000 runs)
(SEED: else $PICOFLOW_KILL9_SEED, else one from the clock.)
Exit 0 only if every rule holds. Every process started (the daemon, the task
processes it left behind) is killed by pid and the temporary directory removed.
"""

import ctypes
import json
import math
import os
import random
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from exec_wrapper import command  # noqa: E402

RUNS = 200
IN_FLIGHT = 8  # runs in progress at once
MIN_KILLS, MAX_KILLS = 20, 40
# --long (offline, hours): 500 kills over 2,000 runs.
LONG_RUNS, LONG_KILLS = 2000, 500
# Deadlines only end a hang; they assert no speed.
WAIT_S = 60

# The DAG, each task's work (a shell command) and its dependencies. In every
# third run `left` takes longer than a restart: a kill then leaves it running
# for the next boot's recovery to kill (F6).
TASKS = [('extract', 'sleep 0.01', []),
         ('left', 'if [ $((PICOFLOW_RUN_ID % 3)) = 0 ]; then sleep 0.5; else sleep 0.03; fi',
          ['extract']),
         ('right', 'sleep 0.02', ['extract']),
         ('merge', 'sleep 0.01', ['left', 'right']),
         ('report', 'sleep 0.005', ['merge'])]
DEPS = {name: deps for name, _, deps in TASKS}
# What each task writes to stdout before its work: merge writes 2 KiB, which
# the store keeps in its run's output file (chunks of 1 KiB or more), the
# others a line, kept in the database.
STDOUT = {name: 'working\n' for name, _, _ in TASKS}
STDOUT['merge'] = 'm' * 2047 + '\n'


def workflow(truth):
    lines = ['name: kill9', 'config: { max_parallel: 4, retry_default: 0, kill_grace: 1s }',
             'tasks:']
    for name, work, deps in TASKS:
        # Kills come faster than some tasks end: they must start over as
        # often as it takes (the limit has a test of its own).
        lines += [f'  - name: {name}', '    type: shell', '    max_interruptions: 1000']
        if deps:
            lines.append(f'    depends_on: [{", ".join(deps)}]')
        lines += ['    config:', '      command: |',
                  '        line="$PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT $$"',
                  f"        echo \"start $line\" >> '{truth}'",
                  f'        printf %s {STDOUT[name].rstrip()}; echo',
                  f'        {work}',
                  f"        echo \"done $line\" >> '{truth}'"]
    return '\n'.join(lines) + '\n'


class Failed(Exception):
    pass


def die_with_parent():
    # The daemon must not outlive a test that is killed itself.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Call:
    """One connection carrying one long call: daemon.version first, then the call (id 2)."""

    def __init__(self, path, method, params):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
            hello = {'jsonrpc': '2.0', 'id': 1, 'method': 'daemon.version',
                     'params': {'protocol': 1, 'client': 'kill9_recovery_test'}}
            call = {'jsonrpc': '2.0', 'id': 2, 'method': method, 'params': params}
            self.sock.sendall((json.dumps(hello) + '\n' + json.dumps(call) + '\n').encode())
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.method = method
        self.run_id = params.get('run_id')
        self.buf = b''

    def read(self):
        """The whole messages that arrived; None at EOF."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return []
        except ConnectionResetError:
            data = b''
        if not data:
            return None
        self.buf += data
        *lines, self.buf = self.buf.split(b'\n')
        return [json.loads(line) for line in lines if line]

    def close(self):
        self.sock.close()


def simple_call(path, method, params):
    """One call on its own connection, answered at once; its result."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(WAIT_S)
        s.connect(path)
        s.sendall((json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': method,
                               'params': params}) + '\n').encode())
        reply = json.loads(s.makefile('rb').readline())
    if 'error' in reply:
        raise Failed(f'{method}: {reply["error"]}')
    return reply['result']


class Seen:
    """What clients were shown: the store must have all of it after a kill (S2)."""

    def __init__(self):
        self.runs = set()       # run ids from run.started
        self.started = set()    # (run, task, attempt) from run.event started
        self.succeeded = set()  # (run, task, attempt) from run.event finished succeeded
        self.final = {}         # run id -> final status, from the calls' results


def open_store(db):
    return sqlite3.connect(f'file:{db}?mode=ro', uri=True)


def segment(db, run_id, offset, length):
    """Bytes of a run's output file (docs/operations.md, "SD cards"): what is there."""
    try:
        with open(f'{db}-output/{run_id}.log', 'rb') as f:
            f.seek(offset)
            return f.read(length)
    except FileNotFoundError:
        return b''


def check_sound(con, db, when):
    integrity = con.execute('PRAGMA integrity_check').fetchall()
    if integrity != [('ok',)]:
        raise Failed(f'{when}: integrity_check: {integrity}')
    fk = con.execute('PRAGMA foreign_key_check').fetchall()
    if fk:
        raise Failed(f'{when}: foreign_key_check: {fk}')
    # Output kept in files: each stored chunk's bytes are all there.
    for r, seq, offset, length in con.execute(
            'SELECT run_id, seq, file_offset, file_length FROM output'
            ' WHERE file_offset IS NOT NULL'):
        if len(segment(db, r, offset, length)) != length:
            raise Failed(f'{when}: run {r} output chunk {seq}: {length} bytes at {offset} of '
                         f'its file are not all there')


def check_after_kill(db, seen, when):
    """S1 and S2. Returns (run id -> status, attempts still running, all attempts), an
    attempt as (run, task, number, pid)."""
    con = open_store(db)
    try:
        check_sound(con, db, when)
        runs = dict(con.execute('SELECT id, status FROM runs'))
        attempts = {(r, t, n): (status, pid) for r, t, n, status, pid in con.execute(
            'SELECT run_id, task, number, status, pid FROM attempts')}
    finally:
        con.close()
    problems = []
    for r in sorted(seen.runs - runs.keys()):
        problems.append(f'run {r} was shown to a client but is not in the store')
    for key in sorted(seen.started):
        if key not in attempts:
            problems.append(f'attempt {key} was shown started, but the store has no row')
    for key in sorted(seen.succeeded):
        if attempts.get(key, ('no row',))[0] != 'succeeded':
            problems.append(f'attempt {key} was shown succeeded, the store has '
                            f'{attempts.get(key, "no row")}')
    for r, status in sorted(seen.final.items()):
        if runs.get(r) != status:
            problems.append(f'run {r} was shown {status}, the store has {runs.get(r)}')
    if problems:
        raise Failed(f'{when}: ' + '; '.join(problems))
    running = {key for key, (status, _) in attempts.items() if status in ('starting', 'running')}
    return runs, running, set(attempts)


class Chaos:
    """Boots, feeds runs to, and kills one picoflowd over one state directory."""

    def __init__(self, picoflowd, root, seed):
        self.picoflowd = picoflowd
        self.root = root
        self.rng = random.Random(seed)
        self.sock = os.path.join(root, 'run', 'picoflowd.sock')
        self.state = os.path.join(root, 'state')
        self.db = os.path.join(self.state, 'picoflow.db')
        self.truth = os.path.join(root, 'truth.txt')
        self.env = dict(os.environ, HOME=root, XDG_CONFIG_HOME=os.path.join(root, 'config'),
                        XDG_STATE_HOME=os.path.join(root, 'xstate'),
                        XDG_RUNTIME_DIR=os.path.join(root, 'xrun'))
        for d in ('config', 'xstate', 'xrun', 'workflows'):
            os.makedirs(os.path.join(root, d), mode=0o700)
        self.daemon = None
        self.boot = -1
        self.kills = 0
        self.kills_before_ready = 0
        self.seen = Seen()
        self.store_runs = {}  # run id -> status, as of the last look at the store
        self.pending_kill = set()  # running at a kill, since the last boot that answered
        self.must_be_dead = {}  # boot -> attempts its recovery had to kill (F6)
        self.runs_at_last_kill = 0
        self.unrecorded = set()  # task processes no attempt row names (issue 14)
        self.unrecording_kills = []  # (kill, whether the daemon had answered, processes)

    # ---- the daemon --------------------------------------------------------

    def log_path(self, boot):
        return os.path.join(self.root, f'daemon-{boot}.log')

    def launch(self):
        self.boot += 1
        with open(self.log_path(self.boot), 'wb') as log:
            self.daemon = subprocess.Popen(
                command(self.picoflowd) + ['--config', '', '--socket', self.sock,
                                           '--state-dir', self.state, '--workflows-dir',
                                           os.path.join(self.root, 'workflows')],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                preexec_fn=die_with_parent)
        # Signalled through a pidfd: the killer thread never hits a reused pid.
        self.pidfd = os.pidfd_open(self.daemon.pid)
        self.killed = threading.Event()

    def arm_kill(self, delay):
        """SIGKILLs the daemon `delay` seconds from now, from a thread of its own:
        the moment does not follow what this test's loop is doing."""
        def fire():
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            self.killed.set()
        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()
        return timer

    def reap(self):
        self.daemon.wait()
        os.close(self.pidfd)
        self.daemon = None

    def reap_killed(self):
        self.reap()
        self.kills += 1

    def stop(self):
        signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
        try:
            code = self.daemon.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            raise Failed('picoflowd did not stop on SIGTERM')
        self.reap()
        if code != 0:
            raise Failed(f'picoflowd exited {code} on SIGTERM')

    def mark(self, text):
        # One write of one line with O_APPEND, as the tasks write theirs.
        fd = os.open(self.truth, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (text + '\n').encode())
        finally:
            os.close(fd)

    def kill_plan(self):
        """(from, seconds): when to kill the next boot, counted from its launch
        ('launch': start-up, recovery, the first commits) or from its first
        answer ('ready': anywhere in a few hundred ms of work)."""
        if self.rng.random() < 0.25:
            return 'launch', math.exp(self.rng.uniform(math.log(0.001), math.log(0.1)))
        return 'ready', self.rng.uniform(0.01, 0.8)

    # ---- one boot ------------------------------------------------------------

    def finished(self):
        return (len(self.store_runs) == RUNS
                and all(s not in ('pending', 'running') for s in self.store_runs.values()))

    def run_boot(self, kill):
        """Starts picoflowd, follows and starts runs; with `kill`, SIGKILLs it after a
        random delay, else returns once every run has ended. Returns whether it answered."""
        self.launch()
        sel = selectors.DefaultSelector()
        calls = []
        deadline = time.monotonic() + WAIT_S
        plan, delay = self.kill_plan() if kill else (None, 0)
        timer = self.arm_kill(delay) if plan == 'launch' else None
        ready = False
        probe = None
        known = dict(self.store_runs)  # run id -> status this boot knows
        starting = 0  # run.start calls without their run.started yet

        def add(call):
            calls.append(call)
            sel.register(call.sock, selectors.EVENT_READ, call)

        def drop(call):
            sel.unregister(call.sock)
            call.close()
            calls.remove(call)

        def open_call(method, params):
            """A new call; False if the daemon was just killed (it is reaped above)."""
            try:
                add(Call(self.sock, method, params))
                return True
            except OSError:
                if self.killed.is_set():
                    return False
                raise

        try:
            while True:
                now = time.monotonic()
                if self.daemon.poll() is not None:
                    if not self.killed.is_set():
                        raise Failed(f'picoflowd exited by itself ({self.daemon.returncode}) '
                                     f'in boot {self.boot}')
                    if not ready:
                        self.kills_before_ready += 1
                    timer.join()  # it has fired: done with the pidfd
                    self.reap_killed()
                    return ready
                if now > deadline:
                    raise Failed(f'boot {self.boot}: no progress for {WAIT_S} s (ready={ready}, '
                                 f'{len(calls)} calls open)')
                if not ready and probe is None:
                    try:
                        probe = Call(self.sock, 'daemon.status', {})
                        add(probe)
                    except OSError:
                        pass  # not listening yet: try again after a short wait below
                if ready:
                    unfinished = [r for r, s in known.items() if s in ('pending', 'running')]
                    if not kill and len(known) == RUNS and not unfinished and starting == 0:
                        return True
                    while (starting + len(unfinished) < IN_FLIGHT
                           and len(known) + starting < RUNS):
                        if not open_call('run.start', {'workflow': 'kill9', 'follow': True}):
                            break
                        starting += 1
                # Not yet answering: look again soon. Killed: the calls' ends
                # wake the loop, or this timeout does.
                for key, _ in sel.select(0.005 if not ready else 0.05):
                    call = key.data
                    messages = call.read()
                    if messages is None:  # EOF: the daemon died, or dropped us
                        if call is probe:
                            drop(call)
                            probe = None
                            continue
                        if self.killed.is_set():
                            drop(call)
                            continue
                        raise Failed(f'boot {self.boot}: picoflowd closed a {call.method} call')
                    for m in messages:
                        deadline = time.monotonic() + WAIT_S
                        if 'error' in m:
                            raise Failed(f'boot {self.boot}: {call.method}: {m["error"]}')
                        if m.get('id') == 2 and call is probe:
                            drop(call)
                            probe = None
                            ready = True
                            self.answered()
                            if plan == 'ready' and not self.killed.is_set():
                                timer = self.arm_kill(delay)
                            for r, s in sorted(known.items()):
                                if s in ('pending', 'running'):
                                    open_call('run.logs', {'run_id': r, 'follow': True})
                        elif m.get('method') == 'run.started':
                            call.run_id = m['params']['run_id']
                            self.seen.runs.add(call.run_id)
                            known[call.run_id] = 'running'
                            starting -= 1
                        elif m.get('method') == 'run.event':
                            self.heard(m['params'])
                        elif m.get('id') == 2:
                            status = m['result']['status']
                            self.seen.final[call.run_id] = status
                            known[call.run_id] = status
                            drop(call)
        finally:
            # No thread of ours outlives the boot: the next launch forks.
            if timer is not None:
                timer.cancel()
                timer.join()
            for call in list(calls):
                drop(call)
            sel.close()

    def answered(self):
        """Boot self.boot answers: its recovery is over (F6's reference point)."""
        self.mark(f'ready {self.boot}')
        self.must_be_dead[self.boot] = self.pending_kill
        self.pending_kill = set()

    def heard(self, e):
        key = (e['run_id'], e['task'], e['attempt'])
        if e['event'] == 'started':
            self.seen.started.add(key)
        elif e['event'] == 'finished' and e['status'] == 'succeeded':
            self.seen.succeeded.add(key)

    def after_kill(self, answered):
        when = f'after kill {self.kills} (boot {self.boot})'
        self.store_runs, running, recorded = check_after_kill(self.db, self.seen, when)
        self.runs_at_last_kill = len(self.store_runs)
        self.pending_kill |= running
        # For the report only: the task processes this kill left unrecorded
        # (issue 14), as far as they have written their start line yet.
        started = {line[1:4] for line in read_truth(self.truth) if line[0] == 'start'}
        new = started - recorded - self.unrecorded
        self.unrecorded |= new
        if new:
            self.unrecording_kills.append((self.kills, answered, len(new)))

    # ---- the whole test -------------------------------------------------------

    def run(self):
        self.launch()
        wait_answering(self)
        simple_call(self.sock, 'workflow.submit',
                    {'source': workflow(self.truth), 'file': 'kill9.yaml'})
        self.answered()
        self.stop()
        while not self.finished():
            chaos = self.kills < MIN_KILLS or (self.kills < MAX_KILLS and len(self.store_runs) < RUNS)
            answered = self.run_boot(kill=chaos)
            if chaos:
                self.after_kill(answered)
            else:
                self.stop()
                con = open_store(self.db)
                try:
                    self.store_runs = dict(con.execute('SELECT id, status FROM runs'))
                finally:
                    con.close()


def wait_answering(chaos):
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            simple_call(chaos.sock, 'daemon.version', {'protocol': 1})
            return
        except OSError:
            if chaos.daemon.poll() is not None or time.monotonic() > deadline:
                raise Failed('picoflowd did not come up')
            time.sleep(0.02)


# ---- the final checks -----------------------------------------------------------

def read_truth(path):
    """[(kind, run, task, attempt, pid)] for task lines, [('ready', boot)] for marks."""
    lines = []
    with open(path) as f:
        for text in f:
            words = text.split()
            if words[0] == 'ready':
                lines.append(('ready', int(words[1])))
            else:
                kind, run, task, attempt, pid = words
                lines.append((kind, int(run), task, int(attempt), int(pid)))
    return lines


def final_checks(chaos, client_runs):
    """F1-F7; returns (problems, unrecorded processes, interrupted attempts)."""
    con = open_store(chaos.db)
    try:
        check_sound(con, chaos.db, 'at the end')
        runs = dict(con.execute('SELECT id, status FROM runs'))
        tasks = {(r, t): (s, n) for r, t, s, n in con.execute(
            'SELECT run_id, task, status, attempts FROM run_tasks')}
        attempts = {(r, t, n): (s, pid, out) for r, t, n, s, pid, out in con.execute(
            'SELECT run_id, task, number, status, pid, stdout_bytes FROM attempts')}
        stdout = {}
        for r, t, n, data, offset, length in con.execute(
                'SELECT a.run_id, a.task, a.number, o.data, o.file_offset, o.file_length'
                ' FROM attempts a JOIN output o ON o.run_id = a.run_id AND o.attempt_seq = a.seq'
                ' AND o.stream = 0'
                ' ORDER BY o.run_id, o.seq'):
            chunk = bytes(data) if offset is None else segment(chaos.db, r, offset, length)
            stdout[(r, t, n)] = stdout.get((r, t, n), b'') + chunk
    finally:
        con.close()
    problems = []
    # F1
    if len(runs) != RUNS:
        problems.append(f'{len(runs)} runs in the store, not {RUNS}')
    for r in sorted(client_runs - runs.keys()):
        problems.append(f'run {r} was started by a client and is gone')
    for r, s in sorted(runs.items()):
        if s != 'succeeded':
            problems.append(f'run {r} ended {s}')
    # F2
    rows = {}  # (run, task) -> [(number, status)]
    for (r, t, n), (s, _, _) in attempts.items():
        rows.setdefault((r, t), []).append((n, s))
    succeeded = {}  # (run, task) -> the succeeded attempt's number
    for r in sorted(runs):
        for name, _, _ in TASKS:
            status, count = tasks.get((r, name), ('missing', 0))
            have = sorted(rows.get((r, name), []))
            want = [(n, 'interrupted') for n in range(1, count)] + [(count, 'succeeded')]
            if status != 'succeeded' or have != want:
                problems.append(f'run {r} task {name}: {status}, attempts {count}, rows {have}')
                continue
            succeeded[(r, name)] = count
            out = stdout.get((r, name, count), b'')
            want_out = STDOUT[name].encode()
            if out != want_out or attempts[(r, name, count)][2] != len(want_out):
                problems.append(f'run {r} task {name} attempt {count}: stdout {out!r}, '
                                f'stdout_bytes {attempts[(r, name, count)][2]}')
    # The ground truth, indexed: (kind, run, task, attempt, pid) -> its position.
    lines = read_truth(chaos.truth)
    at = {}
    by_task = {}  # (run, task) -> [(position, kind, attempt, pid)]
    unrecorded = set()
    for i, line in enumerate(lines):
        if line[0] == 'ready':
            continue
        if line in at:
            problems.append(f'{" ".join(map(str, line))} written twice')
        at[line] = i
        kind, r, t, n, pid = line
        by_task.setdefault((r, t), []).append((i, kind, n, pid))
        row = attempts.get((r, t, n))
        if row is None or row[1] not in (None, pid):
            unrecorded.add((r, t, n, pid))
    for (r, t), n_ok in sorted(succeeded.items()):
        pid_ok = attempts[(r, t, n_ok)][1]
        # F3
        for kind in ('start', 'done'):
            if (kind, r, t, n_ok, pid_ok) not in at:
                problems.append(f'run {r} task {t} attempt {n_ok} succeeded, but its process '
                                f'(pid {pid_ok}) wrote no {kind} line')
        # F4
        done_ok = at.get(('done', r, t, n_ok, pid_ok), len(lines))
        recorded = {attempts[(r, t, n)][1] for n in range(1, n_ok + 1)}
        mine = by_task.get((r, t), [])
        for i, kind, n, pid in mine:
            if n > n_ok or (kind == 'start' and pid in recorded and i > done_ok):
                problems.append(f'{kind} {r} {t} {n} (pid {pid}): task {t} of run {r} ran '
                                f'again after attempt {n_ok} succeeded')
        dones = [(n, pid) for _, kind, n, pid in mine if kind == 'done']
        for (n1, pid1), (n2, pid2) in zip(dones, dones[1:]):
            if (r, t, n1, pid1) in unrecorded or (r, t, n2, pid2) in unrecorded:
                continue  # issue 14
            if attempts[(r, t, n1)][0] != 'interrupted':
                problems.append(f'run {r} task {t}: attempt {n1} completed and then attempt '
                                f'{n2} too, but the store has attempt {n1} '
                                f'{attempts[(r, t, n1)][0]}')
        # F5
        for dep in DEPS[t]:
            n_dep = succeeded.get((r, dep))
            if n_dep is None:
                continue
            theirs = by_task.get((r, dep), [])
            first_done = min((i for i, kind, _, _ in theirs if kind == 'done'), default=None)
            done_ok = at.get(('done', r, dep, n_dep, attempts[(r, dep, n_dep)][1]))
            for i, kind, n, pid in mine:
                if kind != 'start':
                    continue
                # A recorded start was committed with or after the dependency's
                # success; a process nobody recorded (issue 14) may follow a
                # success that was never committed, but follows some done line.
                limit = done_ok if (r, t, n, pid) not in unrecorded else first_done
                if limit is None or i < limit:
                    problems.append(f'run {r}: task {t} attempt {n} (pid {pid}) started before '
                                    f'{dep} was done')
    # F6
    ready_at = {line[1]: i for i, line in enumerate(lines) if line[0] == 'ready'}
    for boot, victims in sorted(chaos.must_be_dead.items()):
        for r, t, n in sorted(victims):
            # One process per attempt number (F7); the store may not have its pid.
            pid = next((p for _, kind, m, p in by_task.get((r, t), []) if m == n), None)
            late = [k for k in ('start', 'done') if at.get((k, r, t, n, pid), -1) > ready_at[boot]]
            if late:
                problems.append(f'run {r} task {t} attempt {n} (pid {pid}) was running at a '
                                f'kill and wrote its {"/".join(late)} line after boot {boot}, '
                                f'which recovered it, answered')
    interrupted = sum(1 for s, _, _ in attempts.values() if s == 'interrupted')
    return problems, sorted(unrecorded), interrupted


def leftover_tasks(root):
    """Pids of live processes whose command line names the test's directory: task shells."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                cmdline = f.read()
            with open(f'/proc/{entry}/stat') as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if root.encode() in cmdline and b'picoflowd' not in cmdline and state != 'Z':
            found.append(int(entry))
    return found


def main(picoflowd, seed, long):
    global RUNS, MIN_KILLS, MAX_KILLS
    if long:
        RUNS, MIN_KILLS, MAX_KILLS = LONG_RUNS, LONG_KILLS, LONG_KILLS
    print(f'seed {seed} (rerun: kill_loop_test.py PICOFLOWD {seed}{" --long" if long else ""})',
          flush=True)
    root = tempfile.mkdtemp(prefix='pfkill9-')
    chaos = Chaos(picoflowd, root, seed)
    started = time.monotonic()
    try:
        chaos.run()
        # Unrecorded task processes (issue 14) are nobody's to kill: let them end.
        deadline = time.monotonic() + WAIT_S
        while leftover_tasks(root) and time.monotonic() < deadline:
            time.sleep(0.05)
        problems, issue14, interrupted = final_checks(chaos, chaos.seen.runs)
        for r, t, n, pid in issue14:
            problems.append(f'F7: run {r} task {t} attempt {n}: pid {pid} ran it, but the '
                            f'store has no record of that process')
        print(f'{RUNS} runs, {chaos.boot + 1} boots, {chaos.kills} kills '
              f'({chaos.kills_before_ready} before the daemon answered; the last with '
              f'{chaos.runs_at_last_kill} runs created), '
              f'{interrupted} attempts interrupted, {len(issue14)} unrecorded task processes (issue 14), '
              f'{time.monotonic() - started:.1f} s')
        victims = [v for vs in chaos.must_be_dead.values() for v in vs]
        print(f'{len(victims)} attempts were running in the store at a kill (F6: none wrote a '
              f'line once the next boot answered)')
        early = sum(1 for _, answered, _ in chaos.unrecording_kills if not answered)
        print(f'kills that left task processes unrecorded (issue 14): '
              f'{len(chaos.unrecording_kills)} of {chaos.kills} ({early} of them before the '
              f'daemon answered): {chaos.unrecording_kills}')
        if problems:
            for p in problems:
                print(f'FAIL: {p}', file=sys.stderr)
            raise Failed(f'{len(problems)} problems (seed {seed})')
        print('ok')
        return 0
    except Failed as e:
        print(f'FAIL: {e}', file=sys.stderr)
        for boot in range(max(0, chaos.boot - 1), chaos.boot + 1):
            try:
                with open(chaos.log_path(boot), errors='replace') as f:
                    tail = f.readlines()[-40:]
                print(f'--- daemon log, boot {boot} (last lines) ---', file=sys.stderr)
                sys.stderr.writelines(tail)
            except OSError:
                pass
        return 1
    finally:
        if chaos.daemon is not None:
            signal.pidfd_send_signal(chaos.pidfd, signal.SIGKILL)
            chaos.reap()
        for pid in leftover_tasks(root):
            try:
                os.killpg(pid, signal.SIGKILL)  # a task shell leads its own group
            except OSError:
                pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    # meson ends a test that overruns with SIGTERM: clean up all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    args = [a for a in sys.argv[1:] if a != '--long']
    sys.exit(main(args[0], int(args[1]) if len(args) > 1
                  else int(os.environ.get('PICOFLOW_KILL9_SEED', time.time_ns() % 1000000)),
                  '--long' in sys.argv))
