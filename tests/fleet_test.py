#!/usr/bin/python3
"""Three picoflowd nodes and a real Mosquitto on one machine (docs/fleet.md).

Usage: /usr/bin/python3 fleet_test.py PATH/TO/picoflowd PATH/TO/picoflowctl

Debian's mosquitto is started on 127.0.0.1 with a config of the test's own:
a plain listener and a TLS one (a CA and a server certificate made with the
openssl CLI). The three nodes, group `lab`, connect over TLS. Checked through
picoflowctl fleet, and mosquitto_pub/mosquitto_sub where a raw message is
needed:

* 30 requests to the group are spread over the nodes and each runs exactly
  once; `--all` reaches every node; `--wait` waits for the ends;
* `fleet status`: every node online with its version and last runs;
* a node killed (-9): its retained status says offline (the will); requests
  published to it while it is down run when it is back;
* bad requests (not JSON, another "v", too large, an unknown workflow, a
  workflow not accepted) are answered with errors and run nothing;
* an `mqtt:` trigger: a message starts a run with its topic and payload; a
  retained one does not.

Every process is stopped at the end; every wait has a deadline, which only
ends a hang. Exit 0 if all passed.
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

DEADLINE_S = 60.0
NODES = ('node-a', 'node-b', 'node-c')

HELLO = """name: hello
params:
  req: {default: none}
tasks:
  - name: record
    type: shell
    config:
      command: 'echo "$PICOFLOW_PARAM_REQ $NODE" >> "$RAN"'
      env: {NODE: "%(node)s", RAN: "%(ran)s"}
"""

PRIVATE = """name: private
tasks:
  - {name: t, type: shell, config: {command: 'true'}}
"""

SLOW = """name: slow
tasks:
  - {name: wait, type: shell, config: {command: 'while [ ! -f %(release)s ]; do sleep 0.05; done'}}
"""

ALARM = """name: alarm
triggers:
  - mqtt: {topic: "sensors/+/alarm"}
tasks:
  - name: show
    type: shell
    config:
      command: 'echo "$PICOFLOW_TRIGGER_TOPIC $PICOFLOW_TRIGGER_PAYLOAD" >> "%(ran)s.alarm"'
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait(pred, what):
    end = time.monotonic() + DEADLINE_S
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < end, 'timed out: ' + what
        time.sleep(0.05)


