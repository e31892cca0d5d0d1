"""A tiny Python HTTP app for the engine smoke tests: built FROM the base image, answers / and /health with JSON."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
from typing import Any

SERVER = r'''
import json, os, signal, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
VERSION = os.environ.get("APP_VERSION", "v1")
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": VERSION, "host": socket.gethostname(), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print("app", VERSION, "listening on 8080", flush=True)
ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
'''


def build_context(base_image: str, version: str = "v1") -> io.BytesIO:
    """A build context (tar) with a Dockerfile FROM base_image and the app."""
    dockerfile = (f"FROM {base_image}\nENV APP_VERSION={version} PYTHONUNBUFFERED=1\n"
                  "COPY server.py /app/server.py\nEXPOSE 8080\nCMD [\"python3\", \"/app/server.py\"]\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("server.py", SERVER)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build(client: Any, base_image: str, tag: str, labels: dict[str, str], version: str = "v1") -> Any:
    """Build the app image through the SDK; the Image."""
    image, _log = client.images.build(fileobj=build_context(base_image, version), custom_context=True, tag=tag,
                                      labels=labels, rm=True, forcerm=True)
    return image


def get_json(url: str, timeout: float = 3) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return dict(json.loads(r.read()))


def push(client: Any, ref: str, auth_config: dict[str, str]) -> list[dict[str, Any]]:
    """Push through the SDK; the decoded progress stream. Errors arrive INSIDE the 200 stream (docker-py#3161)."""
    repo, _, tag = ref.rpartition(":")
    return list(client.images.push(repo, tag=tag, auth_config=auth_config, stream=True, decode=True))


def stream_errors(stream: list[dict[str, Any]]) -> list[str]:
    return [str(item.get("error") or item.get("errorDetail")) for item in stream if "error" in item or "errorDetail" in item]
