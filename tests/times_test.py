#!/usr/bin/python3
"""Times under TZ=Asia/Tokyo: one zone, labelled, the same instant printed the same way.

Usage: /usr/bin/python3 times_test.py PATH/TO/picoflowd PATH/TO/picoflowctl

A real picoflowd and picoflowctl, both with TZ=Asia/Tokyo (+09:00 all year, so
the test does not depend on the date), and a workflow whose schedule has no
`timezone:` (docs/workflow-format.md, "Schedule"). Checks:

* `cron`, `validate`, `next` and `workflows` print the next 02:00 fire as the
  same text, `YYYY-MM-DD 02:00:00 +09:00`, and `validate` names the zone as
  `(local zone, Asia/Tokyo)`;
* `status` and `history` print the run's start with `+09:00`;
* with `--utc` the same fire reads `YYYY-MM-DD 17:00:00 UTC` in `next` and `cron`;
* the daemon itself evaluates the schedule in Tokyo: `next --json` is 17:00Z.
"""

import os
import re
import shutil
import subprocess
import sys

from docs_commands_test import isolated_work, start_daemon, stop_daemon
from exec_wrapper import command

WORKFLOW = """name: tokyo
schedule: "0 2 * * *"
tasks:
  - name: hello
    type: shell
    config: { command: "echo hi" }
"""

LOCAL_FIRE = r'\d{4}-\d{2}-\d{2} 02:00:00 \+09:00'
UTC_FIRE = r'\d{4}-\d{2}-\d{2} 17:00:00 UTC'
LOCAL_TIME = r'\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+09:00'


def main():
    picoflowd, picoflowctl = sys.argv[1:3]
    work, env = isolated_work('pf-times-', {'NO_COLOR': '1', 'TZ': 'Asia/Tokyo'})
    path = os.path.join(work, 'tokyo.yaml')
    with open(path, 'w') as f:
        f.write(WORKFLOW)
    failures = []
    proc = None

    def ctl(*args, code=0):
        r = subprocess.run(command(picoflowctl) + list(args), env=env, cwd=work,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != code:
            failures.append(f'picoflowctl {" ".join(args)} exited {r.returncode}: {r.stderr}')
        return r.stdout

    def expect(what, pattern, text):
        found = re.findall(pattern, text)
        if not found:
            failures.append(f'{what}: no {pattern!r} in:\n{text}')
        return found[0] if found else None

    try:
        proc, sock = start_daemon(picoflowd, work, env)
        env['PICOFLOW_SOCKET'] = sock
        ctl('submit', path)
        fires = {
            'cron': expect('cron', LOCAL_FIRE, ctl('cron', '0 2 * * *', '-n', '1')),
            'validate': expect('validate', LOCAL_FIRE, ctl('validate', path)),
            'next': expect('next', LOCAL_FIRE, ctl('next', 'tokyo', '-n', '1')),
            'workflows': expect('workflows', LOCAL_FIRE, ctl('workflows')),
        }
        if len(set(fires.values())) != 1:
            failures.append(f'the same fire printed differently: {fires}')
        expect('validate', r'\(local zone, Asia/Tokyo\)', ctl('validate', path))
        expect('next --json', r'T17:00:00(\.000)?Z', ctl('next', 'tokyo', '-n', '1', '--json'))
        expect('next --utc', UTC_FIRE, ctl('next', 'tokyo', '-n', '1', '--utc'))
        expect('cron --utc', UTC_FIRE, ctl('cron', '0 2 * * *', '-n', '1', '--utc'))
        ctl('run', 'tokyo', '--wait')
        expect('status', LOCAL_TIME, ctl('status'))
        expect('status tokyo', LOCAL_TIME, ctl('status', 'tokyo'))
        expect('history', LOCAL_TIME, ctl('history', 'tokyo'))
    finally:
        if proc is not None:
            stop_daemon(proc)
            if failures:
                sys.stderr.write(open(os.path.join(work, 'daemon.log'), errors='replace').read())
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print('FAIL:', f)
    print(f'{len(failures)} failure(s)')
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
