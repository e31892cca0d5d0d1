"""Worker functions of the Deployments area (no Qt): each is one core call run off the GUI thread by the task runner.

Reads that poll (target checks, deployment status) never raise for an engine that does not answer: they return the
reason, so the area can show "unknown: reason" without a notification every second. Actions (create, update,
rollback, split, ...) raise, and their error goes to the notification channel as every task's does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops_desktop.errors import Cancelled, MlopsError

EVENTS_SHOWN = 12


def service(ws: Any) -> Any:
    """The area's one DeploymentService (made once per workspace and handed to every worker: it keeps one engine
    client per target instead of a new connection per poll)."""
    from mlops_desktop.deploy.service import DeploymentService

    return DeploymentService(ws)


def close_service(svc: Any) -> None:
    """Close the engine clients a service opened (its backends' docker/kubernetes connections)."""
    if svc is None:
        return
    close = getattr(svc, "close", None)
    if callable(close):
        close()
        return
    for backend in list(getattr(svc, "_backends", {}).values()):  # until the service has close() of its own
        backend_close = getattr(backend, "close", None)
        if callable(backend_close):
            try:
                backend_close()
            except Exception:  # noqa: BLE001, S110 - closing a connection that already broke
                pass


def reason_of(exc: BaseException) -> str:
    """The words for why a read failed: an MlopsError's message, an OS error's text, else the exception's type."""
    if isinstance(exc, MlopsError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass
class TargetHealth:
    """One target's check: the engine's answer, or why there is none (then the health is 'unknown')."""

    name: str
    check: Any = None
    error: str = ""
    at: float = field(default_factory=time.time)

    @property
    def state(self) -> str:
        if self.error or self.check is None:
            return "unknown"
        return "reachable" if self.check.reachable else "unreachable"

    @property
    def text(self) -> str:
        if self.error:
            return f"unknown: {self.error}"
        if self.check is None:
            return "checking…"
        if not self.check.reachable:
            return f"unreachable: {self.check.detail}" if self.check.detail else "unreachable"
        parts = ["reachable"]
        if self.check.version:
            parts.append(str(self.check.version))
        nodes = list(self.check.nodes)
        if nodes:
            ready = sum(1 for n in nodes if str(n.get("state", "")).lower() in ("ready", "active"))
            parts.append(f"{ready}/{len(nodes)} node(s) ready")
        return " · ".join(parts)


@dataclass
class DeploymentSnapshot:
    """What the area shows of one deployment: its status (or why it is not known) and its revisions."""

    name: str
    status: Any = None
    error: str = ""
    revisions: list[Any] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)   # the deployment's event log (newest last)
    at: float = field(default_factory=time.time)


def list_targets(svc: Any, *, progress: Any) -> list[Any]:
    return list(svc.targets())


def check_targets(svc: Any, names: list[str], *, progress: Any) -> list[TargetHealth]:
    """Check each target in turn (each engine call has its own timeout in the core); one that fails is 'unknown'
    with its reason, and the others are still checked."""
    out = []
    for i, name in enumerate(names):
        progress.update(i / max(len(names), 1), f"checking {name}")
        try:
            out.append(TargetHealth(name, check=svc.check_target(name)))
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine's failure is a state to show, not a crash
            out.append(TargetHealth(name, error=reason_of(exc)))
    return out


def list_deployments(svc: Any, *, progress: Any) -> list[Any]:
    return list(svc.deployments())


def snapshot(svc: Any, name: str, with_history: bool = True, *, progress: Any) -> DeploymentSnapshot:
    """Status (engine) and history and rollout events (database) of one deployment; an engine that does not answer
    is a reason."""
    snap = DeploymentSnapshot(name)
    if with_history:
        snap.revisions = list(svc.history(name))
        snap.events = list(svc.events(name))[-EVENTS_SHOWN:]
    progress.check()
    try:
        snap.status = svc.status(name)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - an engine's failure is a state to show
        snap.error = reason_of(exc)
    return snap


def statuses(svc: Any, names: list[str], *, progress: Any) -> list[DeploymentSnapshot]:
    """Every listed deployment's status for the table (no history)."""
    out = []
    for name in names:
        progress.check()
        out.append(snapshot(svc, name, False, progress=progress))
    return out


class LineSink:
    """Lines from a worker thread to the GUI thread: the worker appends, a GUI timer drains in batches (one signal
    per line would flood the event loop when a replica logs thousands of lines a second). Bounded: when the GUI
    falls behind, the oldest lines are dropped and counted."""

    def __init__(self, limit: int = 50_000) -> None:
        self._lines: deque[str] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, line: str) -> None:
        with self._lock:
            if len(self._lines) == self._lines.maxlen:
                self.dropped += 1
            self._lines.append(line.rstrip("\n"))

    def drain(self) -> list[str]:
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
        return lines


