"""Where a back-test is kept: a parent run (its spec as params, each label's metric as a series over windows, the
aggregate), a child run per window (bounds as params, the labels' metrics), and the `backtests` index tables."""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_desktop.backtest.api import BacktestResult, BacktestSpec, WindowResult, to_jsonable
from mlops_desktop.errors import NotFoundError

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

KIND_TAG = "mlops.kind"
ID_TAG = "mlops.backtest.id"


def metric_key(label: str, metric: str) -> str:
    return f"{label}.{metric}"


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def create(ws: Workspace, spec: BacktestSpec, dataset_version: Any, task: str, target: str,
           labels: list[str], parent_run: str | None = None) -> tuple[int, str]:
    """The parent run and the index row, before the first window is scored (a running back-test shows up).

    `parent_run`: an existing run becomes the parent (a job's own run, when the back-test runs as a job)."""
    store = ws.tracking
    experiment = store.get_or_create_experiment(spec.experiment)
    params = {k: ("" if v is None else (",".join(v) if isinstance(v, list) else v))
              for k, v in spec.to_dict().items() if k != "experiment"}
    params |= {"dataset_version": dataset_version.ref, "task": task, "target": target}
    name = f"backtest {dataset_version.ref}: {', '.join(labels)}"
    if parent_run:
        run = store.get_run(parent_run)
        store.log_params(run.uuid, params)
        store.set_tags(run.uuid, {KIND_TAG: "backtest"})
        store.update_run(run.uuid, name=name)
    else:
        run = store.create_run(experiment.id, name=name, command="backtest run", params=params,
                               tags={KIND_TAG: "backtest"})
    store.log_input(run.uuid, dataset_version.name, str(dataset_version.version),
                    digest=dataset_version.content_hash, context="backtest")

    def tx(conn: Any) -> int:
        cur = conn.execute(
            "INSERT INTO backtests (parent_run, dataset, dataset_version, time_col, task, target, labels, spec, "
            "status, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            (run.uuid, dataset_version.name, dataset_version.ref, spec.time_col, task, target, json.dumps(labels),
             json.dumps(spec.to_dict()), run.user, time.time()))
        return int(cur.lastrowid)

    backtest_id = ws.db.write(tx)
    store.set_tags(run.uuid, {ID_TAG: str(backtest_id)})
    return backtest_id, run.uuid


def _stamp_ms(value: Any) -> int:
    import datetime as dt

    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp() * 1000)
    return int(time.time() * 1000)


def add_window(ws: Workspace, backtest_id: int, parent: str, window: WindowResult) -> str:
    """A child run for the window, its points in the parent's series, and its index row."""
    store = ws.tracking
    experiment_id = store.get_run(parent).experiment_id
    child = store.create_run(experiment_id, name=f"window {window.index}", parent_uuid=parent,
                             command="backtest window",
                             params={"window": window.index, "train_start": to_jsonable(window.train_start) or "",
                                     "train_end": to_jsonable(window.train_end) or "",
                                     "test_start": to_jsonable(window.test_start),
                                     "test_end": to_jsonable(window.test_end), "rows": window.rows,
                                     "ragged": window.ragged, "train_rows": window.train_rows or 0},
                             tags={KIND_TAG: "backtest.window", ID_TAG: str(backtest_id)})
    stamp = np.array([_stamp_ms(window.test_start)], dtype=np.int64)
    child_series, parent_series = {}, {}
    for label, per_metric in window.metrics.items():
        for metric, value in per_metric.items():
            if value is None or math.isnan(value):
                continue
            v = np.array([value], dtype=np.float64)
            child_series[metric_key(label, metric)] = (np.zeros(1, dtype=np.int64), stamp, v)
            parent_series[metric_key(label, metric)] = (np.array([window.index], dtype=np.int64), stamp, v)
    parent_series["rows"] = (np.array([window.index], dtype=np.int64), stamp,
                             np.array([window.rows], dtype=np.float64))
    if child_series:
        store.log_metrics_batch(child.uuid, child_series)
    store.log_metrics_batch(parent, parent_series)
    store.set_terminated(child.uuid, "finished")
    window.child_run = child.uuid

    def tx(conn: Any) -> None:
        conn.execute(
            "INSERT INTO backtest_windows (backtest_id, idx, child_run, train_start, train_end, test_start, test_end,"
            " rows, train_rows, ragged, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (backtest_id, window.index, child.uuid, _dumps(window.train_start), _dumps(window.train_end),
             _dumps(window.test_start), _dumps(window.test_end), window.rows, window.train_rows,
             int(window.ragged), json.dumps(_finite(window.metrics))))

    ws.db.write(tx)
    return child.uuid


