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
    """A run this process is logging into. Use as a context manager, or call ``end()``.

    It also reads like MLflow's ``ActiveRun``: ``.info`` (ids, status, times in ms, artifact URI) and ``.data``
    (params, tags and the last value of each metric, read from the store after a flush).
    """

    def __init__(self, run_uuid: str, sink: Sink, flush_interval: float, first_steps: dict[str, int],
                 info: Any = None) -> None:
        self.uuid = run_uuid
        self._sink = sink
        self._writer = MetricWriter(lambda series: sink.log_metrics(run_uuid, series), flush_interval, first_steps)
        self._append = self._writer.append
        self.status = "running"
        self._terminated_by_signal = False
        self._info = info          # mlflow_api.entities.RunInfo, kept current by end()
        self._final: Any = None    # the run as it ended (mlflow_api.entities.Run), readable after the store closed
        self._local_params: dict[str, str] = {}
        self._local_tags: dict[str, str] = {}

    @property
    def run_id(self) -> str:  # MLflow's name for it
        return self.uuid

    @property
    def info(self) -> Any:
        """MLflow's ``RunInfo``: run_id, experiment_id, run_name, status, start_time/end_time in ms, artifact_uri."""
        return self._final.info if self._final is not None else self._info

    @property
    def data(self) -> Any:
        """MLflow's ``RunData`` (metrics: last values, params, tags), current as of this call."""
        return self._snapshot().data

    @property
    def inputs(self) -> Any:
        return self._snapshot().inputs

    def _snapshot(self) -> Any:
        if self._final is not None:
            return self._final
        if isinstance(self._sink, StoreSink):
            self._writer.flush()
            from mlops_desktop.tracking.mlflow_api.convert import run_view

            return run_view(self._sink.workspace, self._sink.store.get_run(self.uuid))
        from mlops_desktop.tracking.mlflow_api.entities import Run, RunData

        return Run(self._info, RunData({}, dict(self._local_params), dict(self._local_tags)))

    # -- hot path ------------------------------------------------------------------------------------------
    def log_metric(self, key: str, value: Any, step: int | None = None, timestamp: int | None = None) -> None:
        """Queue one point; returns in about a microsecond. ``timestamp`` is in ms since the epoch, as in MLflow."""
        tv = type(value)
        if (tv is not float and tv is not int and not _number_like(value)) or type(key) is not str or not key:
            _reject(key, value)
        self._append((key, value, step, _time() if timestamp is None else timestamp * 0.001))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, timestamp: int | None = None) -> None:
        ts = _time() if timestamp is None else timestamp * 0.001
        append = self._append
        for key, value in metrics.items():
            tv = type(value)
            if (tv is not float and tv is not int and not _number_like(value)) or type(key) is not str or not key:
                _reject(key, value)
            append((key, value, step, ts))

    # -- everything else is rare and synchronous, so bad input raises right here -------------------------------
    def log_param(self, key: str, value: Any) -> Any:
        self._sink.log_params(self.uuid, {key: value})
        self._local_params[key] = str(value)
        return value

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._sink.log_params(self.uuid, params)
        self._local_params.update({k: str(v) for k, v in params.items()})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlops_desktop.tracking.mlflow_api.convert import split_system_tags

        fields, rest = split_system_tags(tags, at_start=False)
        if fields:
            self._sink.update_run(self.uuid, fields)
        if rest:
            self._sink.set_tags(self.uuid, rest)
        self._local_tags.update({k: str(v) for k, v in tags.items()})

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(local_path)
        if not path.exists():
            raise UsageError(f"artifact {path} does not exist")
        self._sink.log_artifact(self.uuid, path, artifact_path)

    def log_input(self, dataset: str, version: str | int, digest: str = "", context: str = "training") -> None:
        """Record that this run read a lake dataset version (lineage)."""
        self._sink.log_input(self.uuid, dataset, str(version), digest, context)

    def flush(self) -> None:
        """Block until every point logged so far is stored (raises the store's error if it cannot be)."""
        self._writer.flush()

    def record_error(self, exc_type: type[BaseException], exc: BaseException | None, tb: Any) -> None:
        """Write why the run failed into its tags (mlops.error, .type, .message, .traceback); never raises."""
        try:
            self._sink.set_tags(self.uuid, error_tags(exc_type, exc, tb))
        except Exception as err:  # noqa: BLE001 - the user's own exception matters more
            print(f"mlops-desktop: could not record why run {self.uuid} failed: {err}", file=sys.stderr)

    def end(self, status: str = "finished") -> None:
        if self.status != "running":
            return
        status = _our_status(status)
        self.status = status
        try:
            self._writer.close()
        finally:
            end_time = time.time()
            self._sink.end_run(self.uuid, status, end_time)
            self._final_snapshot(status, end_time)
            if status == "finished" and self._local_tags.get("mlops.register"):
                self._register_model()
            self._sink.close()
            _forget(self)

    def _register_model(self) -> None:
        """A run that asked for it (`mlops.register`, e.g. log_model(registered_model_name=)) registers its model
        when it finishes, where this process sees the workspace; a spooled run is registered when it is imported."""
        workspace = getattr(self._sink, "workspace", None)
        if workspace is None:
            return
        from mlops_desktop.registry.jobs import register_pending

        try:
            message = register_pending(workspace, self.uuid)
        except Exception as exc:  # noqa: BLE001 - the run itself succeeded; say why its model was not registered
            message = f"registering the model failed: {exc}"
        if message:
            print(f"mlops-desktop: {message}", file=sys.stderr)

    def _final_snapshot(self, status: str, end_time: float) -> None:
        if self._info is not None:
            from mlops_desktop.tracking.mlflow_api.entities import STATUS_TO_MLFLOW

            self._info.status = STATUS_TO_MLFLOW[status]
            self._info.end_time = int(end_time * 1000)
        try:
            self._final = self._snapshot()
        except Exception:  # noqa: BLE001 - the run is ended; a failed read only costs .data after the end
            self._final = None

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.end("finished")
        elif self._terminated_by_signal or issubclass(exc_type, KeyboardInterrupt):
            self.end("killed")
        elif issubclass(exc_type, SystemExit):
            code = getattr(exc, "code", 0)
            if code not in (0, None):
                self.record_error(exc_type, exc, tb)
            self.end("finished" if code in (0, None) else "failed")
        else:
            self.record_error(exc_type, exc, tb)
            self.end("failed")


