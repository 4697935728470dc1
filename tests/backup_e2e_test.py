#!/usr/bin/env python3
"""The backup workflow of docs/workflow-format.md, end to end through a real picoflowd.

Starts, all on loopback and in one temp dir: Debian's sshd with generated host
and user keys, the test HTTP server (tests/http_test_server.py), and picoflowd.
Submits that backup workflow with its hosts pointed at them (health
check over http, pg_dump stand-in over ssh, verification with the ssh CLI),
runs it with `picoflowctl run --wait`, and checks every task succeeded and
the "backup" file exists. Then outputs across ssh: an ssh task writes
KEY=VALUE and KEY<<EOF outputs to its PICOFLOW_OUTPUT on the remote side, a
shell task after it sees them as PICOFLOW_OUT_<TASK>_<KEY>, and the remote
file is gone. Everything started is killed by pid at the end.
Both ssh logins are as an account of the test's own (ssh_test_user.py, made
and removed here; root only, the test is skipped otherwise), never one of the
machine's.

Usage: backup_e2e_test.py PICOFLOWD PICOFLOWCTL HTTP_SERVER_PY
(picoflowd, run from its build tree, loads that tree's executor modules.)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import json

import ssh_test_user
from exec_wrapper import command

PICOFLOWD, PICOFLOWCTL, HTTP_SERVER = sys.argv[1:4]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, what, limit=60.0):  # the limit only ends a hang
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit(f"FAIL: timed out waiting for {what}")


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def ssh_outputs(ctl, d, ssh_port, user):
    """An ssh task's outputs reach the shell task after it (docs/workflow-format.md, Outputs)."""
    workflow = f"""name: ssh-outputs
tasks:
  - name: remote-facts
    type: ssh
    config:
      host: 127.0.0.1
      port: {ssh_port}
      user: {user}
      key_path: {d}/user_key
      known_hosts: {d}/known_hosts
      command: |
        echo "$PICOFLOW_OUTPUT"
        echo "user=$(id -un)" >> "$PICOFLOW_OUTPUT"
        {{ echo 'motd<<EOF'; echo 'line one'; echo 'line = two'; echo EOF; }} >> "$PICOFLOW_OUTPUT"
        echo "stdout=is not an output"
  - name: report
    type: shell
    depends_on: [remote-facts]
    config:
      command: 'echo "user: $PICOFLOW_OUT_REMOTE_FACTS_USER"; echo "$PICOFLOW_OUT_REMOTE_FACTS_MOTD"'
"""
    with open(f"{d}/ssh-outputs.yaml", "w") as f:
        f.write(workflow)
    sub = subprocess.run(ctl + ["submit", f"{d}/ssh-outputs.yaml"], capture_output=True, text=True)
    if sub.returncode != 0:
        raise SystemExit(f"FAIL: submit ssh-outputs: {sub.stdout}{sub.stderr}")
    run = subprocess.run(ctl + ["--json", "run", "ssh-outputs", "--wait"],
                         capture_output=True, text=True, timeout=120)
    result = json.loads(run.stdout)
    tasks = {t["name"]: t for t in result["tasks"]}
    if run.returncode != 0 or result["status"] != "succeeded":
        raise SystemExit(f"FAIL: ssh-outputs ended {result['status']}: {run.stdout}; "
                         f"picoflowd log:\n{open(f'{d}/picoflowd.log').read()}")
    want = {"user": user, "motd": "line one\nline = two"}
    if tasks["remote-facts"]["outputs"] != want:
        raise SystemExit(f"FAIL: remote-facts outputs {tasks['remote-facts']['outputs']!r}, "
                         f"want {want!r}")
    logs = subprocess.run(ctl + ["logs", "ssh-outputs", "--task", "report"],
                          capture_output=True, text=True)
    if f"user: {user}\nline one\nline = two\n" not in logs.stdout:
        raise SystemExit(f"FAIL: report output: {logs.stdout!r}")
    remote = subprocess.run(ctl + ["logs", "ssh-outputs", "--task", "remote-facts"],
                            capture_output=True, text=True)
    files = [line for line in remote.stdout.splitlines() if "/picoflow-output." in line]
    if len(files) != 1 or os.path.lexists(os.path.dirname(files[0].split()[-1])):
        raise SystemExit(f"FAIL: the remote outputs file: {remote.stdout!r}")
    print("ssh outputs reached the shell task after it; the remote file is gone")