def _finite(metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    return {label: {k: (None if v is None or math.isnan(v) else v) for k, v in per.items()}
            for label, per in metrics.items()}


def finish(ws: Workspace, backtest_id: int, parent: str, status: str, aggregate: dict[str, dict[str, float]],
           error: str = "") -> None:
    store = ws.tracking
    zero = np.zeros(1, dtype=np.int64)
    now = np.array([int(time.time() * 1000)], dtype=np.int64)
    series = {f"{metric_key(label, metric)}.all": (zero, now, np.array([value], dtype=np.float64))
              for label, per in aggregate.items() for metric, value in per.items()
              if value is not None and not math.isnan(value)}
    if series:
        store.log_metrics_batch(parent, series)
    if error:
        store.set_tags(parent, {"mlops.error": error[:1000]})
    store.set_terminated(parent, status)
    ws.db.write(lambda conn: conn.execute(
        "UPDATE backtests SET status = ?, error = ?, aggregate = ?, finished_at = ? WHERE id = ?",
        (status, error[:4000], json.dumps(_finite(aggregate)), time.time(), backtest_id)))


_COLUMNS = "id, parent_run, dataset_version, task, target, labels, spec, status, error, aggregate, created_at"


def _result(row: tuple, windows: list[WindowResult]) -> BacktestResult:
    (bid, parent, version, task, target, labels, spec, status, error, aggregate, created_at) = row
    return BacktestResult(id=bid, parent_run=parent, windows=windows, aggregate=json.loads(aggregate),
                          dataset_version=version, task=task, target=target, labels=json.loads(labels),
                          status=status, spec=json.loads(spec), error=error, created_at=created_at)


def _parse_time(value: Any, kind: str) -> Any:
    import datetime as dt

    if isinstance(value, str) and kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if isinstance(value, str) and kind == "date":
        return dt.date.fromisoformat(value)
    return value


def load(ws: Workspace, ref: int | str) -> BacktestResult:
    """A back-test by id, or by its parent run's id (a unique prefix is enough)."""
    text = str(ref).strip()
    if text.isdigit():
        rows = ws.db.query(f"SELECT {_COLUMNS} FROM backtests WHERE id = ?", (int(text),))
    else:
        rows = ws.db.query(f"SELECT {_COLUMNS} FROM backtests WHERE parent_run LIKE ? || '%'", (text,))
        if len(rows) > 1:
            raise NotFoundError(f"{text!r} matches {len(rows)} back-tests; give more of the run id or the number")
    if not rows:
        raise NotFoundError(f"no back-test {text!r}", hint="`backtest list` shows them")
    row = rows[0]
    kinds = {"datetime": "datetime", "date": "date"}
    version_schema = _time_kind(ws, row[2], json.loads(row[6]).get("time_col", ""))
    kind = kinds.get(version_schema, "number")
    windows = [WindowResult(index=idx, train_start=_parse_time(_loads(ts), kind), train_end=_parse_time(_loads(te),
                            kind), test_start=_parse_time(_loads(ss), kind), test_end=_parse_time(_loads(se), kind),
                            rows=n, metrics=json.loads(metrics), ragged=bool(ragged), train_rows=train_rows,
                            child_run=child)
               for idx, child, ts, te, ss, se, n, train_rows, ragged, metrics in ws.db.query(
                   "SELECT idx, child_run, train_start, train_end, test_start, test_end, rows, train_rows, ragged, "
                   "metrics FROM backtest_windows WHERE backtest_id = ? ORDER BY idx", (row[0],))]
    return _result(row, windows)


def _time_kind(ws: Workspace, version_ref: str, column: str) -> str:
    from mlops_desktop.data import catalog

    try:
        dtype = catalog.resolve(ws.db, version_ref).schema.get(column, "")
    except Exception:  # noqa: BLE001 - a dataset deleted since: show the bounds as text
        return "text"
    return "datetime" if dtype.startswith("datetime") else dtype


def list_all(ws: Workspace, limit: int = 100) -> list[BacktestResult]:
    rows = ws.db.query(f"SELECT {_COLUMNS} FROM backtests ORDER BY id DESC LIMIT ?", (limit,))
    return [_result(row, []) for row in rows]


def window_count(ws: Workspace, backtest_id: int) -> int:
    return int(ws.db.query("SELECT count(*) FROM backtest_windows WHERE backtest_id = ?", (backtest_id,))[0][0])
