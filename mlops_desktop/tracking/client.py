"""The tracking API for training code: start a run, log params, metrics and artifacts without blocking the loop."""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_desktop import envvars
from mlops_desktop.errors import UsageError
from mlops_desktop.tracking.sinks import Sink, SpoolSink, StoreSink
from mlops_desktop.tracking.writer import MetricWriter

_NUMBER_TYPES = (float, int, bool)
_time = time.time


class ActiveRun:
    """A run this process is logging into. Use as a context manager, or call ``end()``."""

    def __init__(self, run_uuid: str, sink: Sink, flush_interval: float, first_steps: dict[str, int]) -> None:
        self.uuid = run_uuid
        self._sink = sink
        self._writer = MetricWriter(lambda series: sink.log_metrics(run_uuid, series), flush_interval, first_steps)
        self._append = self._writer.append
        self.status = "running"
        self._terminated_by_signal = False

    @property
    def run_id(self) -> str:  # MLflow's name for it
        return self.uuid

    # -- hot path ------------------------------------------------------------------------------------------
    def log_metric(self, key: str, value: Any, step: int | None = None, timestamp: float | None = None) -> None:
        """Queue one point; returns in about a microsecond. Tensors are converted on the writer thread."""
        tv = type(value)
        if (tv is not float and tv is not int and not _number_like(value)) or type(key) is not str or not key:
            _reject(key, value)
        self._append((key, value, step, timestamp or _time()))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, timestamp: float | None = None) -> None:
        ts = timestamp or _time()
        append = self._append
        for key, value in metrics.items():
            tv = type(value)
            if (tv is not float and tv is not int and not _number_like(value)) or type(key) is not str or not key:
                _reject(key, value)
            append((key, value, step, ts))

    # -- everything else is rare and synchronous, so bad input raises right here -------------------------------
    def log_param(self, key: str, value: Any) -> None:
        self._sink.log_params(self.uuid, {key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._sink.log_params(self.uuid, params)

    def set_tag(self, key: str, value: Any) -> None:
        self._sink.set_tags(self.uuid, {key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._sink.set_tags(self.uuid, tags)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(local_path)
        if not path.exists():
            raise UsageError(f"artifact {path} does not exist")
        self._sink.log_artifact(self.uuid, path, artifact_path)

    def log_input(self, dataset: str, version: str | int, digest: str = "", context: str = "training") -> None:
        self._sink.log_input(self.uuid, dataset, str(version), digest, context)

    def flush(self) -> None:
        """Block until every point logged so far is stored (raises the store's error if it cannot be)."""
        self._writer.flush()

    def end(self, status: str = "finished") -> None:
        if self.status != "running":
            return
        self.status = status
        try:
            self._writer.close()
        finally:
            self._sink.end_run(self.uuid, status, time.time())
            self._sink.close()
            _forget(self)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.end("finished")
        elif self._terminated_by_signal or issubclass(exc_type, KeyboardInterrupt):
            self.end("killed")
        elif issubclass(exc_type, SystemExit):
            code = getattr(exc, "code", 0)
            self.end("finished" if code in (0, None) else "failed")
        else:
            self.end("failed")


def _number_like(value: Any) -> bool:
    if isinstance(value, _NUMBER_TYPES):
        return True
    module = type(value).__module__
    return module == "numpy" or (module.startswith("torch") and hasattr(value, "detach"))


def _reject(key: Any, value: Any) -> None:
    if type(key) is not str or not key:
        raise UsageError(f"metric names must be non-empty strings, got {key!r}")
    raise UsageError(f"metric {key!r}: value must be a number or a 0-d tensor, got {type(value).__name__} {value!r}")


# ---------------------------------------------------------------------------------------------------- fluent API
_runs: list[ActiveRun] = []
_runs_lock = threading.Lock()
_hooks_installed = False


def _forget(run: ActiveRun) -> None:
    with _runs_lock:
        if run in _runs:
            _runs.remove(run)


def active_run() -> ActiveRun | None:
    return _runs[-1] if _runs else None


def _current() -> ActiveRun:
    if not _runs:
        raise UsageError("no active run: call mlops_desktop.tracking.start_run() first")
    return _runs[-1]


def start_run(experiment: str | None = None, name: str = "", *, home: str | Path | None = None,
              run_id: str | None = None, parent_run_id: str | None = None, tags: Mapping[str, Any] | None = None,
              params: Mapping[str, Any] | None = None, spool: str | Path | None = None,
              flush_interval: float | None = None, capture_git: bool = True) -> ActiveRun:
    """Start (or, with run_id / $MLOPS_RUN_ID, attach to) a run and make it the active one.

    Records go to the workspace database ($MLOPS_DESKTOP_HOME or ``home``), or to a spool file when ``spool`` or
    $MLOPS_SPOOL is set (offline or remote runs; import with `mlops-desktop runs sync`).
    """
    run_uuid = run_id or envvars.MLOPS_RUN_ID.get() or uuidlib.uuid4().hex
    experiment = experiment or envvars.MLOPS_EXPERIMENT.get() or "Default"
    spool_path = spool or envvars.MLOPS_SPOOL.get()
    sink: Sink
    if spool_path:
        sink = SpoolSink(spool_path)
        interval = flush_interval if flush_interval is not None else envvars.MLOPS_FLUSH_INTERVAL.get_float(0.1)
    else:
        from mlops_desktop.workspace import Workspace

        workspace = Workspace.open(home)
        sink = StoreSink(workspace)
        interval = flush_interval if flush_interval is not None else envvars.MLOPS_FLUSH_INTERVAL.get_float(
            workspace.settings.flush_interval_s)
    info: dict[str, Any] = {
        "run": run_uuid, "experiment": experiment, "name": name, "command": " ".join(map(shlex.quote, sys.argv)),
        "host": socket.gethostname(), "pid": os.getpid(), "start_time": time.time(),
        "parent_uuid": parent_run_id, "tags": dict(tags or {}), "params": dict(params or {}),
    }
    if capture_git:
        info["git_commit"], info["git_dirty"] = _git_state()
    sink.start_run(info)
    run = ActiveRun(run_uuid, sink, interval, sink.last_steps(run_uuid))
    with _runs_lock:
        _runs.append(run)
    _install_hooks()
    return run


def end_run(status: str = "finished") -> None:
    run = active_run()
    if run is not None:
        run.end(status)


def log_metric(key: str, value: Any, step: int | None = None, timestamp: float | None = None) -> None:
    run = _runs[-1] if _runs else _current()
    tv = type(value)
    if (tv is not float and tv is not int and not _number_like(value)) or type(key) is not str or not key:
        _reject(key, value)
    run._append((key, value, step, timestamp or _time()))


def log_metrics(metrics: Mapping[str, Any], step: int | None = None, timestamp: float | None = None) -> None:
    _current().log_metrics(metrics, step, timestamp)


def log_param(key: str, value: Any) -> None:
    _current().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _current().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _current().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _current().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> None:
    _current().log_artifact(local_path, artifact_path)


def log_input(dataset: str, version: str | int, digest: str = "", context: str = "training") -> None:
    _current().log_input(dataset, version, digest, context)


def flush() -> None:
    for run in list(_runs):
        run.flush()


# ---------------------------------------------------------------------------------------------------- process hooks
def _install_hooks() -> None:
    """End runs at exit; SIGTERM becomes SystemExit so runs end as 'killed' and flush what was logged."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_end_all_at_exit)
    # Only when SIGTERM would kill the process outright (the default): a handler of the user's own is left alone.
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

        def on_sigterm(signum: int, frame: Any) -> None:
            for run in list(_runs):
                run._terminated_by_signal = True
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
    previous_hook = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        for run in reversed(list(_runs)):
            try:
                run.end("killed" if issubclass(exc_type, KeyboardInterrupt) else "failed")
            except Exception:  # noqa: BLE001 - never hide the user's own traceback
                pass
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook


def _end_all_at_exit() -> None:
    for run in reversed(list(_runs)):
        try:
            run.end("killed" if run._terminated_by_signal else "finished")
        except Exception as exc:  # noqa: BLE001
            print(f"mlops-desktop: could not finish run {run.uuid}: {exc}", file=sys.stderr)


def _git_state(cwd: str | None = None) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None
