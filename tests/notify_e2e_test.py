#!/usr/bin/env python3
"""Notifications end to end through a real picoflowd (docs/notifications.md).

Starts, all on loopback and in one temp dir: an HTTP recorder (webhooks and
pings, in the order they arrive), an SMTP sink (Debian's python3-aiosmtpd),
and picoflowd with a picoflowd.yaml whose default `notify:` is a webhook.
Then:
- a failing "nightly" workflow with its own targets (a json webhook, a ping,
  an e-mail, and a webhook on a closed port): the run ends and `run --wait`
  returns while the dead target has had at most its first try; the ping gets
  /start before /fail, whose body holds the failing task's last lines; the
  webhook's JSON and the mail hold the reason and the last 20 lines; the dead
  target is tried 4 times in all, every attempt recorded
  (`picoflowctl notifications RUN`) and counted (picoflow_notifications_total);
- the same workflow succeeding next: the webhook hears `recovered`, the ping
  the success URL;
- a workflow without notify: inherits the daemon's webhook; one with
  `notify: []` tells no one, and the daemon has not loaded the http module
  for it; a run its `when:` skips sends no ping, not even /start;
- a run of a file (`picoflowctl run FILE`) tells that file's targets, or
  no one with `notify: []`, whatever the daemon's default;
- `picoflowctl notify-test` reports each target's outcome;
- a stop waits for a notification still going (recorded sent), and
  `picoflowd --once` sends its run's /start and /fail before it exits;
- neither secret (a task's password it prints, a ping's check id) is in the
  state dir's files or the daemon's log.
Everything started is stopped at the end; every wait is bounded.

Usage: notify_e2e_test.py PICOFLOWD PICOFLOWCTL
"""
import http.server
import json
import os
import sqlite3
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from aiosmtpd.controller import Controller

from exec_wrapper import EMULATED, command

PICOFLOWD, PICOFLOWCTL = sys.argv[1:3]


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


class Recorder(http.server.ThreadingHTTPServer):
    """Keeps every request: (method, path, content type, body, headers), in arrival order."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.slow_seen = threading.Event()
        self.slow_release = threading.Event()
        super().__init__(("127.0.0.1", 0), RecorderHandler)

    def paths(self):
        with self.lock:
            return [c[1] for c in self.calls]

    def find(self, path):
        with self.lock:
            return [c for c in self.calls if c[1] == path]


class RecorderHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/slow":  # answers after the daemon was told to stop
            self.server.slow_seen.set()
            self.server.slow_release.wait(60)
        with self.server.lock:
            self.server.calls.append((self.command, self.path,
                                      self.headers.get("Content-Type", ""),
                                      body.decode(), dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, *args):
        pass


class Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content.decode("utf-8", "replace")))
        return "250 OK"


def fail(message, d):
    log = open(f"{d}/picoflowd.log").read() if os.path.exists(f"{d}/picoflowd.log") else ""
    raise SystemExit(f"FAIL: {message}\npicoflowd log:\n{log}")


def main():
    d = tempfile.mkdtemp(prefix="picoflow-notify-")
    daemon = None
    recorder = Recorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    sink = Sink()
    smtp_port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        web = f"http://127.0.0.1:{recorder.server_address[1]}"
        down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        with open(f"{d}/picoflowd.yaml", "w") as f:
            f.write(f"notify:\n  - name: default-hook\n    webhook: {{url: \"{web}/default\"}}\n")
        env = dict(os.environ, HOME=d)
        env.pop("PICOFLOW_MODULE_DIR", None)
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(var, None)
        sock = f"{d}/s.sock"
        metrics_port = free_port()
        daemon = subprocess.Popen(command(PICOFLOWD) + ["--socket", sock, "--state-dir",
                                                        f"{d}/state", "--config",
                                                        f"{d}/picoflowd.yaml", "--metrics-listen",
                                                        f"127.0.0.1:{metrics_port}"],
                                  env=env, stderr=open(f"{d}/picoflowd.log", "w"))
        ctl = command(PICOFLOWCTL) + ["--socket", sock]
        wait_until(lambda: subprocess.run(ctl + ["daemon", "version"],
                                          capture_output=True).returncode == 0, "picoflowd")

        # Secrets: the task's password, which it prints, and the ping's
        # check id; neither is to be found on disk or in what is sent.
        password, check = "pw-7f3a91c2e5", "uuid-5b8e0d4c"
        for name, value in (("db", password), ("hc", check)):
            with open(f"{d}/{name}.secret", "w") as f:
                f.write(value + "\n")
            os.chmod(f"{d}/{name}.secret", 0o600)
        with open(f"{d}/nightly.yaml", "w") as f:
            f.write(f"""name: nightly
