#!/usr/bin/env python3
"""The ssh tests' own login account, so that no test logs in as an account of
the machine and runs its startup files.

sshd runs every remote command through the login user's shell, and Debian's
bash reads ~/.bashrc for commands from sshd: logged in as root, the tests ran
whatever root's .bashrc does (a `pyenv init` whose stale lock file made every
login wait 60 s). The account made here has /bin/sh, which reads no startup
file for a command, and an empty home of the test's own
(docs/workflow-format.md, "The remote account's startup files").

    ssh_test_user.py create HOME OWNER_PID   prints the account's name
    ssh_test_user.py remove NAME

`create` makes the system account pftest-OWNER_PID: shell /bin/sh, group
nogroup, home HOME (made, empty, owned by the account), password `*` (no
password opens it; unlike useradd's default `!`, sshd does not count it as
locked, which would refuse its keys too). Accounts that an earlier test left
behind (their OWNER_PID no longer runs) are removed first. It needs root:
without it, `create` prints why and exits 77, meson's code for a skipped
test. `remove` removes the account (not its home, the test's to remove).

Python tests import create() and remove().
"""
import os
import pwd
import subprocess
import sys
import time

PREFIX = "pftest-"
COMMENT = "picoflow ssh test, owner pid "
SKIP = 77


def _run_locked(argv):
    """Runs a shadow tool; retried while another one holds /etc/passwd's lock
    (tests of other builds make and remove accounts at the same time). The
    deadline only ends a hang."""
    deadline = time.monotonic() + 60
    delay = 0.05
    while True:
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode == 0 or time.monotonic() > deadline or "lock" not in r.stderr:
            return r
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove(name):
    """Removes the account `name`, even if a process of it is still running."""
    r = _run_locked(["/usr/sbin/userdel", "--force", name])
    if r.returncode not in (0, 6):  # 6: no such user (removed meanwhile)
        raise RuntimeError(f"userdel {name}: {r.stderr.strip()}")


def _remove_stale():
    for entry in pwd.getpwall():
        if not (entry.pw_name.startswith(PREFIX) and entry.pw_gecos.startswith(COMMENT)):
            continue
        owner = entry.pw_gecos[len(COMMENT):]
        if owner.isdigit() and not _alive(int(owner)):
            remove(entry.pw_name)


def create(home, owner_pid):
    """Makes the account for a test whose process is `owner_pid`, with `home`
    (made here) as its home; returns its name. Raises PermissionError without
    root."""
    if os.geteuid() != 0:
        raise PermissionError("the ssh tests need root to make a login account of their own "
                              "(they never log in as one of the machine's accounts)")
    _remove_stale()
    name = f"{PREFIX}{owner_pid}"
    try:
        pwd.getpwnam(name)
        remove(name)  # left by a process whose pid this one reuses
    except KeyError:
        pass
    r = _run_locked(["/usr/sbin/useradd", "--system", "--no-create-home", "--no-user-group",
                     "--gid", "nogroup", "--shell", "/bin/sh", "--home-dir", home,
                     "--password", "*", "--comment", f"{COMMENT}{owner_pid}", name])
    if r.returncode != 0:
        raise RuntimeError(f"useradd {name}: {r.stderr.strip()}")
    os.makedirs(home, mode=0o700, exist_ok=True)
    entry = pwd.getpwnam(name)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return name


def main(argv):
    if len(argv) == 4 and argv[1] == "create":
        try:
            print(create(argv[2], int(argv[3])))
        except PermissionError as e:
            print(f"skipped: {e}", file=sys.stderr)
            return SKIP
        return 0
    if len(argv) == 3 and argv[1] == "remove":
        remove(argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
