"""Managed local routers (`mlops-desktop router start NAME --config FILE`): a detached router process in front of
local model servers, as `serve --detach` is for a server.

Kept in files, not tables: `<workspace>/serving/routers/<NAME>/` holds `router.json` (what was started: config path,
pid and start ticks, admin token file), the status file the process writes, its log, and its state folder (change
log, live settings, shadow comparisons). A router started without an admin token in its config gets one generated
here (`admin.token`, mode 0600), so its admin API is never open. What `list_routers` shows is observed: a recorded
process that is gone without an exit code is `lost`. Live changes made through here are also appended to the
workspace's audit log (kind `router.*`, subject `router:<name>`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import MlopsError, NotFoundError, UsageError
from mlops_desktop.procs import pid_alive, process_start_ticks

if TYPE_CHECKING:
    from mlops_desktop.serving.router_client import AdminClient
    from mlops_desktop.workspace import Workspace

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass
class ManagedRouter:
    name: str
    config: str
    host: str
    port: int
    state: str
    pid: int | None
    pid_start: int | None
    run_dir: str
    token_file: str | None
    exit_code: int | None = None
    error: str = ""
    started_at: float | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"url": self.url, "log": str(Path(self.run_dir) / "router.log")}


def _dir(ws: Workspace, name: str) -> Path:
    return ws.paths.serving / "routers" / name


def _save(r: ManagedRouter) -> None:
    path = Path(r.run_dir) / "router.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(r)), encoding="utf-8")
    os.replace(tmp, path)


def _load(ws: Workspace, name: str) -> ManagedRouter:
    try:
        doc = json.loads((_dir(ws, name) / "router.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = [r.name for r in list_routers(ws)]
        raise NotFoundError(f"no managed router named {name!r}",
                            hint=("routers: " + ", ".join(known)) if known else
                            "start one with `mlops-desktop router start NAME --config FILE`") from None
    except (OSError, ValueError) as exc:
        raise MlopsError(f"the record of router {name!r} cannot be read: {exc}") from None
    return ManagedRouter(**doc)


def _status(r: ManagedRouter) -> dict[str, Any]:
    try:
        return dict(json.loads((Path(r.run_dir) / "status.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def observe(r: ManagedRouter) -> ManagedRouter:
    if r.state not in ("running", "starting"):
        return r
    if r.pid is not None and pid_alive(r.pid) and process_start_ticks(r.pid) == r.pid_start:
        return r
    doc = _status(r)
    if "exit_code" in doc:
        r.exit_code = int(doc["exit_code"])
        r.state, r.error = ("stopped", "") if r.exit_code == 0 else ("failed", f"exited with code {r.exit_code}")
    else:
        r.state, r.error = "lost", "the process is gone without shutting down (killed, or the machine restarted)"
    _save(r)
    return r


def list_routers(ws: Workspace) -> list[ManagedRouter]:
    root = ws.paths.serving / "routers"
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        with contextlib.suppress(MlopsError):
            if (folder / "router.json").is_file():
                out.append(observe(_load(ws, folder.name)))
    return out


def get(ws: Workspace, name: str) -> ManagedRouter:
    return observe(_load(ws, name))


def start(ws: Workspace, name: str, config_file: str | Path, *, host: str | None = None, port: int | None = None,
          timeout: float = 60.0) -> ManagedRouter:
    """Check the config, start the router detached, wait until it answers /v2/health/live, record it."""
    from mlops_desktop.serving import router_config

    if not NAME_RE.match(name):
        raise UsageError(f"invalid router name {name!r}", hint="letters, digits, '.', '_' and '-', up to 63")
    config_path = Path(config_file).resolve()
    config = router_config.load(config_path)  # refused in words before anything starts
    config = config.with_(**{k: v for k, v in (("host", host), ("port", port)) if v is not None})
    router_config.check_exposure(config)
    run_dir = _dir(ws, name)
    if (run_dir / "router.json").is_file():
        current = get(ws, name)
        if current.state in ("running", "starting"):
            raise UsageError(f"the router {name!r} is already running at {current.url}",
                             hint=f"`mlops-desktop router stop {name}` first")
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    token_file: str | None = None
    if config.admin_token is None:
        token_path = run_dir / "admin.token"
        if not token_path.exists():
            fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
        token_file = str(token_path)
        env["MLOPS_ADMIN_TOKEN"] = token_path.read_text(encoding="utf-8").strip()
    status = run_dir / "status.json"
    with contextlib.suppress(FileNotFoundError):
        status.unlink()
    argv = [sys.executable, "-m", "mlops_desktop.serving.router", "--config", str(config_path),
            "--host", config.host, "--port", str(config.port), "--status-file", str(status)]
    if config.state_dir is None:
        argv += ["--state-dir", str(run_dir / "state")]
    with open(run_dir / "router.log", "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting router {name} from {config_path}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, close_fds=True)
    record = ManagedRouter(name, str(config_path), config.host, config.port, "starting", proc.pid,
                           process_start_ticks(proc.pid), str(run_dir), token_file, started_at=time.time())
    _save(record)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = _status(record)
        if doc.get("state") == "running" and doc.get("port"):
            record.port = int(doc["port"])
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(record.url + "/v2/health/live", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        record.state = "running"
                        _save(record)
                        return record
        if proc.poll() is not None:
            record.state, record.exit_code = "failed", proc.returncode
            record.error = f"exited with code {proc.returncode} while starting"
            _save(record)
            raise MlopsError(f"the router exited with code {proc.returncode} while starting:\n{logs(ws, name, 15)}")
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    record.state, record.error = "failed", f"not answering after {timeout:.0f} s; killed"
    _save(record)
    raise MlopsError(f"the router was not answering after {timeout:.0f} s:\n{logs(ws, name, 15)}")


def stop(ws: Workspace, name: str, *, timeout: float = 30.0) -> ManagedRouter:
    r = get(ws, name)
    if r.state not in ("running", "starting") or r.pid is None:
        return r
    with contextlib.suppress(ProcessLookupError):
        os.kill(r.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(r.pid) and process_start_ticks(r.pid) == r.pid_start:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(r.pid, os.WNOHANG)
        time.sleep(0.05)
    clean = not (pid_alive(r.pid) and process_start_ticks(r.pid) == r.pid_start)
    if not clean:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(r.pid, signal.SIGKILL)
    code = _status(r).get("exit_code")
    r.state = "stopped" if clean and code in (0, None) else "failed"
    r.exit_code = code
    r.error = "" if clean else f"did not stop within {timeout:.0f} s; killed"
    _save(r)
    return r


def logs(ws: Workspace, name: str, lines: int = 100) -> str:
    try:
        text = (_dir(ws, name) / "router.log").read_bytes()[-65536:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def client(ws: Workspace, target: str, token_file: str | None = None) -> AdminClient:
    """An admin client for a managed router (by name) or any router (by URL, with its admin token file)."""
    from mlops_desktop import envvars
    from mlops_desktop.serving.config import read_token
    from mlops_desktop.serving.router_client import AdminClient

    if target.startswith(("http://", "https://")):
        token = read_token(token_file) if token_file else envvars.MLOPS_ADMIN_TOKEN.get()
        return AdminClient(target, token)
    r = get(ws, target)
    if r.state != "running":
        raise UsageError(f"the router {target!r} is {r.state}" + (f" ({r.error})" if r.error else ""),
                         hint=f"`mlops-desktop router start {target} --config {r.config}`")
    if token_file:
        token = read_token(token_file)
    elif r.token_file:
        token = read_token(r.token_file)
    else:
        from mlops_desktop.serving import router_config

        token = router_config.load(r.config).admin_token
    return AdminClient(r.url, token)


def change(ws: Workspace, target: str, *, actor: str, reason: str, token_file: str | None = None,
           **settings: Any) -> dict[str, Any]:
    """Make a live change and append each resulting change event to the workspace's audit log too."""
    from mlops_desktop import audit

    admin = client(ws, target, token_file)
    answer = admin.change(actor=actor, reason=reason, **settings)
    for event in answer.get("changes", []):
        details = dict(event.get("details") or {}) | {"router_seq": event["seq"], "router_hash": event["hash"],
                                                      "router_url": admin.url}

        def record(conn: Any, e: dict[str, Any] = event, d: dict[str, Any] = details) -> Any:
            return audit.append(conn, e["kind"], e["subject"], from_value=e["from_value"], to_value=e["to_value"],
                                reason=e["reason"], details=d, actor=e["actor"], ts=e["ts"])

        ws.db.write(record)
    return answer