secrets:
  DB_PASS: {{file: {d}/db.secret}}
  HC: {{file: {d}/hc.secret}}
tasks:
  - name: dump
    type: shell
    config:
      command: 'test -f {d}/ok && echo fine || {{ seq 1 30; echo "login $DB_PASS"; echo "disk full"; exit 3; }}'
config: {{retry_default: 0}}
notify:
  - name: hook
    webhook: {{url: "{web}/hook", headers: {{X-Check: "${{secret:HC}}"}}}}
  - name: hc
    ping: "{web}/ping/${{secret:HC}}"
  - name: mail
    email: {{smtp: "smtp://127.0.0.1:{smtp_port}", from: "picoflow <pf@example.org>",
             to: [ops@example.org]}}
  - name: dead
    webhook: {{url: "{down}"}}
""")
        with open(f"{d}/plain.yaml", "w") as f:
            f.write("name: plain\nconfig: {retry_default: 0}\ntasks:\n  - {name: t, type: shell, config: {command: 'exit 1'}}\n")
        with open(f"{d}/quiet.yaml", "w") as f:
            f.write("name: quiet\nnotify: []\nconfig: {retry_default: 0}\n"
                    "tasks:\n  - {name: t, type: shell, config: {command: 'exit 1'}}\n")
        with open(f"{d}/slowpoke.yaml", "w") as f:
            f.write(f"name: slowpoke\nnotify:\n  - webhook: {{url: \"{web}/slow\"}}\n"
                    "config: {retry_default: 0}\n"
                    "tasks:\n  - {name: t, type: shell, config: {command: 'exit 1'}}\n")
        # Run from their files, not submitted: each run keeps its own targets.
        with open(f"{d}/adhoc.yaml", "w") as f:
            f.write(f"name: adhoc\nnotify:\n  - webhook: {{url: \"{web}/adhoc\"}}\n"
                    "config: {retry_default: 0}\n"
                    "tasks:\n  - {name: t, type: shell, config: {command: 'exit 1'}}\n")
        with open(f"{d}/adhoc-quiet.yaml", "w") as f:
            f.write("name: plain\nnotify: []\nconfig: {retry_default: 0}\n"
                    "tasks:\n  - {name: t, type: shell, config: {command: 'exit 1'}}\n")
        with open(f"{d}/skipme.yaml", "w") as f:
            f.write(f"name: skipme\nwhen: 'false'\nnotify:\n  - ping: {web}/ping/skipme\n"
                    "tasks:\n  - {name: t, type: shell, config: {command: 'true'}}\n")
        for name in ("nightly", "plain", "quiet", "skipme", "slowpoke"):
            sub = subprocess.run(ctl + ["submit", f"{d}/{name}.yaml"], capture_output=True,
                                 text=True)
            if sub.returncode != 0:
                fail(f"submit {name}: {sub.stdout}{sub.stderr}", d)

        # --- notify: [] tells no one, and loads nothing for it ---
        subprocess.run(ctl + ["run", "quiet", "--wait"], capture_output=True, timeout=120)
        if not EMULATED:
            with open(f"/proc/{daemon.pid}/maps") as f:
                if "picoflow-http.so" in f.read():
                    fail("a run without notify targets loaded the http module", d)

        # --- a failed run: every target told, the dead one retried after the run ended ---
        run = subprocess.run(ctl + ["--json", "run", "nightly", "--wait"], capture_output=True,
                             text=True, timeout=120)
        if run.returncode != 1:
            fail(f"run nightly: exit {run.returncode}: {run.stdout}{run.stderr}", d)
        run_id = json.loads(run.stdout)["id"]

        def notifications(rid):
            out = subprocess.run(ctl + ["--json", "notifications", str(rid)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                fail(f"notifications: {out.stdout}{out.stderr}", d)
            return json.loads(out.stdout)["notifications"]

        dead_then = [n for n in notifications(run_id) if n["target"] == "dead"]
        if len(dead_then) > 1:
            fail(f"the run waited for the dead target's retries: {dead_then}", d)

        wait_until(lambda: f"/ping/{check}/fail" in recorder.paths() and recorder.find("/hook"),
                   "the ping and the webhook")
        paths = recorder.paths()
        if paths.index(f"/ping/{check}/start") > paths.index(f"/ping/{check}/fail"):
            fail(f"the ping's /fail came before its /start: {paths}", d)
        # the last 20, the password masked
        last_lines = "".join(f"{i}\n" for i in range(13, 31)) + "login ***\ndisk full\n"
        ping_body = recorder.find(f"/ping/{check}/fail")[0][3]
        if ("exited with code 3" not in ping_body or "30\n" not in ping_body or
                "login ***" not in ping_body):
            fail(f"the /fail ping's body: {ping_body!r}", d)
        hook = json.loads(recorder.find("/hook")[0][3])
        task = hook["failed_tasks"][0]
        if (hook["run_id"] != run_id or hook["event"] != "failure" or
                hook["workflow"] != "nightly" or task["task"] != "dump" or
                task["reason"] != "exited with code 3" or
                task["last_output"] != last_lines):
            fail(f"the webhook's body: {hook}", d)
        if recorder.find("/hook")[0][4].get("X-Check") != check:
            fail(f"the webhook's header from a secret: {recorder.find('/hook')[0][4]}", d)

        wait_until(lambda: sink.messages, "the mail")
        mail_from, rcpt, mail = sink.messages[0]
        if (mail_from != "pf@example.org" or rcpt != ["ops@example.org"] or
                f"Subject: picoflow: nightly run {run_id} failed" not in mail or
                "exited with code 3" not in mail or "login ***" not in mail or
                password in mail):
            fail(f"the mail: {mail_from} {rcpt}\n{mail}", d)

        # The dead target: 4 attempts in all, each recorded; one log line.
        wait_until(lambda: len([n for n in notifications(run_id) if n["target"] == "dead"]) == 4,
                   "the dead target's retries", limit=90)
        records = notifications(run_id)
        dead = [n for n in records if n["target"] == "dead"]
        if sorted(n["attempt"] for n in dead) != [1, 2, 3, 4] or any(
                n["outcome"] != "failed" or "refused" not in n["error"] for n in dead):
            fail(f"the dead target's records: {dead}", d)
        sent = sorted((n["target"], n["event"]) for n in records if n["outcome"] == "sent")
        if sent != [("hc", "failure"), ("hc", "start"), ("hook", "failure"),
                    ("mail", "failure")]:
            fail(f"the sent records: {sent}", d)
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        metrics = no_proxy.open(f"http://127.0.0.1:{metrics_port}/metrics",
                                timeout=30).read().decode()
        for line in ('picoflow_notifications_total{workflow="nightly",target="dead",'
                     'outcome="failed"} 4',
                     'picoflow_notifications_total{workflow="nightly",target="hc",'
                     'outcome="sent"} 2'):
            if line not in metrics:
                fail(f"no {line} in the metrics:\n{metrics}", d)
        log = open(f"{d}/picoflowd.log").read()
        if log.count("to dead failed") != 1:
            fail("the dead target was not logged exactly once", d)

        # --- the next run succeeds: recovered ---
        open(f"{d}/ok", "w").close()
        run = subprocess.run(ctl + ["--json", "run", "nightly", "--wait"], capture_output=True,
                             text=True, timeout=120)
        if run.returncode != 0:
            fail(f"run nightly again: {run.stdout}{run.stderr}", d)
        wait_until(lambda: len(recorder.find("/hook")) == 2 and f"/ping/{check}" in recorder.paths(),
                   "the recovery")
        recovered = json.loads(recorder.find("/hook")[1][3])
        if recovered["event"] != "recovered" or recovered["status"] != "succeeded":
            fail(f"the recovery's webhook: {recovered}", d)

        # --- a run its when: skips pings nothing, not even /start ---
        skipped = subprocess.run(ctl + ["--json", "run", "skipme", "--wait"],
                                 capture_output=True, text=True, timeout=120)
        if json.loads(skipped.stdout)["status"] != "skipped":
            fail(f"run skipme: {skipped.stdout}{skipped.stderr}", d)

        # --- a run of a file has the file's targets: its own, or none with
        # notify: [] (that file is named as the submitted "plain", whose runs
        # get the daemon's default) ---
        for name in ("adhoc", "adhoc-quiet"):
            subprocess.run(ctl + ["run", f"{d}/{name}.yaml", "--wait"], capture_output=True,
                           timeout=120)
        wait_until(lambda: recorder.find("/adhoc"), "the webhook of a run of a file")

        # --- the daemon's default (quiet's run, earlier, told no one) ---
        subprocess.run(ctl + ["run", "plain", "--wait"], capture_output=True, timeout=120)
        wait_until(lambda: recorder.find("/default"), "the daemon's default webhook")
        default = json.loads(recorder.find("/default")[0][3])
        if any(p.startswith("/ping/skipme") for p in recorder.paths()):
            fail(f"a run skipped by its when: pinged: {recorder.paths()}", d)
        if default["workflow"] != "plain" or len(recorder.find("/default")) != 1:  # not adhoc-quiet
            fail(f"the default webhook: {recorder.find('/default')}", d)
        adhoc = json.loads(recorder.find("/adhoc")[0][3])
        if adhoc["workflow"] != "adhoc" or len(recorder.find("/adhoc")) != 1:
            fail(f"the webhook of a run of a file: {recorder.find('/adhoc')}", d)

        # --- notify-test: each target's outcome ---
        test = subprocess.run(ctl + ["--json", "notify-test", "nightly"], capture_output=True,
                              text=True, timeout=120)
        outcomes = {t["target"]: t["sent"] for t in json.loads(test.stdout)["targets"]}
        if test.returncode != 1 or outcomes != {"hook": True, "hc": True, "mail": True,
                                                "dead": False}:
            fail(f"notify-test: exit {test.returncode}: {test.stdout}{test.stderr}", d)
        wait_until(lambda: len(sink.messages) == 3, "the test mail")  # after failure, recovered

        # --- a stop sends what is still going first (within shutdown_grace) ---
        subprocess.run(ctl + ["run", "slowpoke", "--wait"], capture_output=True, timeout=120)
        if not recorder.slow_seen.wait(60):
            fail("the slow webhook was not called", d)
        daemon.terminate()
        wait_until(lambda: "still going (for at most shutdown_grace)" in open(f"{d}/picoflowd.log").read(),
                   "the daemon to wait for the slow webhook")
        recorder.slow_release.set()
        daemon.wait(timeout=60)
        daemon = None
        db = sqlite3.connect(f"{d}/state/picoflow.db")
        slow = db.execute("SELECT outcome FROM notifications WHERE workflow = 'slowpoke'").fetchall()
        db.close()
        if slow != [("sent",)]:
            fail(f"the notification going at the stop was not sent and recorded: {slow}", d)

        # --- picoflowd --once sends its run's notifications before it exits ---
        with open(f"{d}/once.yaml", "w") as f:
            f.write(f"name: once\nnotify:\n  - ping: {web}/ping/once\n"
                    "config: {retry_default: 0}\n"
                    "tasks:\n  - {name: t, type: shell, config: {command: 'exit 1'}}\n")
        once = subprocess.run(command(PICOFLOWD) + ["--once", f"{d}/once.yaml", "--state-dir",
                                                    f"{d}/once-state"],
                              env=env, capture_output=True, text=True, timeout=120)
        once_paths = [p for p in recorder.paths() if p.startswith("/ping/once")]
        if once.returncode != 1 or once_paths != ["/ping/once/start", "/ping/once/fail"]:
            fail(f"--once: exit {once.returncode}, pings {once_paths}\n{once.stdout}{once.stderr}",
                 d)

        # --- the secrets are nowhere on disk: store (database, WAL), log ---
        for root, _, files in os.walk(f"{d}/state"):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                for value in (password, check):
                    if value.encode() in data:
                        fail(f"a secret is in {os.path.join(root, name)}", d)
        log = open(f"{d}/picoflowd.log").read()
        if password in log or check in log:
            fail("a secret is in the daemon's log", d)
        print("notifications: webhook, ping, mail, retries, recovered, default, test, "
              "secrets: ok")
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        smtp.stop()
        recorder.slow_release.set()
        recorder.shutdown()
        shutil.rmtree(d, ignore_errors=True)


main()