def _our_status(status: str) -> str:
    value = str(status).lower()
    if value not in ("finished", "failed", "killed"):
        raise UsageError(f"a run ends as FINISHED, FAILED or KILLED, not {status!r}")
    return value


ERROR_TRACEBACK_BYTES = 4096
ERROR_MESSAGE_BYTES = 8192


def error_tags(exc_type: type[BaseException], exc: BaseException | None, tb: Any) -> dict[str, str]:
    """The tags that say why a run failed: a one-line summary, the exception's class, its message and the
    last frames of its traceback (at most 4 KB, cut at a frame so that it stays readable)."""
    import traceback

    module = getattr(exc_type, "__module__", "") or ""
    qualname = getattr(exc_type, "__qualname__", exc_type.__name__)
    type_name = qualname if module in ("builtins", "__main__", "") else f"{module}.{qualname}"
    if isinstance(exc, SystemExit):
        message = f"exit code {exc.code}"
    else:
        message = str(exc) if exc is not None else ""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    summary = f"{exc_type.__name__}: {first_line}" if first_line else exc_type.__name__
    text = "".join(traceback.format_exception(exc_type, exc, tb)) if exc is not None else summary
    return {"mlops.error": _clip(summary, 1000), "mlops.error.type": type_name,
            "mlops.error.message": _clip(message, ERROR_MESSAGE_BYTES),
            "mlops.error.traceback": _tail_frames(text, ERROR_TRACEBACK_BYTES)}