def main():
    d = tempfile.mkdtemp(prefix="pfbk-", dir="/tmp")
    os.chmod(d, 0o711)  # the test account reaches its home; sshd reads authorized_keys as it
    procs = []
    user = None
    try:
        try:
            user = ssh_test_user.create(f"{d}/home", os.getpid())
        except PermissionError as e:
            print(f"skipped: {e}")
            return ssh_test_user.SKIP
        home = f"{d}/home"
        # --- keys, sshd ---
        kg = ["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"]
        subprocess.run(kg + [f"{d}/host_key"], check=True)
        subprocess.run(kg + [f"{d}/user_key"], check=True)
        os.chmod(f"{d}/user_key", 0o600)
        with open(f"{d}/user_key.pub") as f, open(f"{d}/authorized_keys", "w") as out:
            out.write(f.read())
        ssh_port = free_port()
        host_pub = open(f"{d}/host_key.pub").read().split()
        with open(f"{d}/known_hosts", "w") as f:
            f.write(f"[127.0.0.1]:{ssh_port} {host_pub[0]} {host_pub[1]}\n")
        with open(f"{d}/sshd_config", "w") as f:
            f.write(f"Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n"
                    f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n"
                    f"PidFile {d}/sshd.pid\nPermitRootLogin no\nAllowUsers {user}\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        procs.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_config"],
                                      stderr=open(f"{d}/sshd.log", "w")))
        wait_until(lambda: port_open(ssh_port), "sshd")

        # --- HTTP server (its TLS listener needs a cert) ---
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.crt"],
                       check=True, capture_output=True)
        http = subprocess.Popen(["/usr/bin/python3", HTTP_SERVER, f"{d}/tls.crt", f"{d}/tls.key"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(http)
        http_port = int(http.stdout.readline().split()[0])

        # --- picoflowd ---
        env = dict(os.environ, HOME=d)
        env.pop("PICOFLOW_MODULE_DIR", None)
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "SSH_AUTH_SOCK"):
            env.pop(var, None)
        sock = f"{d}/s.sock"
        procs.append(subprocess.Popen(command(PICOFLOWD) + ["--socket", sock, "--state-dir",
                                                            f"{d}/state"],
                                      env=env, stderr=open(f"{d}/picoflowd.log", "w")))
        ctl = command(PICOFLOWCTL) + ["--socket", sock]
        wait_until(lambda: subprocess.run(ctl + ["daemon", "version"], capture_output=True).returncode == 0,
                   "picoflowd")

        # docs/workflow-format.md's backup workflow, hosts pointed at the test servers.
        ssh_cli = (f"ssh -p {ssh_port} -i {d}/user_key -o UserKnownHostsFile={d}/known_hosts "
                   f"-o StrictHostKeyChecking=yes -o BatchMode=yes")
        workflow = f"""name: backup-workflow
description: "Daily database backup"
schedule: "0 2 * * *"
config:
  max_parallel: 2
  retry_default: 3
  timeout_default: 300
  retry_delay: 1s
tasks:
  - name: health_check
    type: http
    config: {{ url: "http://127.0.0.1:{http_port}/echo", method: GET }}
    retry: 2
  - name: backup_database
    type: ssh
    depends_on: [health_check]
    config:
      host: 127.0.0.1
      port: {ssh_port}
      user: {user}
      key_path: {d}/user_key
      known_hosts: {d}/known_hosts
      command: "echo 'CREATE TABLE t;' | gzip > {home}/db.sql.gz"
    retry: 3
    timeout: 600
  - name: verify_backup
    type: shell
    depends_on: [backup_database]
    config: {{ command: "{ssh_cli} {user}@127.0.0.1 'test -f {home}/db.sql.gz' && echo verified" }}
"""
        with open(f"{d}/backup.yaml", "w") as f:
            f.write(workflow)
        sub = subprocess.run(ctl + ["submit", f"{d}/backup.yaml"], capture_output=True, text=True)
        if sub.returncode != 0:
            raise SystemExit(f"FAIL: submit: {sub.stdout}{sub.stderr}")
        run = subprocess.run(ctl + ["--json", "run", "backup-workflow", "--wait"],
                             capture_output=True, text=True, timeout=120)
        print(run.stdout)
        result = json.loads(run.stdout)
        statuses = {t["name"]: t["status"] for t in result["tasks"]}
        expected = {"health_check": "succeeded", "backup_database": "succeeded",
                    "verify_backup": "succeeded"}
        if run.returncode != 0 or result["status"] != "succeeded" or statuses != expected:
            raise SystemExit(f"FAIL: run ended {result['status']} with {statuses}; "
                             f"picoflowd log:\n{open(f'{d}/picoflowd.log').read()}")
        if not os.path.exists(f"{home}/db.sql.gz"):
            raise SystemExit("FAIL: the ssh task did not write the backup file")
        logs = subprocess.run(ctl + ["logs", "backup-workflow", "--task", "verify_backup"],
                              capture_output=True, text=True)
        if "verified" not in logs.stdout:
            raise SystemExit(f"FAIL: verify_backup output: {logs.stdout!r}")
        print("backup workflow ran end to end: http -> ssh -> shell(ssh CLI)")
        ssh_outputs(ctl, d, ssh_port, user)
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait()
        if user is not None:
            ssh_test_user.remove(user)
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
