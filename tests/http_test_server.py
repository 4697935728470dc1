#!/usr/bin/python3
"""Loopback HTTP and HTTPS server for tests/executor_http_test.cc.

Usage: http_test_server.py CERT KEY. Listens on 127.0.0.1 (ephemeral ports),
prints "HTTP_PORT HTTPS_PORT" once ready, and exits when its stdin closes (the
test ended or died) or after an hour, whichever comes first (the hour only
ends a hang; it is longer than any test's meson timeout, even under emulation).

Endpoints (any method): /echo (method, headers, body as JSON), /status/N,
/slow (answers after 60 s: far past any timeout or cancel the tests make it
meet, so an attempt that ends early was aborted, on any machine), /big (50 MiB in 64 KiB writes), /redirect (302 to
/echo), /conn (the client's source port: equal ports mean a reused connection).
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time

BIG_CHUNK = b"x" * 65536
BIG_CHUNKS = 800  # 50 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible

    def log_message(self, *args):
        pass

    def reply(self, code, body, content_type="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path
        if path == "/echo":
            headers = {k.lower(): v for k, v in self.headers.items()}
            payload = {"method": self.command, "headers": headers, "body": body.decode()}
            self.reply(200, json.dumps(payload).encode(), "application/json")
        elif path.startswith("/status/"):
            code = int(path[len("/status/"):])
            self.reply(code, b"status %d\n" % code)
        elif path == "/slow":
            time.sleep(60)
            self.reply(200, b"slow\n")
        elif path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BIG_CHUNK) * BIG_CHUNKS))
            self.end_headers()
            for _ in range(BIG_CHUNKS):
                self.wfile.write(BIG_CHUNK)
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/echo")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/conn":
            self.reply(200, str(self.client_address[1]).encode())
        else:
            self.reply(404, b"no such endpoint\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up (cancel, timeout, refused TLS) are expected


def main():
    cert, key = sys.argv[1], sys.argv[2]
    plain = Server(("127.0.0.1", 0), Handler)
    tls = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    for server in (plain, tls):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(plain.server_address[1], tls.server_address[1], flush=True)
    threading.Timer(3600, lambda: os._exit(0)).start()
    sys.stdin.read()  # EOF: the test is done
    os._exit(0)


if __name__ == "__main__":
    main()
