"""Managed local model servers (`serve --detach`, the GUI's "Serve locally"): start, observe, stop, restart.

A server is a detached process (its own session, so closing the app or the terminal leaves it running) recorded in
`model_servers` with its pid and start ticks; its folder holds the log, one status file per process (pid, port,
state, exit code) and the prediction-log segments. What `list_servers` shows is observed, not assumed: a recorded
process that is gone without an exit code is `lost` (killed), one that exited on its own is `failed` or `stopped`.
A restart with another version starts the new process on the same port (SO_REUSEPORT), waits until it is ready,
then drains the old one, so clients see no refused connection.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import MlopsError, NotFoundError, UsageError
from mlops_desktop.procs import pid_alive, process_start_ticks
from mlops_desktop.serving.source import Target

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
Resolver = Callable[["Workspace", str], Target]
_COLUMNS = ("id, name, model, ref, version, host, port, state, pid, pid_start, argv, run_dir, exit_code, error, "
            "created_at, started_at, stopped_at")


@dataclass
class ManagedServer:
    id: int
    name: str
    model: str
    ref: str
    version: str
    host: str
    port: int
    state: str
    pid: int | None
    pid_start: int | None
    argv: list[str]
    run_dir: str
    exit_code: int | None
    error: str
    created_at: float
    started_at: float | None
    stopped_at: float | None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self.run_dir) / "server.log"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"url": self.url, "log": str(self.log_path)}


def _row(row: tuple[Any, ...]) -> ManagedServer:
    values = list(row)
    values[10] = json.loads(values[10])
    return ManagedServer(*values)


def _get(ws: Workspace, name: str) -> ManagedServer:
    rows = ws.db.query(f"SELECT {_COLUMNS} FROM model_servers WHERE name = ?", (name,))
    if not rows:
        known = [r[0] for r in ws.db.query("SELECT name FROM model_servers ORDER BY name")]
        raise NotFoundError(f"no managed server named {name!r}",
                            hint=("servers: " + ", ".join(known)) if known else "start one with `serve MODEL@ALIAS "
                                                                                "--detach`")
    return _row(rows[0])


def _event(ws: Workspace, server_id: int, event: str, from_version: str | None, to_version: str | None,
           detail: str = "") -> None:
    ws.db.write(lambda c: c.execute(
        "INSERT INTO model_server_events(server_id, at, actor, event, from_version, to_version, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", (server_id, time.time(), _actor(), event, from_version, to_version, detail)))


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _alive(pid: int | None, ticks: int | None) -> bool:
    return pid is not None and pid_alive(pid) and (ticks is None or process_start_ticks(pid) == ticks)


def _status_file(argv: list[str]) -> Path | None:
    return Path(argv[argv.index("--status-file") + 1]) if "--status-file" in argv else None


def _read_status(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _launch(ws: Workspace, name: str, target: Target, host: str, port: int, extra: list[str]) -> tuple[
        subprocess.Popen[bytes], list[str], Path]:
    run_dir = ws.paths.serving / name
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 100000:05d}"
    status = run_dir / f"status-{stamp}.json"
    argv = [sys.executable, "-m", "mlops_desktop.serving", *target.argv, "--host", host, "--port", str(port),
            "--home", str(ws.root), "--status-file", str(status), "--log-dir", str(run_dir / "predictions" / stamp),
            *extra]
    with open(run_dir / "server.log", "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {target.model}/{target.version} on "
                  f"{host}:{port}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    return proc, argv, run_dir


def _wait_ready(proc: subprocess.Popen[bytes], status: Path | None, log: Path, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = _read_status(status)
        if doc.get("state") == "running" and doc.get("port"):
            host = doc.get("host") or "127.0.0.1"
            with contextlib.suppress(OSError):
                url = f"http://{'[' + host + ']' if ':' in host else host}:{doc['port']}/health"
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own server
                    if resp.status == 200:
                        return doc
        if proc.poll() is not None:
            raise MlopsError(f"the server exited with code {proc.returncode} while starting:\n{_tail(log)}",
                             hint="see `mlops-desktop serve logs NAME`")
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise MlopsError(f"the server was not ready after {timeout:.0f} s:\n{_tail(log)}")


def start(ws: Workspace, ref: str, *, name: str | None = None, host: str = "127.0.0.1", port: int = 8080,
          extra: list[str] | None = None, resolver: Resolver | None = None, timeout: float = 120.0) -> ManagedServer:
    """Resolve `ref`, start a detached server, wait until /health answers, record it."""
    from mlops_desktop.serving import source

    target = (resolver or source.resolve)(ws, ref)
    name = name or target.model
    if not NAME_RE.match(name):
        raise UsageError(f"invalid server name {name!r}", hint="letters, digits, '.', '_' and '-', up to 63")
    existing = ws.db.query("SELECT name FROM model_servers WHERE name = ?", (name,))
    if existing:
        current = observe(ws, _get(ws, name))
        if current.state in ("running", "starting"):
            raise UsageError(f"the server {name!r} is already running ({current.model}/{current.version} at "
                             f"{current.url})", hint=f"`serve restart {name} --ref REF` or `serve stop {name}`")
    proc, argv, run_dir = _launch(ws, name, target, host, port, list(extra or []))
    now = time.time()
    values = (target.model, ref, target.version, host, port, "starting", proc.pid, process_start_ticks(proc.pid),
              json.dumps(argv), str(run_dir), now)
    if existing:
        ws.db.write(lambda c: c.execute(
            "UPDATE model_servers SET model=?, ref=?, version=?, host=?, port=?, state=?, pid=?, pid_start=?, "
            "argv=?, run_dir=?, started_at=?, exit_code=NULL, error='', stopped_at=NULL WHERE name=?",
            (*values, name)))
    else:
        ws.db.write(lambda c: c.execute(
            "INSERT INTO model_servers(model, ref, version, host, port, state, pid, pid_start, argv, run_dir, "
            "started_at, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*values, name, now)))
    record = _get(ws, name)
    try:
        doc = _wait_ready(proc, _status_file(argv), record.log_path, timeout)
    except MlopsError as exc:
        _set(ws, record.id, state="failed", exit_code=proc.returncode, error=exc.message.splitlines()[0],
             stopped_at=time.time())
        _event(ws, record.id, "start_failed", None, target.version, exc.message.splitlines()[0])
        raise
    _set(ws, record.id, state="running", port=int(doc["port"]))
    _event(ws, record.id, "start", None, target.version, f"{host}:{doc['port']}")
    return _get(ws, name)


def _set(ws: Workspace, server_id: int, **fields: Any) -> None:
    cols = ", ".join(f"{k} = ?" for k in fields)
    ws.db.write(lambda c: c.execute(f"UPDATE model_servers SET {cols} WHERE id = ?", (*fields.values(), server_id)))


def observe(ws: Workspace, server: ManagedServer) -> ManagedServer:
    """Check the recorded process against reality; record what changed (a killed server becomes `lost`)."""
    if server.state not in ("running", "starting"):
        return server
    if _alive(server.pid, server.pid_start):
        return server
    doc = _read_status(_status_file(server.argv))
    if "exit_code" in doc:
        code = int(doc["exit_code"])
        state, error = ("stopped", "") if code == 0 else ("failed", f"exited with code {code}")
    else:
        state, code = "lost", None
        error = "the process is gone without shutting down (killed, or the machine restarted)"
    _set(ws, server.id, state=state, exit_code=code, error=error, stopped_at=time.time())
    _event(ws, server.id, state, server.version, None, error)
    return _get(ws, server.name)


def list_servers(ws: Workspace) -> list[ManagedServer]:
    rows = ws.db.query(f"SELECT {_COLUMNS} FROM model_servers ORDER BY name")
    return [observe(ws, _row(r)) for r in rows]


def get(ws: Workspace, name: str) -> ManagedServer:
    return observe(ws, _get(ws, name))


def _terminate(pid: int, ticks: int | None, timeout: float) -> bool:
    """SIGTERM (drain), then SIGKILL after `timeout`; True when it ended by itself."""
    if not _alive(pid, ticks):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, ticks):
            return True
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # our own child (started in this process): reap it
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return False


def stop(ws: Workspace, name: str, *, timeout: float = 40.0) -> ManagedServer:
    server = get(ws, name)
    if server.state not in ("running", "starting"):
        return server
    assert server.pid is not None
    clean = _terminate(server.pid, server.pid_start, timeout)
    code = _read_status(_status_file(server.argv)).get("exit_code")
    state = "stopped" if clean and code in (0, None) else "failed"
    error = "" if clean else f"did not stop within {timeout:.0f} s; killed"
    _set(ws, server.id, state=state, exit_code=code, error=error, stopped_at=time.time())
    _event(ws, server.id, "stop", server.version, None, error)
    return _get(ws, name)


def restart(ws: Workspace, name: str, ref: str | None = None, *, resolver: Resolver | None = None,
            timeout: float = 120.0) -> ManagedServer:
    """Serve `ref` (another version, or the same one again) in place of the running server, on the same port: the
    new process must be ready before the old one is drained. A new process that fails leaves the old one serving."""
    from mlops_desktop.serving import source

    server = get(ws, name)
    ref = ref or server.ref
    target = (resolver or source.resolve)(ws, ref)
    extra = _extra(server.argv)
    proc, argv, _ = _launch(ws, name, target, server.host, server.port, extra)
    try:
        doc = _wait_ready(proc, _status_file(argv), server.log_path, timeout)
    except MlopsError as exc:
        _event(ws, server.id, "restart_failed", server.version, target.version, exc.message.splitlines()[0])
        raise
    old_pid, old_ticks, old_version = server.pid, server.pid_start, server.version
    _set(ws, server.id, model=target.model, ref=ref, version=target.version, state="running", pid=proc.pid,
         pid_start=process_start_ticks(proc.pid), argv=json.dumps(argv), port=int(doc["port"]),
         started_at=time.time(), exit_code=None, error="", stopped_at=None)
    if server.state in ("running", "starting") and old_pid is not None:
        _terminate(old_pid, old_ticks, 40.0)
    _event(ws, server.id, "restart", old_version, target.version, ref)
    return _get(ws, name)


def _extra(argv: list[str]) -> list[str]:
    """The options a server was started with beyond what `_launch` sets (batching, token file, ...)."""
    owned = {"--host", "--port", "--home", "--status-file", "--log-dir", "--bundle", "--bundle-hash", "--factory",
             "--name", "--version"}
    out: list[str] = []
    items = argv[3:]  # python -m mlops_desktop.serving
    i = 0
    while i < len(items):
        if items[i] in owned:
            i += 2
            continue
        out.append(items[i])
        i += 1
    return out


def events(ws: Workspace, name: str) -> list[dict[str, Any]]:
    server = _get(ws, name)
    rows = ws.db.query("SELECT at, actor, event, from_version, to_version, detail FROM model_server_events "
                       "WHERE server_id = ? ORDER BY id", (server.id,))
    return [dict(zip(("at", "actor", "event", "from_version", "to_version", "detail"), r, strict=True))
            for r in rows]


def logs(ws: Workspace, name: str, lines: int = 100) -> str:
    return _tail(_get(ws, name).log_path, lines)
