"""The back-test API (what the CLI, the GUI and the promotion checks call): a spec in, a result of windows out.

    spec = BacktestSpec("sales", "ts", ["churn/1", "churn/2"], test_window="7d", stride="7d")
    result = run_backtest(ws, spec, progress=Progress(...))       # stored as runs: a parent and a child per window
    result.windows[0].metrics["churn/1"]["accuracy"]; result.aggregate["churn/2"]["f1"]
    load_backtest(ws, result.id); list_backtests(ws)

Versions are replayed as registered (no refit); with `recipe` (an estimator class path, e.g.
``sklearn.linear_model.Ridge`` or ``sklearn.ensemble.RandomForestRegressor:n_estimators=50,max_depth=8``) a model
is refitted every `refit_every` windows on the rows of its train window only, and scored under the label
``refit`` beside the versions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import threading

    from mlops_desktop.workspace import Workspace

REFIT_LABEL = "refit"


@dataclass
class BacktestSpec:
    dataset: str  # "name" (latest version) or "name@N"
    time_col: str
    versions: Sequence[str]  # model refs: "name/N", "name@alias", "name" (latest); or one comma-separated string
    test_window: str  # 7d, 12h, 500rows, or a number in the time column's unit
    stride: str
    train_window: str | None = None  # None: expanding (from the first row); given: sliding
    gap: str | None = None  # embargo between a train window's end and its test window's start
    refit_every: int | None = None  # walk-forward: refit the recipe every k windows
    recipe: str | None = None
    target: str | None = None  # default: the `target` param of the first version's run
    task: str | None = None  # default: the versions' signature task ("classification" | "regression")
    initial_train: str | None = None  # walk-forward: the first train window's length (default: train_window,
    # else one test window)
    keep_ragged: bool = True  # keep a last window the data ends inside
    experiment: str = "backtests"
    prefer_onnx: bool = True  # score versions through their verified ONNX fast path where they have one

    def version_refs(self) -> list[str]:
        raw: Sequence[str] = self.versions.split(",") if isinstance(self.versions, str) else self.versions
        return [v.strip() for v in raw if v and v.strip()]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["versions"] = self.version_refs()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacktestSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class WindowResult:
    index: int
    train_start: Any  # values of the time column (datetime, date or number); None: no train window
    train_end: Any
    test_start: Any
    test_end: Any
    rows: int
    metrics: dict[str, dict[str, float]]  # label (version ref or "refit") -> metric -> value
    ragged: bool = False
    train_rows: int | None = None  # walk-forward: rows the model in use was fitted on
    child_run: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("train_start", "train_end", "test_start", "test_end"):
            out[key] = to_jsonable(out[key])
        return out


@dataclass
class BacktestResult:
    id: int
    parent_run: str
    windows: list[WindowResult]
    aggregate: dict[str, dict[str, float]]  # label -> metric -> value over all windows' rows
    dataset_version: str = ""
    task: str = ""
    target: str = ""
    labels: list[str] = field(default_factory=list)
    status: str = "finished"
    spec: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    created_at: float = 0.0

    @property
    def metric_names(self) -> list[str]:
        names: list[str] = []
        for per_label in self.aggregate.values():
            names += [m for m in per_label if m not in names]
        return names

    def series(self, label: str, metric: str) -> list[float | None]:
        """One label's metric per window (None where the window had no value)."""
        return [w.metrics.get(label, {}).get(metric) for w in self.windows]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "parent_run": self.parent_run, "status": self.status, "dataset_version":
                self.dataset_version, "task": self.task, "target": self.target, "labels": self.labels,
                "spec": self.spec, "aggregate": self.aggregate, "error": self.error, "created_at": self.created_at,
                "windows": [w.to_dict() for w in self.windows]}


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def run_backtest(ws: Workspace, spec: BacktestSpec, *, progress: Progress | Callable[[float, str], None] | None = None,
                 cancel: threading.Event | None = None, parent_run: str | None = None) -> BacktestResult:
    """Run a back-test to the end and store it; raises Cancelled (the runs are marked killed) when cancelled.

    `parent_run`: store into this existing run (a job's run) instead of a new parent run."""
    from mlops_desktop.backtest.engine import execute

    if progress is None or not isinstance(progress, Progress):
        progress = Progress(progress, cancel_event=cancel)
    elif cancel is not None:
        raise UsageError("give cancel through the Progress object when passing one")
    return execute(ws, spec, progress, parent_run)


def load_backtest(ws: Workspace, ref: int | str) -> BacktestResult:
    from mlops_desktop.backtest.records import load

    return load(ws, ref)


def list_backtests(ws: Workspace, limit: int = 100) -> list[BacktestResult]:
    """The latest back-tests first, without their windows (finished SSH back-test jobs are imported first)."""
    from mlops_desktop.backtest.records import list_all
    from mlops_desktop.backtest.remote import import_pending

    import_pending(ws)
    return list_all(ws, limit)
