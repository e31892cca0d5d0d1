"""A stdlib HTTP server for the monitoring tests' images (the engine's base image has nothing but Python).

Stands in for the model server in a container where a test needs a version that answers 500 on purpose
(MODE=fail) while its probes say ready, which a real model cannot be made to do. It speaks the model server's
probe, /version, /invocations and /metrics routes, with the model server's metric names and labels
(mlops_requests_total, mlops_request_duration_seconds, mlops_requests_in_flight).
"""

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "0")
MODE = os.environ.get("MODE", "ok")
PORT = int(os.environ.get("TINY_PORT", os.environ.get("PORT", "8080")))
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LOCK = threading.Lock()
COUNTS = {}
HIST = [0] * (len(BUCKETS) + 1)
TOTAL = [0.0, 0]


def metrics():
    lines = ["# TYPE mlops_requests_total counter"]
    with LOCK:
        for code, n in sorted(COUNTS.items()):
            lines.append(f'mlops_requests_total{{model="churn",version="{VERSION}",route="/invocations",'
                         f'code="{code}"}} {n}')
        lines.append("# TYPE mlops_request_duration_seconds histogram")
        acc = 0
        for le, n in zip((*[repr(b) for b in BUCKETS], "+Inf"), HIST, strict=True):
            acc += n
            lines.append(f'mlops_request_duration_seconds_bucket{{model="churn",version="{VERSION}",'
                         f'route="/invocations",le="{le}"}} {acc}')
        lines.append(f'mlops_request_duration_seconds_sum{{model="churn",version="{VERSION}",'
                     f'route="/invocations"}} {TOTAL[0]}')
        lines.append(f'mlops_request_duration_seconds_count{{model="churn",version="{VERSION}",'
                     f'route="/invocations"}} {TOTAL[1]}')
    lines.append(f'mlops_requests_in_flight{{model="churn",version="{VERSION}"}} 0')
    return ("\n".join(lines) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path in ("/v2/health/ready", "/health", "/ping", "/v2/health/live"):
            self._send(200, b'{"ready": true}')
        elif self.path == "/version":
            self._send(200, json.dumps({"model": "churn", "version": VERSION}).encode())
        elif self.path == "/metrics":
            self._send(200, metrics(), "text/plain; version=0.0.4")
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self):
        start = time.perf_counter()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        code = 500 if MODE == "fail" else 200
        body = json.dumps({"predictions": [VERSION], "version": VERSION} if code == 200 else
                          {"error_code": "INTERNAL_ERROR", "message": "planted failure"}).encode()
        self._send(code, body)
        took = time.perf_counter() - start
        with LOCK:
            COUNTS[code] = COUNTS.get(code, 0) + 1
            i = next((k for k, b in enumerate(BUCKETS) if took <= b), len(BUCKETS))
            HIST[i] += 1
            TOTAL[0] += took
            TOTAL[1] += 1

    def log_message(self, fmt, *args):
        pass


def main():
    print(f"metrics server version {VERSION} mode {MODE} on port {PORT}", flush=True)
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
