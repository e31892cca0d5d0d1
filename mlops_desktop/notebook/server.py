"""Start JupyterLab for a workspace: bound to 127.0.0.1, a fresh token, the workspace selected for mlops_desktop.notebook."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mlops_desktop.errors import MlopsError, UsageError

READY_TIMEOUT_S = 120.0


@dataclass
class LabServer:
    process: subprocess.Popen
    port: int
    token: str
    root_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: Path | None = None) -> str:
        """The address to open (with the token), at a notebook when given (a path under root_dir)."""
        path = "/lab"
        if notebook is not None:
            rel = Path(notebook).resolve().relative_to(self.root_dir.resolve()).as_posix()
            path = f"/lab/tree/{quote(rel)}"
        return f"{self.base_url}{path}?token={self.token}"

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def jupyterlab_available() -> bool:
    return importlib.util.find_spec("jupyterlab") is not None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_jupyterlab(home: Path, *, notebook_dir: str | Path | None = None, port: int = 0,
                     python: str | None = None, log: Path | None = None) -> LabServer:
    """Start JupyterLab and wait until it answers; the token is passed in the environment, never on argv."""
    if python is None and not jupyterlab_available():
        raise UsageError("JupyterLab is not installed in this Python environment",
                         hint='pip install "mlops-desktop[notebook]" (or: pip install jupyterlab)')
    root = Path(notebook_dir) if notebook_dir else home / "notebooks"
    root.mkdir(parents=True, exist_ok=True)
    install_examples(root)
    port = port or free_port()
    token = secrets.token_urlsafe(32)
    env = dict(os.environ, MLOPS_DESKTOP_HOME=str(home), JUPYTER_TOKEN=token)
    argv = [python or sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_remote_access=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # JupyterLab refuses root otherwise (containers, CI machines)
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=root, start_new_session=True)
    finally:
        if log is not None and not isinstance(out, int):
            out.close()
    server = LabServer(proc, port, token, root)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise MlopsError(f"JupyterLab exited at start (exit code {proc.returncode})",
                             hint=f"see {log}" if log else "run it with --no-browser to see its output")
        if _answers(server):
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise MlopsError(f"JupyterLab did not answer on 127.0.0.1:{port} within {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.25)


def _answers(server: LabServer) -> bool:
    request = urllib.request.Request(f"{server.base_url}/api/status",
                                     headers={"Authorization": f"token {server.token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - our own loopback server
            return response.status == 200 and "started" in json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False


def install_examples(root: Path) -> list[Path]:
    """Copy the example notebooks into the notebook folder once (never over the user's edits)."""
    source = examples_dir()
    copied: list[Path] = []
    if source is None:
        return copied
    for nb in sorted(source.glob("*.ipynb")):
        target = root / nb.name
        if not target.exists():
            target.write_bytes(nb.read_bytes())
            copied.append(target)
    return copied


def examples_dir() -> Path | None:
    """resources/notebooks of a checkout or of the frozen bundle."""
    candidates = [Path(__file__).resolve().parents[2] / "resources" / "notebooks"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "resources" / "notebooks")
    return next((c for c in candidates if c.is_dir()), None)


def run_jupyterlab(home: Path, *, notebook_dir: str | None = None, port: int = 0, open_browser: bool = True,
                   as_json: bool = False, notebook: str | None = None) -> int:
    """The `mlops-desktop notebook` command: start, say where, open the browser, wait until Ctrl+C."""
    import signal

    def stop_on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (the GUI, a service manager) stops the server like Ctrl+C

    signal.signal(signal.SIGTERM, stop_on_term)
    log = home / "logs" / "jupyterlab.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = start_jupyterlab(home, notebook_dir=notebook_dir, port=port, log=log)
    try:
        target = None
        if notebook:
            target = Path(notebook)
            if not target.is_absolute():
                target = server.root_dir / target
        url = server.url(target)
        if as_json:
            print(json.dumps({"url": url, "port": server.port, "root_dir": str(server.root_dir),
                              "pid": server.process.pid, "log": str(log)}), flush=True)
        else:
            print(f"JupyterLab for workspace {home} at\n  {url}\n(log: {log}; Ctrl+C stops it)", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()
    finally:
        server.stop()
    return 0
