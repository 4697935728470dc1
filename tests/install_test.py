#!/usr/bin/python3
"""`meson install` puts every file where docs/operations.md says it does.

Usage: /usr/bin/python3 install_test.py MESON BUILD_DIR SOURCE_DIR VERSION
                                        PREFIX BINDIR SBINDIR SYSCONFDIR DATADIR MANDIR

Installs the build into a temporary DESTDIR (`meson install --destdir TMP
--no-rebuild -C BUILD_DIR`) and checks the tree: the programs (runnable,
right version), the units (paths of this prefix, nothing left to
substitute, `systemd-analyze verify` clean when it is installed), the
default config (the source file, byte for byte), the man pages (version
filled in, no groff warnings when man is installed), docs, examples and
the hardened drop-in.
The temporary directory is always removed. Exit 0 only if all is well.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from exec_wrapper import command

TIMEOUT_S = 120


class Failure(Exception):
    """A broken expectation."""


def expect(condition, message):
    if not condition:
        raise Failure(message)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, **kw)


def under(root, prefix, *parts):
    """DESTDIR + an absolute install path (relative dirs are under the prefix)."""
    path = os.path.join(prefix, *parts)
    return os.path.join(root, path.lstrip('/'))


def check_tree(root, src, version, prefix, bindir, sbindir, sysconfdir, datadir, mandir):
    files = []
    for dirpath, _, names in os.walk(root):
        files += [os.path.relpath(os.path.join(dirpath, n), root) for n in names]
    listing = '\n  '.join(sorted(files))

    def must_exist(path, what, executable=False):
        expect(os.path.isfile(path), '%s missing: %s\ninstalled:\n  %s' % (what, path, listing))
        if executable:
            expect(os.access(path, os.X_OK), '%s is not executable: %s' % (what, path))

    picoflowd = under(root, prefix, sbindir, 'picoflowd')
    picoflowctl = under(root, prefix, bindir, 'picoflowctl')
    must_exist(picoflowd, 'picoflowd (sbindir)', executable=True)
    must_exist(picoflowctl, 'picoflowctl (bindir)', executable=True)
    for exe in (picoflowd, picoflowctl):
        out = run(command(exe) + ['--version'])
        expect(out.returncode == 0 and version in out.stdout,
               '%s --version: %d %r' % (exe, out.returncode, out.stdout + out.stderr))

    unit_dir = under(root, prefix, 'lib', 'systemd', 'system')
    service = os.path.join(unit_dir, 'picoflowd.service')
    socket_unit = os.path.join(unit_dir, 'picoflowd.socket')
    must_exist(service, 'the service unit')
    must_exist(socket_unit, 'the socket unit')
    with open(service, encoding='utf-8') as f:
        text = f.read()
    installed_sbin = os.path.join(prefix, sbindir, 'picoflowd')
    expect('ExecStart=%s --system\n' % installed_sbin in text,
           'ExecStart does not run %s --system' % installed_sbin)
    expect('@' not in text, 'unsubstituted @...@ left in picoflowd.service')
    for line in ('Type=notify', 'KillMode=mixed', 'WatchdogSec=30s', 'Restart=on-failure',
                 'RuntimeDirectory=picoflow', 'StateDirectory=picoflow',
                 'ConfigurationDirectory=picoflow', 'NoNewPrivileges=yes'):
        expect(line + '\n' in text, 'picoflowd.service lacks %s' % line)
    verify_units(root, service, socket_unit, installed_sbin)

    config = under(root, prefix, sysconfdir, 'picoflow', 'picoflowd.yaml')
    must_exist(config, 'the default config')
    with open(config, 'rb') as a, open(os.path.join(src, 'config', 'picoflowd.yaml'), 'rb') as b:
        expect(a.read() == b.read(), 'the installed config differs from config/picoflowd.yaml')

    doc = under(root, prefix, datadir, 'doc', 'picoflow')
    for name in ('README.md', 'operations.md', 'workflow-format.md', 'cron.md', 'rpc.md'):
        must_exist(os.path.join(doc, name), 'doc')
    examples = sorted(n for n in os.listdir(os.path.join(src, 'examples')) if n.endswith('.yaml'))
    expect(examples, 'no examples in the source tree')
    for name in examples:
        must_exist(os.path.join(doc, 'examples', name), 'example')
    with open(os.path.join(src, 'systemd', 'hardened.conf'), 'rb') as f:
        hardened = f.read()
    must_exist(os.path.join(doc, 'examples', 'hardened.conf'), 'the hardened drop-in')
    with open(os.path.join(doc, 'examples', 'hardened.conf'), 'rb') as f:
        expect(f.read() == hardened, 'the installed hardened.conf differs from systemd/')

    completion = under(root, prefix, datadir, 'bash-completion', 'completions', 'picoflowctl')
    must_exist(completion, 'bash completion')

    for page, section in (('picoflowd', '8'), ('picoflowctl', '1')):
        path = under(root, prefix, mandir, 'man' + section, '%s.%s' % (page, section))
        must_exist(path, 'man page')
        with open(path, encoding='utf-8') as f:
            roff = f.read()
        expect('@VERSION@' not in roff and version in roff, '%s: version not filled in' % path)
        if shutil.which('man'):
            out = run(['man', '--warnings', '-l', path],
                      env=dict(os.environ, MANWIDTH='80', LC_ALL='C.UTF-8', MANPAGER='cat'))
            expect(out.returncode == 0 and not out.stderr.strip(),
                   'man %s: %d %s' % (path, out.returncode, out.stderr))


def verify_units(root, service, socket_unit, installed_sbin):
    """systemd-analyze verify on copies whose ExecStart is the DESTDIR binary."""
    tool = shutil.which('systemd-analyze')
    if tool is None:
        print('systemd-analyze not installed: units not verified')
        return
    vdir = os.path.join(root, 'verify')
    os.mkdir(vdir)
    with open(service, encoding='utf-8') as f:
        text = f.read().replace(installed_sbin, os.path.join(root, installed_sbin.lstrip('/')))
    with open(os.path.join(vdir, 'picoflowd.service'), 'w', encoding='utf-8') as f:
        f.write(text)
    shutil.copy(socket_unit, vdir)
    out = run([tool, 'verify', '--man=no', os.path.join(vdir, 'picoflowd.service'),
               os.path.join(vdir, 'picoflowd.socket')])
    # verify exits 0 on unknown keys too, only warning: any output is a failure.
    expect(out.returncode == 0 and not (out.stdout + out.stderr).strip(),
           'systemd-analyze verify: %d\n%s%s' % (out.returncode, out.stdout, out.stderr))
    shutil.rmtree(vdir)


def main():
    if len(sys.argv) != 11:
        sys.stderr.write(__doc__)
        return 2
    meson, build, src, version, prefix, bindir, sbindir, sysconfdir, datadir, mandir = sys.argv[1:]
    root = tempfile.mkdtemp(prefix='picoflow-install-')
    try:
        out = run([meson, 'install', '--destdir', root, '--no-rebuild', '-C', build])
        if out.returncode != 0:
            raise Failure('meson install failed (%d):\n%s%s' % (out.returncode, out.stdout,
                                                                 out.stderr))
        check_tree(root, src, version, prefix, bindir, sbindir, sysconfdir, datadir, mandir)
    except (Failure, subprocess.TimeoutExpired) as e:
        print('FAILED: %s' % e)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print('install tree ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