def certificates(tmp):
    def ssl(*args):
        subprocess.run(['openssl'] + list(args), check=True, capture_output=True, cwd=tmp)
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    ssl('req', '-x509', '-days', '2', '-subj', '/CN=fleet-test-ca', '-keyout', 'ca.key', '-out',
        'ca.crt', *ec)
    ssl('req', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr', *ec)
    with open(os.path.join(tmp, 'san.cnf'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1\n')
    ssl('x509', '-req', '-days', '2', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
        '-CAcreateserial', '-extfile', 'san.cnf', '-out', 'server.crt')
    return os.path.join(tmp, 'ca.crt')


class Broker:
    def __init__(self, tmp):
        self.port = free_port()
        self.tls_port = free_port()
        conf = os.path.join(tmp, 'mosquitto.conf')
        import pwd
        # log_dest file: mosquitto writes each line at once (its stdout is
        # buffered), and the test waits on its SUBSCRIBE lines.
        self.log_path = os.path.join(tmp, 'mosquitto.log')
        with open(conf, 'w') as f:
            f.write('per_listener_settings false\nallow_anonymous true\npersistence false\n'
                    'log_dest file %s\nlog_type all\nuser %s\n'
                    'listener %d 127.0.0.1\nlistener %d 127.0.0.1\n'
                    'cafile %s/ca.crt\ncertfile %s/server.crt\nkeyfile %s/server.key\n' %
                    (self.log_path, pwd.getpwuid(os.getuid()).pw_name, self.port, self.tls_port,
                     tmp, tmp, tmp))
        self.log = open(os.path.join(tmp, 'mosquitto.out'), 'w')
        self.proc = subprocess.Popen(['mosquitto', '-c', conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def listening():
            assert self.proc.poll() is None, 'mosquitto exited'
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait(listening, 'mosquitto listening')

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(DEADLINE_S)
        self.log.close()


class Node:
    def __init__(self, picoflowd, picoflowctl, tmp, name, broker, ca):
        self.name = name
        self.broker = broker
        self.ca = ca
        self.picoflowd = picoflowd
        self.picoflowctl = picoflowctl
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, 's.sock')
        self.config = os.path.join(self.dir, 'picoflowd.yaml')
        self.configure('[hello, slow]')
        self.log_path = os.path.join(self.dir, 'daemon.log')
        self.start()

    def configure(self, accept):
        with open(self.config, 'w') as f:
            f.write('mqtt:\n  broker: mqtts://127.0.0.1:%d\n  ca_file: %s\n  client_id: %s\n'
                    '  group: lab\n  keepalive: 5s\n  accept_runs: %s\n' %
                    (self.broker.tls_port, self.ca, self.name, accept))

    def start(self):
        self.log = open(self.log_path, 'a')
        before = self.text().count('info connected to mqtts://')
        self.proc = subprocess.Popen(
            command(self.picoflowd) + ['--config', self.config, '--socket', self.sock,
                                       '--state-dir', os.path.join(self.dir, 'state')],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
            env=dict(os.environ, HOME=self.dir, XDG_RUNTIME_DIR=self.dir))
        wait(lambda: self.proc.poll() is None and
             self.text().count('info connected to mqtts://') > before, self.name + ' connected\n' +
             self.text())

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def ctl(self, *args):
        r = subprocess.run(command(self.picoflowctl) + ['--socket', self.sock] + list(args),
                           capture_output=True, text=True, timeout=DEADLINE_S)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def runs(self, workflow):
        return json.loads(self.ctl('--json', 'history', '-n', '1000', workflow))['runs']

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE_S)
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(DEADLINE_S) == 0, self.text()[-3000:]
        self.log.close()


def fleet(picoflowctl, broker, *args, expect=0):
    r = subprocess.run(command(picoflowctl) + ['--json', 'fleet'] + [args[0]] +
                       ['--broker', 'mqtt://127.0.0.1:%d' % broker.port] + list(args[1:]),
                       capture_output=True, text=True, timeout=DEADLINE_S)
    assert r.returncode == expect, (args, r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout) if r.stdout.strip() else None


def ran_lines(ran):
    if not os.path.exists(ran):
        return []
    with open(ran) as f:
        return [line.split() for line in f.read().splitlines()]


def raw_requests(broker, topic, payloads, answers):
    """Publishes each payload as a request with a response topic; returns
    the `answers` answers that arrive there."""
    reply = 'picoflow/responses/fleet-test-%d' % os.getpid()
    sub = subprocess.Popen(['stdbuf', '-oL', 'mosquitto_sub', '-d', '-V', 'mqttv5', '-p', str(broker.port), '-t',
                            reply, '-C', str(answers), '-W', str(int(DEADLINE_S))],
                           stdout=subprocess.PIPE, text=True)
    got = []
    for line in sub.stdout:  # -d: the client says when the broker granted the subscription
        if 'received SUBACK' in line:
            break
    for payload in payloads:
        subprocess.run(['mosquitto_pub', '-V', 'mqttv5', '-p', str(broker.port), '-q', '1',
                        '-t', topic, '-s', '-D', 'publish', 'response-topic', reply],
                       input=payload, text=True, check=True, timeout=DEADLINE_S)
    out, _ = sub.communicate(timeout=DEADLINE_S + 5)
    for line in out.splitlines():
        if line.startswith('{'):
            got.append(json.loads(line))
    return got


def main():
    picoflowd, picoflowctl = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix='picoflow-fleet-')
    ran = os.path.join(tmp, 'ran.log')
    ca = certificates(tmp)
    broker = Broker(tmp)
    nodes = {}
    try:
        # A retained message waiting on a trigger's topic before anyone subscribes.
        subprocess.run(['mosquitto_pub', '-p', str(broker.port), '-r', '-t', 'sensors/old/alarm',
                        '-m', 'stale'], check=True, timeout=DEADLINE_S)
        for name in NODES:
            nodes[name] = Node(picoflowd, picoflowctl, tmp, name, broker, ca)
            path = os.path.join(tmp, name + '-hello.yaml')
            with open(path, 'w') as f:
                f.write(HELLO % {'node': name, 'ran': ran})
            nodes[name].ctl('submit', path)
            path = os.path.join(tmp, 'private.yaml')
            with open(path, 'w') as f:
                f.write(PRIVATE)
            nodes[name].ctl('submit', path)

        # Every node online, with its version.
        def all_online():
            st = fleet(picoflowctl, broker, 'status', '--group', 'lab')
            on = [n for n in st['nodes'] if n['online'] and 'hello' in n.get('workflows', [])]
            return st if len(on) == 3 else None
        status = wait(all_online, 'three nodes online')
        assert all(n['version'] and n['group'] == 'lab' for n in status['nodes']), status
        print('ok: three nodes online')

        # 30 requests to the group: each runs exactly once, spread over the nodes.
        for i in range(30):
            out = fleet(picoflowctl, broker, 'run', 'hello', '--group', 'lab', '--param',
                        'req=r%d' % i)
            assert len(out['answers']) == 1 and out['answers'][0]['ok'], out
        lines = wait(lambda: (lambda l: l if len(l) >= 30 else None)(ran_lines(ran)),
                     '30 runs recorded')
        reqs = sorted(l[0] for l in lines)
        assert reqs == sorted('r%d' % i for i in range(30)), reqs
        spread = {l[1] for l in lines}
        assert len(spread) >= 2, 'a shared subscription spreads requests: %s' % spread
        print('ok: 30 requests spread over %s, each run once' % sorted(spread))

        # --all reaches every node, --wait waits for the ends.
        out = fleet(picoflowctl, broker, 'run', 'hello', '--all', '--param', 'req=all', '--wait')
        assert sorted(a['node'] for a in out['answers']) == list(NODES), out
        assert all(r['status'] == 'succeeded' for r in out['runs']), out
        assert sorted(l[1] for l in ran_lines(ran) if l[0] == 'all') == list(NODES)
        print('ok: --all')

        # Bad requests: each answered with an error, nothing runs.
        before = len(ran_lines(ran))
        answers = raw_requests(broker, 'picoflow/node/node-a/run/hello',
                               ['not json', '{"v": 2}', '{"v": 1, "params": [1]}',
                                '{"v": 1, "x": "' + 'y' * (70 * 1024) + '"}',
                                '{"v": 1, "params": {"nope": "1"}}'], 5)
        assert len(answers) == 5 and not any(a['ok'] for a in answers), answers
        errors = ' | '.join(a['error'] for a in answers)
        for part in ('JSON object', 'version 2', "'params' must be an object", '64 KiB', 'nope'):
            assert part in errors, (part, errors)
        answers = raw_requests(broker, 'picoflow/node/node-a/run/private', ['{"v": 1}'], 1)
        assert 'does not accept' in answers[0]['error'], answers
        answers = raw_requests(broker, 'picoflow/node/node-a/run/ghost', ['{"v": 1}'], 1)
        assert "'ghost'" in answers[0]['error'] and not answers[0]['ok'], answers
        assert len(ran_lines(ran)) == before
        for n in nodes.values():
            assert n.proc.poll() is None, n.name + ' crashed'
        print('ok: bad requests answered with errors')

        # A node killed: the will says offline; requests sent meanwhile run on its return.
        nodes['node-c'].kill()
        wait(lambda: [n for n in fleet(picoflowctl, broker, 'status')['nodes']
                      if n['node'] == 'node-c' and not n['online']], 'node-c offline (the will)')
        for i in range(3):
            subprocess.run(['mosquitto_pub', '-V', 'mqttv5', '-p', str(broker.port), '-q', '1',
                            '-t', 'picoflow/node/node-c/run/hello', '-m',
                            '{"v": 1, "params": {"req": "late%d"}}' % i],
                           check=True, timeout=DEADLINE_S)
        nodes['node-c'].start()
        late = wait(lambda: (lambda l: l if len(l) == 3 else None)(
            [l for l in ran_lines(ran) if l[0].startswith('late')]), 'the late requests ran')
        assert sorted(l[0] for l in late) == ['late0', 'late1', 'late2'], late
        assert all(l[1] == 'node-c' for l in late), late
        wait(lambda: [n for n in fleet(picoflowctl, broker, 'status')['nodes']
                      if n['node'] == 'node-c' and n['online']], 'node-c online again')
        print('ok: kill -9, the will, and the requests sent while down')

        # An mqtt: trigger: a message starts a run; the retained one did not.
        path = os.path.join(tmp, 'alarm.yaml')
        with open(path, 'w') as f:
            f.write(ALARM % {'ran': ran})
        nodes['node-a'].ctl('submit', path)
        # The broker logs the SUBSCRIBE: the message below must come after it.
        wait(lambda: 'node-a 1 sensors/+/alarm' in broker.text(), 'node-a subscribed')
        subprocess.run(['mosquitto_pub', '-V', 'mqttv5', '-p', str(broker.port), '-q', '1',
                        '-t', 'sensors/kitchen/alarm', '-m', '{"t": 41}'],
                       check=True, timeout=DEADLINE_S)
        runs = wait(lambda: [r for r in nodes['node-a'].runs('alarm')
                             if r['status'] == 'succeeded'], 'the alarm run')
        assert len(runs) == 1 and runs[0]['trigger'] == 'mqtt', runs
        assert runs[0]['event']['topic'] == 'sensors/kitchen/alarm', runs
        with open(ran + '.alarm') as f:
            assert f.read() == 'sensors/kitchen/alarm {"t": 41}\n'
        print('ok: an mqtt trigger')

        # --wait ends when the node of its run goes away (its will).
        path = os.path.join(tmp, 'slow.yaml')
        with open(path, 'w') as f:
            f.write(SLOW % {'release': os.path.join(tmp, 'release')})
        nodes['node-a'].ctl('submit', path)
        waiter = subprocess.Popen(
            command(picoflowctl) + ['fleet', 'run', 'slow', '--node', 'node-a', '--wait',
                                    '--broker', 'mqtt://127.0.0.1:%d' % broker.port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait(lambda: [r for r in nodes['node-a'].runs('slow') if r['status'] == 'running'],
             'the slow run going')
        nodes['node-a'].kill()
        out, _ = waiter.communicate(timeout=DEADLINE_S)
        assert waiter.returncode == 1 and 'node offline' in out, (waiter.returncode, out)
        with open(os.path.join(tmp, 'release'), 'w') as f:
            f.write('')
        nodes['node-a'].start()
        print('ok: --wait ends when the node goes offline')

        # A node restarted with another accept_runs: the session the broker
        # kept drops the shared subscription it no longer wants.
        nodes['node-b'].stop()
        # Stopped cleanly, it left the group's share: every request finds a node.
        for i in range(6):
            out = fleet(picoflowctl, broker, 'run', 'hello', '--group', 'lab', '--param',
                        'req=while-b-stopped%d' % i, '--timeout', '5s')
            assert out['answers'][0]['ok'] and out['answers'][0]['node'] != 'node-b', out
        print('ok: a node stopped cleanly takes no group requests')
        nodes['node-b'].configure('[slow]')
        nodes['node-b'].start()
        wait(lambda: [n for n in fleet(picoflowctl, broker, 'status')['nodes']
                      if n['node'] == 'node-b' and n['online']], 'node-b online again')
        for i in range(12):
            out = fleet(picoflowctl, broker, 'run', 'hello', '--group', 'lab', '--param',
                        'req=after%d' % i)
            assert out['answers'][0]['ok'], out  # never node-b's "does not accept"
        after = wait(lambda: (lambda l: l if len(l) == 12 else None)(
            [l for l in ran_lines(ran) if l[0].startswith('after')]), 'the 12 requests ran')
        assert not any(l[1] == 'node-b' for l in after), after
        print('ok: a restart with another accept_runs drops the old shared subscription')

        for n in nodes.values():
            n.stop()
        st = fleet(picoflowctl, broker, 'status')
        assert not any(n['online'] for n in st['nodes']), st
        print('ok: stopped nodes say offline')
    except BaseException:
        for n in nodes.values():
            print('---- %s\n%s' % (n.name, n.text()[-4000:]))
            if n.proc.poll() is None:
                n.proc.kill()
        raise
    finally:
        broker.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
