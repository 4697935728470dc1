#!/usr/bin/env python3
"""picoflow's benchmark: runs every measurement of bench/run.sh against an
optimised build and writes the table to bench/results.md.

Everything runs in a temporary directory, on Unix sockets and loopback only,
with daemons of its own that are stopped at the end. Comparisons (picoflowd
vs ninja vs a posix_spawn loop) are measured in the same run, alternating the
order each round, and reported as the median of the per-round ratios.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

KIB = 1024


# ---- the daemon under test -------------------------------------------------

class Daemon:
    """One picoflowd on a socket and state directory of its own."""

    def __init__(self, build, root, name, workflows_dir=None, extra_args=(), log=True, config=''):
        self.dir = os.path.join(root, 'daemons', name)
        os.makedirs(self.dir)
        self.socket = os.path.join(self.dir, 'd.sock')
        self.ctl = [os.path.join(build, 'picoflowctl', 'picoflowctl'), '--socket', self.socket]
        args = [os.path.join(build, 'picoflowd', 'picoflowd'), '--config', config,
                '--socket', self.socket, '--state-dir', os.path.join(self.dir, 'state')]
        if workflows_dir:
            args += ['--workflows-dir', workflows_dir]
        args += list(extra_args)
        # log=False: the log goes nowhere, so that the daemon's own disk writes
        # are its store's only (the storage-write rows).
        self.log = open(os.path.join(self.dir, 'log') if log else os.devnull, 'wb')
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.call('daemon.version')
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f'bench: picoflowd did not start; see {self.log.name}')
                time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.socket)
        return s.makefile('rwb', buffering=0), s

    def call(self, method, params=None, stream=None):
        """One request on a fresh connection (or `stream`); returns the result."""
        own = stream is None
        if own:
            stream, sock = self.connect()
        request = {'jsonrpc': '2.0', 'id': 1, 'method': method}
        if params is not None:
            request['params'] = params
        stream.write((json.dumps(request) + '\n').encode())
        try:
            while True:
                line = stream.readline()
                if not line:
                    raise OSError(f'{method}: connection closed')
                msg = json.loads(line)
                if msg.get('id') != 1:
                    continue  # a notification
                if 'error' in msg:
                    raise SystemExit(f'bench: {method}: {msg["error"]}')
                return msg['result']
        finally:
            if own:
                stream.close()
                sock.close()

    def ctl_run(self, *args):
        subprocess.run(self.ctl + list(args), check=True, stdout=subprocess.DEVNULL)

    def status_kib(self, key):
        with open(f'/proc/{self.pid}/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
        raise KeyError(key)

    def pss_kib(self):
        with open(f'/proc/{self.pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
        raise KeyError('Pss')

    def voluntary_switches(self):
        """Summed over every thread of the daemon."""
        total = 0
        for tid in os.listdir(f'/proc/{self.pid}/task'):
            with open(f'/proc/{self.pid}/task/{tid}/status') as f:
                for line in f:
                    if line.startswith('voluntary_ctxt_switches:'):
                        total += int(line.split()[1])
        return total

    def io_counter(self, key):
        """A field of /proc/PID/io: write_bytes counts what the daemon sent
        towards storage (at page-dirtying time), the page cache included."""
        with open(f'/proc/{self.pid}/io') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
        raise KeyError(key)

    def cpu_seconds(self):
        with open(f'/proc/{self.pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- inputs ------------------------------------------------------------------

def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return path


def workflow(name, tasks, max_parallel, command, chain, extra=''):
    lines = [f'name: {name}', extra.rstrip() if extra else None, 'config:',
             f'  max_parallel: {max_parallel}', 'tasks:']
    lines = [l for l in lines if l is not None]
    for i in range(tasks):
        lines.append(f'  - name: t{i}')
        lines.append('    type: shell')
        lines.append(f'    config: {{command: "{command}"}}')
        if chain and i > 0:
            lines.append(f'    depends_on: [t{i - 1}]')
    return '\n'.join(lines) + '\n'


def storage_writes(daemon, name, runs, warmup):
    """Bytes the daemon writes to storage per run of workflow `name`, runs
    driven one after another through the socket (run.start, then run.wait:
    nobody follows them, as nobody follows a scheduled run), after `warmup`
    runs."""
    stream, sock = daemon.connect()
    try:
        def run_once():
            run_id = daemon.call('run.start', {'workflow': name}, stream)['run_id']
            done = daemon.call('run.wait', {'run_id': run_id}, stream)
            if done['status'] != 'succeeded':
                raise SystemExit(f'bench: a run of {name} failed')
        for _ in range(warmup):
            run_once()
        before = daemon.io_counter('write_bytes')
        for _ in range(runs):
            run_once()
        return (daemon.io_counter('write_bytes') - before) / runs
    finally:
        stream.close()
        sock.close()


def ninja_file(tasks, chain):
    lines = ['rule r', '  command = true']
    for i in range(tasks):
        dep = f' t{i - 1}' if chain and i > 0 else ''
        lines.append(f'build t{i}: r{dep}')
    return '\n'.join(lines) + '\n'


# ---- measurements ------------------------------------------------------------

def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare(rounds, contenders):
    """contenders: [(label, fn)]. Each round runs all of them, in reversed
    order every other round. Returns {label: [seconds per round]}."""
    times = {label: [] for label, _ in contenders}
    for r in range(rounds):
        order = contenders if r % 2 == 0 else list(reversed(contenders))
        for label, fn in order:
            times[label].append(timed(fn))
    return times


def median_ratio(a, b):
    return statistics.median(x / y for x, y in zip(a, b))


def ninja_runner(work, name, jobs):
    def run():
        for f in ('.ninja_log', '.ninja_deps'):
            try:
                os.unlink(os.path.join(work, f))
            except FileNotFoundError:
                pass
        subprocess.run(['ninja', '-f', name, '-j', str(jobs)], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
    return run


def stripped_size(path, strip='strip'):
    if not os.path.exists(path):
        return None
    tmp = path + '.bench-stripped'
    shutil.copyfile(path, tmp)
    try:
        subprocess.run([strip, tmp], check=True)
        return os.path.getsize(tmp)
    finally:
        os.unlink(tmp)


# ---- the run -----------------------------------------------------------------

def bench_storage(start, work, quick, row):
    # Storage writes per run (SD-card wear): a 5-task chain whose tasks
    # each print one line, then 10 KB each; default settings, and
    # --sync-full. The daemon's log goes nowhere: only its store counts.
    wear_runs = 200 if quick else 1000
    wear_warmup = 20 if quick else 100
    kb = 1000
    line_yaml = write(os.path.join(work, 'wear.yaml'),
                      workflow('wear', 5, 1, 'echo one line of output', True))
    big_yaml = write(os.path.join(work, 'wear10k.yaml'),
                     workflow('wear10k', 5, 1, "yes 'a line of task output' | head -c 10000", True))
    output_bytes = 5 * len(subprocess.run(['sh', '-c', "yes 'a line of task output' | head -c 10000"],
                                          capture_output=True).stdout)
    for label, flags in (('default settings', ()), ('--sync-full', ('--sync-full',))):
        wear = start('wear' + ('-full' if flags else ''), extra_args=flags, log=False)
        wear.ctl_run('submit', line_yaml, big_yaml)
        per_run = storage_writes(wear, 'wear', wear_runs, wear_warmup)
        how = (f'`write_bytes` of /proc/PID/io over {wear_runs:,} runs (after {wear_warmup}) of a '
               f'5-task chain, each task printing one line; {label}')
        if not flags:
            row('storage writes per run', how, f'{per_run / kb:.1f} KB', '<= 24 KB',
                per_run <= 24 * kb)
            day = per_run * 10 * 1440
            row('storage writes per day, projected',
                '10 such workflows every minute: 14,400 runs', f'{day / 1e6:.0f} MB/day',
                '<= 350 MB/day', day <= 350e6)
            big = storage_writes(wear, 'wear10k', wear_runs, wear_warmup)
            limit = 24 * kb + 1.2 * output_bytes
            row('storage writes per run, 10 KB output per task',
                f'as above, each task printing 10 KB ({output_bytes / kb:.1f} KB of output a run)',
                f'{big / kb:.1f} KB ({(big - per_run) / output_bytes:.2f} x the output over the '
                'one-line run)', f'<= 24 KB + 1.2 x the output ({limit / kb:.0f} KB)', big <= limit)
        else:
            row('storage writes per run, --sync-full', how, f'{per_run / kb:.1f} KB')
        wear.stop()


class Broker:
    """Debian's mosquitto on a free loopback port."""

    def __init__(self, root, port):
        self.port = port
        conf = write(os.path.join(root, 'mosquitto.conf'),
                     f'listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n'
                     f'user {pwd.getpwuid(os.getuid()).pw_name}\n')
        self.proc = subprocess.Popen(['mosquitto', '-c', conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit('bench: mosquitto did not start')
                time.sleep(0.02)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def start_broker(root):
    if not shutil.which('mosquitto'):
        return None
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    return Broker(root, port)


def bench_fleet_run(start, root, broker, build, rounds, row):
    """A fleet request end to end: `picoflowctl fleet run --wait` of a
    one-task workflow on a node of the group, wall time, from the CLI's start
    (its connect and subscriptions included) to the run's end event."""
    yaml = write(os.path.join(root, 'fleet-node.yaml'),
                 f'mqtt:\n  broker: mqtt://127.0.0.1:{broker.port}\n  client_id: bench-node\n'
                 '  group: bench\n  accept_runs: true\n')
    node = start('fleet-node', config=yaml)
    wf = write(os.path.join(root, 'fleet-one.yaml'), workflow('one', 1, 1, 'true', True))
    subprocess.run(node.ctl + ['submit', wf], check=True, capture_output=True)
    cli = [os.path.join(build, 'picoflowctl', 'picoflowctl'), 'fleet', 'run', 'one', '--broker',
           f'mqtt://127.0.0.1:{broker.port}', '--group', 'bench', '--wait']
    # The node subscribes once connected: the first request may find no one.
    deadline = time.monotonic() + 10
    while subprocess.run(cli + ['--timeout', '1'], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit('bench: the fleet node does not answer')
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(cli, check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    row('fleet run, end to end', f'`picoflowctl fleet run --group --wait` of a one-task workflow '
        f'on a node over a local mosquitto: the CLI\'s start, connect, request, answer, run, end '
        f'event; median of {rounds}', f'{statistics.median(times):.1f} ms '
        f'(min {times[0]:.1f}, max {times[-1]:.1f})')
    node.stop()


def bench_page_views(daemon, port, row):
    """100 views of the web page's overview, each as a browser without a
    cache makes it: the page's files (gzip accepted) and the three API calls
    its overview starts with, over one kept-alive connection. Times are the
    daemon's answers seen from a client on the same machine (no rendering)."""
    paths = ['/', '/app.js', '/app.css', '/icon.svg', '/api/v1/daemon.status',
             '/api/v1/workflow.list', '/api/v1/run.list?limit=20']
    times = []
    for _ in range(100):
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        t0 = time.perf_counter()
        for path in paths:
            conn.request('GET', path, headers={'Accept-Encoding': 'gzip'})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f'bench: GET {path} answered {resp.status}')
        times.append(time.perf_counter() - t0)
        conn.close()
    row('web page load', f'the overview\'s {len(paths)} requests (files gzipped, 3 API calls) on '
        'one connection, no rendering; median of 100 views',
        f'{statistics.median(times) * 1000:.1f} ms (p90 {sorted(times)[89] * 1000:.1f} ms)')
    rss = daemon.status_kib('VmRSS')
    row('memory after 100 page views', 'VmRSS (RssAnon) of that daemon after the 100 views',
        f'{rss / KIB:.1f} MiB ({daemon.status_kib("RssAnon") / KIB:.1f} MiB)')


def bench_heavy_reads(start, work, quick, row):
    """Issue 14: a 5,000-task workflow read with workflow.get: the daemon's
    CPU per call, and daemon.status latency while 100 connections pipeline 30
    of them each and hang up (the attack of the issue), then while 20
    connections pipeline 10 each and read every answer."""
    daemon = start('heavy')
    wide = write(os.path.join(work, 'wide5000.yaml'), workflow('wide5000', 5000, 4, 'true', False))
    daemon.ctl_run('submit', wide)
    # Per call: one connection, calls back to back; the daemon's CPU over them.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(daemon.socket)
    request = (json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'workflow.get',
                           'params': {'name': 'wide5000'}}) + '\n').encode()
    pending = bytearray()

    def call():
        sock.sendall(request)
        while True:
            end = pending.find(b'\n')
            if end >= 0:
                size = end + 1
                del pending[:size]
                return size
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise SystemExit('bench: workflow.get: connection closed')
            pending.extend(chunk)

    size = 0
    for _ in range(3):  # warm up (and fill the cache, where there is one)
        size = call()
    seconds = 1.0 if quick else 4.0
    calls = 0
    cpu0 = daemon.cpu_seconds()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        call()
        calls += 1
    elapsed = time.monotonic() - t0
    cpu = daemon.cpu_seconds() - cpu0
    sock.close()
    row('workflow.get, 5,000 tasks',
        f'one connection, back to back for {seconds:g} s; daemon CPU per call (answer of '
        f'{size / KIB / KIB:.1f} MiB)',
        f'{cpu / calls * 1000:.2f} ms CPU, {elapsed / calls * 1000:.2f} ms per call ({calls} calls)')
    tool = os.path.join(os.path.dirname(daemon.ctl[0]), '..', 'bench', 'heavy_read_bench')
    for mode, conns, each in (('close', 100, 30), ('read', 20, 10)):
        cpu0 = daemon.cpu_seconds()
        out = subprocess.run([tool, daemon.socket, str(conns), str(each), 'workflow.get',
                              '{"name":"wide5000"}', mode, '2'],
                             check=True, capture_output=True, text=True).stdout.split()
        cpu = daemon.cpu_seconds() - cpu0
        calls, p50, p99, worst = int(out[0]), float(out[1]), float(out[2]), float(out[3])
        how = (f'{conns} connections pipeline {each} `workflow.get` of it each and '
               + ('hang up at once' if mode == 'close' else 'read every answer')
               + '; another calls `daemon.status` every 1 ms from 0.2 s before until 2 s after, '
               f'latency counted from when each call was due ({calls} samples)')
        row(f'daemon.status under heavy reads ({mode})', how,
            f'p50 {p50 / 1000:.2f} ms, p99 {p99 / 1000:.2f} ms, max {worst / 1000:.1f} ms '
            f'(daemon CPU {cpu:.1f} s)', 'p99 <= 50 ms', p99 <= 50000)
    # Requests that no cache helps: each is slow by itself, and the turns
    # make a quick one wait for about one of them, not one per client.
    with open(wide) as f:
        params = write(os.path.join(work, 'validate-params.json'), json.dumps({'source': f.read()}))
    cpu0 = daemon.cpu_seconds()
    out = subprocess.run([tool, daemon.socket, '20', '5', 'workflow.validate', '@' + params, 'read',
                          '2'], check=True, capture_output=True, text=True).stdout.split()
    cpu = daemon.cpu_seconds() - cpu0
    calls, p50, p99, worst = int(out[0]), float(out[1]), float(out[2]), float(out[3])
    row('daemon.status under heavy validates',
        '20 connections pipeline 5 `workflow.validate` of the same 5,000 tasks each (not cached: '
        f'the source is the client\'s) and read every answer; status as above ({calls} samples)',
        f'p50 {p50 / 1000:.2f} ms, p99 {p99 / 1000:.2f} ms, max {worst / 1000:.1f} ms '
        f'(daemon CPU {cpu:.1f} s: {cpu / 100 * 1000:.0f} ms a call)')
    daemon.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='build-bench')
    ap.add_argument('--out', help='default: bench/results.md, or bench/results-quick.md with --quick')
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--storage-only', action='store_true',
                    help='only the storage-write rows, printed, no results file')
    ap.add_argument('--heavy-reads-only', action='store_true',
                    help='only the heavy-read rows (workflow.get), printed, no results file')
    args = ap.parse_args()
    quick = args.quick
    out_path = args.out or ('bench/results-quick.md' if quick else 'bench/results.md')
    build = os.path.abspath(args.build)

    rounds = 5 if quick else 15
    history_runs = 1000 if quick else 10000
    idle_window = 10 if quick else 30
    rpc_seconds = 0.5 if quick else 2.0
    load_repeats = 5 if quick else 15
    tasks = 1000

    root = tempfile.mkdtemp(prefix='picoflow-bench-')
    daemons = []
    rows = []  # (figure, how, value, target, verdict)
    notes = []

    def row(figure, how, value, target='-', met=None):
        verdict = '-' if met is None else ('met' if met else '**not met**')
        rows.append((figure, how, value, target, verdict))
        print(f'{figure}: {value}  [{target}: {verdict}]', flush=True)

    def start(name, workflows_dir=None, extra_args=(), log=True, config=''):
        d = Daemon(build, root, name, workflows_dir, extra_args, log, config)
        daemons.append(d)
        return d

    if args.storage_only or args.heavy_reads_only:
        try:
            work = os.path.join(root, 'tasks')
            os.makedirs(work)
            if args.storage_only:
                bench_storage(start, work, quick, row)
            if args.heavy_reads_only:
                bench_heavy_reads(start, work, quick, row)
        finally:
            for d in daemons:
                d.stop()
            shutil.rmtree(root, ignore_errors=True)
        return 0

    try:
        # Idle: 20 scheduled workflows whose next fire is 1-2 hours away. The
        # daemon stays idle while the rest runs; its wakeups are counted over
        # `idle_window` seconds from 5 s after its start.
        wfdir = os.path.join(root, 'idle-workflows')
        os.makedirs(wfdir)
        fire = datetime.datetime.now() + datetime.timedelta(hours=2)
        for i in range(20):
            extra = f'schedule: "{i} {fire.hour} * * *"'
            write(os.path.join(wfdir, f'w{i}.yaml'),
                  workflow(f'idle{i}', 3, 1, 'echo hi', True, extra))
        idle = start('idle', wfdir)
        loaded = idle.call('daemon.status')['workflows']
        if loaded != 20:
            raise SystemExit(f'bench: the idle daemon loaded {loaded} workflows, not 20')
        time.sleep(max(0.0, 5 - (time.monotonic() - idle.started)))
        idle_rss = idle.status_kib('VmRSS')
        idle_anon = idle.status_kib('RssAnon')
        idle_pss = idle.pss_kib()
        idle_switches0 = idle.voluntary_switches()
        idle_t0 = time.monotonic()
        row('idle memory', '20 scheduled workflows, 5 s after start: VmRSS (of it RssAnon, the '
            'private part; PSS)',
            f'{idle_rss / KIB:.1f} MiB ({idle_anon / KIB:.1f} MiB; PSS {idle_pss / KIB:.1f} MiB)',
            'RSS <= 6 MiB',
            idle_rss <= 6 * KIB)

        # The same daemon with the HTTP listener on (docs/http-api.md) and no
        # client: what the listener costs at idle (its wakeups are counted
        # with the idle daemon's, below). Then 100 page views.
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            http_port = probe.getsockname()[1]
        idle_http = start('idle-http', wfdir, ['--http-listen', f'127.0.0.1:{http_port}'])
        idle_http.call('daemon.status')
        time.sleep(max(0.0, 5 - (time.monotonic() - idle_http.started)))
        http_rss = idle_http.status_kib('VmRSS')
        http_anon = idle_http.status_kib('RssAnon')
        http_switches0 = idle_http.voluntary_switches()
        row('idle memory, HTTP listener on',
            'the same 20 workflows with --http-listen, no client: VmRSS (RssAnon) and the change '
            'from the idle daemon above',
            f'{http_rss / KIB:.1f} MiB ({http_anon / KIB:.1f} MiB; {http_rss - idle_rss:+d} KiB RSS, '
            f'{http_anon - idle_anon:+d} KiB private)', '<= idle + 0.3 MiB',
            http_rss - idle_rss <= 0.3 * KIB)

        # The same daemon on an MQTT broker (docs/fleet.md), connected, no
        # message: what `mqtt:` costs at idle. Debian's mosquitto on loopback.
        broker = start_broker(root)
        idle_mqtt = None
        if broker is None:
            notes.append('MQTT rows: mosquitto is not installed (scripts/deps.sh installs it).')
        else:
            mqtt_yaml = write(os.path.join(root, 'mqtt.yaml'),
                              f'mqtt:\n  broker: mqtt://127.0.0.1:{broker.port}\n'
                              '  client_id: bench-idle\n  group: bench\n')
            idle_mqtt = start('idle-mqtt', wfdir, config=mqtt_yaml)
            idle_mqtt.call('daemon.status')
            time.sleep(max(0.0, 5 - (time.monotonic() - idle_mqtt.started)))
            mqtt_rss = idle_mqtt.status_kib('VmRSS')
            mqtt_anon = idle_mqtt.status_kib('RssAnon')
            mqtt_switches0 = idle_mqtt.voluntary_switches()
            row('idle memory, MQTT on',
                'the same 20 workflows with mqtt: connected to a local mosquitto, no message: '
                'VmRSS (RssAnon) and the change from the idle daemon above',
                f'{mqtt_rss / KIB:.1f} MiB ({mqtt_anon / KIB:.1f} MiB; '
                f'{mqtt_rss - idle_rss:+d} KiB RSS, {mqtt_anon - idle_anon:+d} KiB private)')

        # Workflow load, in process.
        out = subprocess.run([os.path.join(build, 'bench', 'load_bench'), str(load_repeats)],
                             check=True, capture_output=True, text=True).stdout
        for line in out.splitlines()[1:]:
            n, size, median, best = line.split()
            target = '<= 100 ms' if n == '10000' else '-'
            met = float(median) <= 100 if n == '10000' else None
            row(f'workflow load, {int(n):,} tasks',
                f'load + validate + DAG of {int(size):,} bytes, median of {load_repeats}',
                f'{float(median):.1f} ms (min {float(best):.1f})', target, met)

        # Per-task overhead: chain and wide, against ninja and a spawn loop.
        work = os.path.join(root, 'tasks')
        os.makedirs(work)
        chain_yaml = write(os.path.join(work, 'chain.yaml'), workflow('chain', tasks, 1, 'true', True))
        wide_yaml = write(os.path.join(work, 'wide.yaml'), workflow('wide', tasks, 2, 'true', False))
        write(os.path.join(work, 'chain.ninja'), ninja_file(tasks, True))
        write(os.path.join(work, 'wide.ninja'), ninja_file(tasks, False))
        runner = start('tasks')
        runner.ctl_run('submit', chain_yaml, wide_yaml)
        runner.ctl_run('run', 'chain', '--wait')  # warm up: page cache, store file
        spawn_loop = os.path.join(build, 'bench', 'spawn_loop')
        cpu0 = runner.cpu_seconds()
        chain = compare(rounds, [
            ('ninja', ninja_runner(work, 'chain.ninja', 1)),
            ('picoflowd', lambda: runner.ctl_run('run', 'chain', '--wait')),
            ('spawn', lambda: subprocess.run([spawn_loop, str(tasks)], check=True,
                                             stdout=subprocess.DEVNULL)),
        ])
        chain_cpu = (runner.cpu_seconds() - cpu0) / rounds
        wide = compare(rounds, [
            ('ninja', ninja_runner(work, 'wide.ninja', 2)),
            ('picoflowd', lambda: runner.ctl_run('run', 'wide', '--wait')),
        ])
        r_chain = median_ratio(chain['picoflowd'], chain['ninja'])
        r_spawn = median_ratio(chain['picoflowd'], chain['spawn'])
        med = {k: statistics.median(v) for k, v in chain.items()}
        row('per-task overhead, chain',
            f'{tasks:,}-task chain of `true`, submit once, `picoflowctl run --wait`; median of '
            f'{rounds} alternating rounds',
            f'{r_chain:.2f} x ninja, {r_spawn:.2f} x spawn loop (picoflowd {med["picoflowd"] * 1000:.0f} ms,'
            f' ninja {med["ninja"] * 1000:.0f} ms, spawn loop {med["spawn"] * 1000:.0f} ms;'
            f' daemon CPU {chain_cpu / tasks * 1e6:.0f} us/task)',
            '<= 1.15 x ninja', r_chain <= 1.15)
        r_wide = median_ratio(wide['picoflowd'], wide['ninja'])
        medw = {k: statistics.median(v) for k, v in wide.items()}
        row('per-task overhead, wide',
            f'{tasks:,} independent `true` tasks, max_parallel 2, vs `ninja -j2`; median of '
            f'{rounds} alternating rounds',
            f'{r_wide:.2f} x ninja (picoflowd {medw["picoflowd"] * 1000:.0f} ms,'
            f' ninja {medw["ninja"] * 1000:.0f} ms)', '<= 1.25 x ninja', r_wide <= 1.25)

        # RPC throughput and latency on the same (now idle) daemon.
        rpc_bench = os.path.join(build, 'bench', 'rpc_bench')
        for clients in (1, 10, 50):
            out = subprocess.run([rpc_bench, runner.socket, str(clients), str(rpc_seconds)],
                                 check=True, capture_output=True, text=True).stdout.split()
            rate, p50, p99 = float(out[3]), float(out[4]), float(out[5])
            target, met = '-', None
            if clients == 10:
                target = '>= 10,000 calls/s, p99 <= 2 ms'
                met = rate >= 10000 and p99 <= 2000
            row(f'RPC, {clients} client{"s" if clients > 1 else ""}',
                f'`daemon.status` back to back for {rpc_seconds:g} s, one connection per client',
                f'{rate:,.0f} calls/s, p50 {p50 / 1000:.2f} ms, p99 {p99 / 1000:.2f} ms', target, met)
        runner.stop()

        bench_heavy_reads(start, work, quick, row)

        bench_storage(start, work, quick, row)

        # Memory under load: peak RSS over the whole life of a fresh daemon
        # that runs 10 `sleep 2` tasks at once.
        loaded = start('load')
        sleep_yaml = write(os.path.join(work, 'sleep.yaml'), workflow('sleep10', 10, 10, 'sleep 2', False))
        loaded.ctl_run('submit', sleep_yaml)
        loaded.ctl_run('run', 'sleep10', '--wait')
        row('memory under load', 'peak RSS (VmHWM) of a fresh picoflowd that ran 10 `sleep 2` tasks in parallel',
            f'{loaded.status_kib("VmHWM") / KIB:.1f} MiB', '<= 10 MiB',
            loaded.status_kib('VmHWM') <= 10 * KIB)
        loaded.stop()

        # Memory vs history: RSS after 10 runs and after `history_runs`.
        hist = start('history')
        tiny = write(os.path.join(work, 'tiny.yaml'), workflow('tiny', 1, 1, 'true', False))
        hist.ctl_run('submit', tiny)
        stream, sock = hist.connect()
        for i in range(history_runs):
            # run.start with follow answers once the run has ended.
            done = hist.call('run.start', {'workflow': 'tiny', 'follow': True}, stream)
            if done['status'] != 'succeeded':
                raise SystemExit('bench: a history run failed')
            if i + 1 == 10:
                rss10 = hist.status_kib('VmRSS')
        stream.close()
        sock.close()
        rss_n = hist.status_kib('VmRSS')
        growth = rss_n - rss10
        row('memory vs history',
            f'VmRSS after {history_runs:,} completed runs minus after 10 (default retention: 1,000 runs kept)',
            f'{growth / KIB:+.2f} MiB ({rss10 / KIB:.1f} -> {rss_n / KIB:.1f} MiB)',
            '<= 1 MiB' if history_runs == 10000 else '<= 1 MiB (at 10,000 runs)',
            growth <= KIB if history_runs == 10000 else None)
        hist.stop()

        # Idle wakeups: whatever ran meanwhile, the idle daemon had no work.
        time.sleep(max(0.0, idle_window - (time.monotonic() - idle_t0)))
        switches = idle.voluntary_switches() - idle_switches0
        window = time.monotonic() - idle_t0
        row('idle wakeups', f'voluntary context switches of the idle daemon (20 workflows, next fire'
            f' 1-2 h away) over {window:.0f} s', f'{switches}',
            '<= 2 over 30 s', switches <= 2 if window >= 29.5 else None)
        idle.stop()
        http_switches = idle_http.voluntary_switches() - http_switches0
        row('idle wakeups, HTTP listener on', f'the same, with --http-listen and no client, over '
            f'{window:.0f} s', f'{http_switches}', '<= 2 over 30 s',
            http_switches <= 2 if window >= 29.5 else None)
        bench_page_views(idle_http, http_port, row)
        idle_http.stop()
        if idle_mqtt is not None:
            mqtt_switches = idle_mqtt.voluntary_switches() - mqtt_switches0
            row('idle wakeups, MQTT on', f'the same, connected to mosquitto (keepalive 60 s: a '
                f'ping timer every 15 s), over {window:.0f} s', f'{mqtt_switches}')
            idle_mqtt.stop()
            bench_fleet_run(start, root, broker, build, rounds, row)
        if broker is not None:
            broker.stop()

        # Sizes.
        for name, path in (('picoflowd', 'picoflowd/picoflowd'), ('picoflowctl', 'picoflowctl/picoflowctl'),
                           ('picoflow-http.so', 'picoflowd/exec/http/picoflow-http.so'),
                           ('picoflow-ssh.so', 'picoflowd/exec/ssh/picoflow-ssh.so')):
            size = stripped_size(os.path.join(build, path))
            if size is None:
                continue
            target = '<= 1.5 MiB' if name == 'picoflowd' else '-'
            met = size <= 1.5 * KIB * KIB if name == 'picoflowd' else None
            row(f'size, {name} ({platform.machine()})', 'stripped', f'{size / KIB:,.0f} KiB', target, met)
        for arch, triplet in (('armhf', 'arm-linux-gnueabihf'), ('aarch64', 'aarch64-linux-gnu')):
            cross = os.path.join(os.path.dirname(build), f'build-bench-{arch}')
            for name in ('picoflowd', 'picoflowctl'):
                path = os.path.join(cross, name, name)
                if not os.path.exists(path) or not shutil.which(f'{triplet}-strip'):
                    notes.append(f'{arch} sizes: not built here (`cross/build.sh {arch} --release`).')
                    break
                size = stripped_size(path, f'{triplet}-strip')
                target = '<= 1.5 MiB' if name == 'picoflowd' else '-'
                met = size <= 1.5 * KIB * KIB if name == 'picoflowd' else None
                built = datetime.datetime.fromtimestamp(os.path.getmtime(path)).strftime('%Y-%m-%d')
                row(f'size, {name} ({arch})', f'stripped, cross build of {built}', f'{size / KIB:,.0f} KiB',
                    target, met)
    finally:
        for d in daemons:
            d.stop()
        shutil.rmtree(root, ignore_errors=True)

    report(out_path, quick, rows, notes)


def report(path, quick, rows, notes):
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    with open('/proc/meminfo') as f:
        mem = int(f.readline().split()[1]) // KIB
    gxx = subprocess.run(['g++', '-dumpfullversion'], capture_output=True, text=True).stdout.strip()
    ninja = subprocess.run(['ninja', '--version'], capture_output=True, text=True).stdout.strip()
    lines = [
        '# picoflow benchmark results',
        '',
        f'Written by `bench/run.sh{" --quick" if quick else ""}`; do not edit by hand.',
        '',
        f'- Machine: {os.cpu_count()} cores ({cpu}), {mem:,} MiB, Linux {platform.release()}',
        f'- Date: {datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}',
        f'- Build: meson minsize (-Os) + LTO + --gc-sections + NDEBUG, g++ {gxx}; ninja {ninja}',
        '',
        '| figure | how | value | target | verdict |',
        '|---|---|---|---|---|',
    ]
    for r in rows:
        lines.append('| ' + ' | '.join(r) + ' |')
    if quick:
        lines += ['', 'Quick run: fewer rounds, 1,000 history runs and a 10 s idle window; targets that '
                  'need the full run are not judged.']
    for n in dict.fromkeys(notes):
        lines += ['', n]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    sys.exit(main())
