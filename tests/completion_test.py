#!/usr/bin/python3
"""picoflowctl's bash completion (picoflowctl/picoflowctl.bash), sourced in a real bash.

Usage: /usr/bin/python3 completion_test.py PATH/TO/picoflowd PATH/TO/picoflowctl PATH/TO/picoflowctl.bash

Checks what `picoflowctl WORDS<TAB>` offers: `st` gives `status`; every
subcommand `picoflowctl --help` lists is offered, and every option each
subcommand's `--help` lists; workflow names come from a real picoflowd
(through `picoflowctl workflows --json`, with picoflowctl found on PATH as a
user's shell finds it: a temporary directory holding a link to this build's).
"""

import os
import re
import shutil
import subprocess
import sys

from docs_commands_test import isolated_work, start_daemon, stop_daemon
from exec_wrapper import command

DRIVER = r'''
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
_picoflowctl
printf '%s\n' "${COMPREPLY[@]}"
'''


def main():
    picoflowd, picoflowctl, script = sys.argv[1:4]
    work, env = isolated_work('pf-compl-', {})
    os.makedirs(os.path.join(work, 'bin'))
    os.symlink(os.path.abspath(picoflowctl), os.path.join(work, 'bin', 'picoflowctl'))
    env['PATH'] = os.path.join(work, 'bin') + os.pathsep + env.get('PATH', '/usr/bin:/bin')
    failures = []
    proc = None

    def complete(*words):
        r = subprocess.run(['/bin/bash', '--norc', '--noprofile', '-c', DRIVER, 'driver',
                            os.path.abspath(script), 'picoflowctl', *words],
                           env=env, cwd=work, capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or r.stderr:
            failures.append(f'completing {words}: exit {r.returncode}: {r.stderr}')
        return sorted(w for w in r.stdout.split('\n') if w)

    def expect(words, want):
        got = complete(*words)
        if got != sorted(want):
            failures.append(f'picoflowctl {" ".join(words)}<TAB>: {got}, expected {sorted(want)}')

    def ctl_help(*args):
        return subprocess.run(command(picoflowctl) + list(args) + ['--help'], env=env,
                              capture_output=True, text=True, timeout=60).stdout

    try:
        expect(['st'], ['status'])
        expect(['s'], ['status', 'submit', 'show'])
        expect(['--json', 'st'], ['status'])
        expect(['daemon', 'r'], ['reload'])
        top = ctl_help()
        section = re.split(r'^subcommands:$', top, flags=re.IGNORECASE | re.MULTILINE)[-1]
        subs = re.findall(r'^\s{2}(\w+)\s', section, re.MULTILINE)
        if not subs:
            failures.append(f'picoflowctl --help lists no subcommands:\n{top}')
        offered = complete('')
        for sub in subs:
            if sub not in offered:
                failures.append(f'`picoflowctl <TAB>` does not offer {sub}')
            opts = set(re.findall(r'(?<![\w-])(--?[a-z][\w-]*)', ctl_help(sub).split('Options:')[-1]))
            missing = opts - set(complete(sub, '-'))
            if missing:
                failures.append(f'`picoflowctl {sub} -<TAB>` lacks {sorted(missing)}')
        # Workflow names, from a real daemon.
        proc, sock = start_daemon(picoflowd, work, env)
        env['PICOFLOW_SOCKET'] = sock
        flow = os.path.join(work, 'my flow.yaml')
        for name in ('diamond', 'digest'):
            with open(flow, 'w') as f:
                f.write(f'name: {name}\ntasks:\n  - name: a\n    type: shell\n'
                        f'    config: {{ command: "true" }}\n')
            subprocess.run(command(picoflowctl) + ['submit', flow], env=env, check=True,
                           capture_output=True, timeout=60)
        expect(['status', 'di'], ['diamond', 'digest'])
        expect(['logs', 'dia'], ['diamond'])
        expect(['run', 'my'], ['my flow.yaml'])
    finally:
        if proc is not None:
            stop_daemon(proc)
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print('FAIL:', f)
    print(f'{len(failures)} failure(s)')
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