class Follower:
    """Follows a stream of lines (``open_stream()`` -> iterator) in a worker until stopped.

    ``stop()`` may be called from the GUI thread: it sets the flag and closes the stream when it can be closed (a
    docker log stream's ``close()`` ends the blocked read at once), so a worker waiting for a quiet replica's next
    line returns without waiting for one.
    """

    def __init__(self, open_stream: Callable[[], Iterable[str]], sink: LineSink) -> None:
        self.open_stream = open_stream
        self.sink = sink
        self.stopped = threading.Event()
        self._stream: Any = None

    def stop(self) -> None:
        self.stopped.set()
        stream = self._stream
        close = getattr(stream, "close", None)
        if callable(close):
            try:
                close()
            except (ValueError, OSError, RuntimeError):  # a generator still running, a socket already gone
                pass

    def run(self, *, progress: Any) -> int:
        count = 0
        progress.update(0.0, "connecting")
        stream = self.open_stream()
        self._stream = stream
        if self.stopped.is_set():
            self.stop()
            raise Cancelled()
        progress.update(0.0, "following")
        try:
            iterator: Iterator[str] = iter(stream)
            for line in iterator:
                if self.stopped.is_set() or progress.cancelled:
                    raise Cancelled()
                self.sink.put(line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line))
                count += 1
        except Cancelled:
            raise
        except Exception:
            if self.stopped.is_set() or progress.cancelled:
                raise Cancelled() from None  # closing the stream under the read: that is how a stop ends it
            raise
        if self.stopped.is_set() or progress.cancelled:
            raise Cancelled()   # the closed stream read as its end
        return count


def build_image(ws: Any, ref: str, base: str | None, on_log: Callable[[str], None], cancel: threading.Event,
                docker_host: str | None = None, options: dict[str, Any] | None = None, *, progress: Any) -> Any:
    """The core call of `images build` (on the engine `docker_host`, else the environment's) with its log streamed
    to ``on_log`` and cancel through ``cancel``."""
    from mlops_desktop.containers.images import build_image as build

    progress.update(0.0, f"building {ref}")
    return build(ws, ref, base=base or None, docker_host=docker_host or None, on_log=on_log, cancel=cancel,
                 **(options or {}))


def model_refs(ws: Any, *, progress: Any) -> list[str]:
    """What a deployment can serve, as the dialogs offer it: every MODEL@ALIAS, then every MODEL/VERSION, newest
    first."""
    from mlops_desktop import registry

    store = registry.store(ws)
    aliases, versions = [], []
    for model in store.list_models():
        aliases += [f"{model.name}@{alias}" for alias in sorted(model.aliases)]
        versions += [f"{model.name}/{v}" for v in range(model.latest_version or 0, 0, -1)]
    return aliases + versions


def versions_of(refs: list[str], model: str) -> list[str]:
    """The MODEL/VERSION refs of one model (what an A/B split or a shadow chooses from)."""
    return [r for r in refs if r.startswith(f"{model}/")]


def run_action(svc: Any, method: str, *args: Any, progress: Any, **kwargs: Any) -> Any:
    """One state-changing core call (`deploy create|update|rollback|scale|restart|split|shadow|delete`, `targets
    add`); the service reports into the task's own progress when the method takes one (rollouts do)."""
    import inspect

    fn = getattr(svc, method)
    try:
        takes_progress = "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_progress = False
    if takes_progress:
        kwargs["progress"] = progress
    progress.update(0.0, "starting")
    return fn(*args, **kwargs)
