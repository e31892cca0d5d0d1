"""A tiny HTTP server for the deploy tests' images (stdlib only; the base image has nothing else).

Stands in for the model server where a test needs a rollout behaviour a real model cannot be made to have on
purpose: TINY_MODE=ok serves, crash exits at start, unready answers 503 on /v2/health/ready forever, slow only for
the first TINY_READY_AFTER seconds.
It speaks the model server's probe and invocation routes and answers with its TINY_VERSION.
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("TINY_VERSION", "0")
MODE = os.environ.get("TINY_MODE", "ok")
PORT = int(os.environ.get("TINY_PORT", "8080"))
READY_AFTER = float(os.environ.get("TINY_READY_AFTER", "0"))  # mode slow: not ready for this many seconds
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path in ("/v2/health/ready", "/health", "/ping", "/v2/health/live"):
            slow = MODE == "slow" and time.monotonic() - STARTED < READY_AFTER
            if (MODE == "unready" or slow) and self.path == "/v2/health/ready":
                self._send(503, {"ready": False})
            else:
                self._send(200, {"ready": True})
        elif self.path == "/version":
            self._send(200, {"version": VERSION, "host": os.uname().nodename})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._send(200, {"predictions": [VERSION], "version": VERSION, "arm": self.headers.get("x-mlops-arm", "")})

    def log_message(self, fmt, *args):
        print(f"request {self.command} {self.path}", flush=True)


def main():
    print(f"tiny server version {VERSION} mode {MODE} on port {PORT}", flush=True)
    if MODE == "crash":
        print("crashing on purpose", flush=True)
        sys.exit(3)
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