def _clip(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def _tail_frames(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    tail = data[-(limit - 40):].decode(errors="ignore")
    cut = tail.find("\n  File ")
    tail = tail[cut + 1:] if cut >= 0 else tail
    return "Traceback (last frames only):\n" + tail


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
    """The run this process logs into now, or None (MLflow's ``active_run``)."""
    return _runs[-1] if _runs else None


def _current() -> ActiveRun:
    """The active run; with none, start one (as MLflow does on a log call without a run)."""
    if not _runs:
        return start_run()
    return _runs[-1]


def start_run(run_id: str | None = None, experiment_id: str | int | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None, tags: Mapping[str, Any] | None = None,
              description: str | None = None, log_system_metrics: bool | None = None, *,
              experiment: str | None = None, name: str | None = None, home: str | Path | None = None,
              params: Mapping[str, Any] | None = None, spool: str | Path | None = None,
              flush_interval: float | None = None, capture_git: bool = True) -> ActiveRun:
    """Start a run, or resume one (``run_id`` or $MLOPS_RUN_ID), and make it the active one.

    The signature is MLflow's (a positional first argument is a run id to resume), plus our keywords:
    ``experiment`` (a name, created if needed), ``name`` (= run_name), ``params``, ``home`` (the workspace),
    ``spool``. Records go to the workspace (``home``, else set_tracking_uri(), else $MLOPS_DESKTOP_HOME, else the
    default one), or to a spool file when ``spool`` or $MLOPS_SPOOL is set (offline or remote runs; import with
    `mlops-desktop runs sync`).
    """
    from mlops_desktop.tracking import context
    from mlops_desktop.tracking.mlflow_api.convert import random_run_name, split_system_tags

    if _runs and not nested and not (parent_run_id and parent_run_id == _runs[-1].uuid) and not run_id:
        raise UsageError(f"run {_runs[-1].uuid} is already active",
                         hint="end it with end_run() first, or pass nested=True to start a run inside it")
    if parent_run_id and _runs and parent_run_id != _runs[-1].uuid:
        raise UsageError(f"the active run {_runs[-1].uuid} is not the parent_run_id {parent_run_id}",
                         hint="end the active run first with end_run()")
    if log_system_metrics:
        import warnings

        warnings.warn("log_system_metrics is not recorded by MLOps Desktop: the Hosts view shows CPU, memory "
                      "and GPU load live", stacklevel=2)
    resume = run_id is not None
    run_uuid = run_id or envvars.MLOPS_RUN_ID.get() or uuidlib.uuid4().hex
    parent = parent_run_id or (_runs[-1].uuid if nested and _runs else None)
    fields, user_tags = split_system_tags(tags or {})
    run_name = run_name or name or fields.pop("name", None)
    notes = description if description is not None else fields.pop("notes", None)
    parent = parent or fields.pop("parent_uuid", None)
    spool_path = spool or envvars.MLOPS_SPOOL.get()
    sink: Sink
    root: Path | None = None
    if spool_path:
        sink = SpoolSink(spool_path)
        interval = flush_interval if flush_interval is not None else envvars.MLOPS_FLUSH_INTERVAL.get_float(0.1)
    else:
        from mlops_desktop.workspace import Workspace

        root = context.resolve_home(home)
        workspace = Workspace.open(root)
        sink = StoreSink(workspace)
        interval = flush_interval if flush_interval is not None else envvars.MLOPS_FLUSH_INTERVAL.get_float(
            workspace.settings.flush_interval_s)
    info: dict[str, Any] = {
        "run": run_uuid, "name": run_name, "command": " ".join(map(shlex.quote, sys.argv)),
        "host": socket.gethostname(), "pid": os.getpid(), "start_time": time.time(),
        "parent_uuid": parent, "tags": user_tags, "params": dict(params or {}), "notes": notes,
        "resume": resume, **fields,
    }
    try:
        info.update(_experiment_choice(experiment, experiment_id, root, spool_path is not None))
        if capture_git and "git_commit" not in info:
            info["git_commit"], info["git_dirty"] = _git_state()
        if not info["name"] and not _existing(sink, run_uuid):
            info["name"] = random_run_name()
        sink.start_run(info)
        run = ActiveRun(run_uuid, sink, interval, sink.last_steps(run_uuid), _initial_info(sink, run_uuid, info))
    except BaseException:
        sink.close()
        raise
    with _runs_lock:
        _runs.append(run)
    context.state.last_run_id, context.state.last_run_home = run_uuid, root
    _install_hooks()
    return run


def _existing(sink: Sink, run_uuid: str) -> bool:
    return isinstance(sink, StoreSink) and bool(sink.store.db.query("SELECT 1 FROM runs WHERE uuid = ?", (run_uuid,)))


def _experiment_choice(experiment: str | None, experiment_id: str | int | None, root: Path | None,
                       spooled: bool) -> dict[str, Any]:
    """Which experiment a new run goes to: the argument, set_experiment(), $MLOPS_EXPERIMENT,
    $MLFLOW_EXPERIMENT_NAME, $MLFLOW_EXPERIMENT_ID, else "Default"."""
    from mlops_desktop.tracking import context

    if experiment is not None:
        return {"experiment": experiment}
    if experiment_id is not None:
        return {"experiment_id": _experiment_id(experiment_id)}
    if root is not None and (active := context.active_experiment_id(root)) is not None:
        return {"experiment_id": active}
    if spooled and context.state.experiment_name:
        return {"experiment": context.state.experiment_name}
    name = envvars.MLOPS_EXPERIMENT.get() or envvars.MLFLOW_EXPERIMENT_NAME.get()
    if name:
        return {"experiment": name}
    if (env_id := envvars.MLFLOW_EXPERIMENT_ID.get()) is not None:
        return {"experiment_id": _experiment_id(env_id)}
    return {"experiment": "Default"}


def _experiment_id(value: str | int) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise UsageError(f"experiment ids are numbers, got {value!r}", hint="to name an experiment, use "
                         "set_experiment(NAME) or start_run(experiment=NAME)")
    return int(text)


def _initial_info(sink: Sink, run_uuid: str, info: Mapping[str, Any]) -> Any:
    from mlops_desktop.tracking.mlflow_api.convert import run_info_view
    from mlops_desktop.tracking.mlflow_api.entities import RunInfo

    if isinstance(sink, StoreSink):
        return run_info_view(sink.workspace, sink.store.get_run(run_uuid))
    return RunInfo(run_uuid, None, info.get("name") or "", info.get("user") or "", "RUNNING",
                   int(info["start_time"] * 1000), None, "")


def end_run(status: str = "FINISHED") -> None:
    """End the active run as FINISHED (default), FAILED or KILLED; without one, do nothing."""
    run = active_run()
    if run is not None:
        run.end(status)


def log_metric(key: str, value: Any, step: int | None = None, synchronous: bool | None = None,
               timestamp: int | None = None, run_id: str | None = None, model_id: str | None = None,
               dataset: Any = None) -> None:
    """Log one point (a number or a 0-d tensor); ``timestamp`` in ms as in MLflow. Returns in about a µs.

    MLflow's signature; ``synchronous=True`` waits until the point is stored. ``model_id`` and ``dataset``
    (MLflow 3's metric links to a logged model or a dataset) are accepted and not recorded.
    """
    run = _runs[-1] if _runs and run_id is None else _target(run_id)
    tv = type(value)
    if (tv is not float and tv is not int and not _number_like(value)) or type(key) is not str or not key:
        _reject(key, value)
    run._append((key, value, step, _time() if timestamp is None else timestamp * 0.001))
    if synchronous:
        run.flush()


def log_metrics(metrics: Mapping[str, Any], step: int | None = None, synchronous: bool | None = None,
                run_id: str | None = None, timestamp: int | None = None, model_id: str | None = None,
                dataset: Any = None) -> None:
    run = _target(run_id)
    run.log_metrics(metrics, step, timestamp)
    if synchronous:
        run.flush()


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param (immutable once logged); returns the value, as MLflow does."""
    return _current().log_param(key, value)


def log_params(params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None) -> None:
    _target(run_id).log_params(params)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    _current().set_tag(key, value)


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    _current().set_tags(tags)


def delete_tag(key: str) -> None:
    run = _current()
    run._sink.delete_tag(run.uuid, key)
    run._local_tags.pop(key, None)


def log_artifact(local_path: str | Path, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Copy a file (or a folder, under its own name) into the run's artifacts, below ``artifact_path``."""
    _target(run_id).log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Copy the contents of a folder into the run's artifacts, below ``artifact_path`` (MLflow's log_artifacts)."""
    folder = Path(local_dir)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", hint="log_artifact() logs a single file")
    run = _target(run_id)
    for child in sorted(folder.iterdir()):
        run.log_artifact(child, artifact_path)


def _target(run_id: str | None) -> ActiveRun:
    """The active run, or the active run with this id; another run is written through MlflowClient instead."""
    if run_id is None:
        return _current()
    for run in reversed(_runs):
        if run.uuid == run_id:
            return run
    raise UsageError(f"run {run_id} is not active in this process",
                     hint="start or resume it with start_run(run_id), or write to it with MlflowClient()")


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
                killed = issubclass(exc_type, KeyboardInterrupt)
                if not killed:
                    run.record_error(exc_type, exc, tb)
                run.end("killed" if killed else "failed")
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
