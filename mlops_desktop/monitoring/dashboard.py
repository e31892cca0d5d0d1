"""What the Monitoring area shows, computed off the GUI thread (no Qt here): the plotted series of a deployment,
its drift with per-feature timelines and distribution overlays, the arms, the alerts and the revert target."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlops_desktop.progress import Progress
    from mlops_desktop.workspace import Workspace

# (plot, series name, label filter): the live dashboard's panels
PLOTS = {
    "requests": ("Requests per second", "requests_per_s", "req/s"),
    "errors": ("Error rate (5xx share)", "error_rate", ""),
    "latency": ("Latency p50 / p95 / p99", "p99_latency", "s"),
    "load": ("In flight, targets down, host CPU %", "in_flight", ""),
}


@dataclass
class Overview:
    deployment: str
    kind: str = ""
    model: str = ""
    stable: str = ""
    arms: dict[str, str] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    last_ts: float | None = None
    error: str = ""


def deployments(ws: Workspace, *, progress: Progress | None = None) -> list[str]:
    from mlops_desktop.monitoring import targets
    from mlops_desktop.monitoring.series import SeriesStore

    return sorted(set(targets.known_names(ws)) | set(SeriesStore(ws.db).deployments()))


def overview(ws: Workspace, deployment: str, window_s: float = 900.0, *,
             progress: Progress | None = None) -> Overview:
    """The deployment's targets and its stored series of the last `window_s` (per arm and for the whole)."""
    from mlops_desktop.errors import MlopsError
    from mlops_desktop.monitoring import targets
    from mlops_desktop.monitoring.series import SeriesStore

    ov = Overview(deployment)
    try:
        dep = targets.resolve(ws, deployment)
        ov.kind, ov.model, ov.stable, ov.arms = dep.kind, dep.model, dep.stable, dep.arms
        ov.targets = [t.__dict__ | {"name": t.name} for t in dep.targets]
    except MlopsError as exc:
        ov.error = exc.message
    store = SeriesStore(ws.db)
    infos = store.list_series(deployment)
    latest = max((i.last_ts for i in infos if i.last_ts is not None and not i.name.startswith("drift.")),
                 default=None)  # the collector's last scrape (drift is computed at other times)
    now = time.time()
    ov.last_ts = latest
    # the last window that has data: a deployment nobody watched lately still shows its last quarter hour
    since = (min(now, latest) if latest is not None else now) - window_s
    for info in infos:
        if "target" in info.labels and info.name != "up":
            continue
        if info.name.startswith("drift.") and info.name not in ("drift.any", "drift.share"):
            continue
        key = (info.name, json.dumps(info.labels, sort_keys=True, separators=(",", ":")))
        ov.series[key] = store.read(deployment, info.name, info.labels, since=since)
    return ov


def drift_view(ws: Workspace, deployment: str, window_s: float = 3600.0, *, buckets: int = 12,
               progress: Progress | None = None) -> dict[str, Any]:
    """The drift report, per-feature timelines and reference-vs-current overlays of each served version."""
    import datetime as dt

    import polars as pl

    from mlops_desktop.errors import MlopsError
    from mlops_desktop.monitoring import live_drift, predictions, targets

    now = time.time()
    dep = targets.resolve(ws, deployment)
    if progress is not None:
        progress.update(0.1, "reading the prediction log")
    frame = predictions.deployment_window(ws, dep, since=now - 2 * window_s, until=now)
    report = live_drift.deployment_drift(ws, dep, window_s=window_s, now=now, frame=frame)
    timelines: dict[str, dict[str, list[float]]] = {}
    overlays: dict[str, dict[str, Any]] = {}
    if not frame.is_empty():
        cut = dt.datetime.fromtimestamp(now - window_s, dt.UTC)
        current = frame.filter(pl.col("ts") >= cut)
        if "shadow" in current.columns:
            current = current.filter(~pl.col("shadow").fill_null(False))
        model = dep.model or str(frame.get_column("model")[0])
        for vd in report.versions:
            if progress is not None:
                progress.check()
            try:
                sketch, target = live_drift.ensure_sketch(ws, model, vd.version)
            except MlopsError:
                continue
            rows = current.filter(pl.col("version") == vd.version)
            first, last = rows.get_column("ts").min(), rows.get_column("ts").max()
            start = max(now - window_s, first.timestamp()) if isinstance(first, dt.datetime) else now - window_s
            end = last.timestamp() + 1e-3 if isinstance(last, dt.datetime) else now  # the span with data
            timelines[vd.version] = live_drift.drift_timeline(sketch, rows, since=start, until=end,
                                                              buckets=buckets, target=target)
            from mlops_desktop.serving.predlog import stored_name

            ov: dict[str, Any] = {}
            for f in vd.report.features:
                col = stored_name(f.column)
                if col in rows.columns:
                    ov[f.column] = live_drift.overlay(sketch.columns[f.column], rows.get_column(col))
            if target and target in sketch.columns and "prediction" in rows.columns:
                preds = rows.get_column("prediction")
                if sketch.columns[target].kind == "categorical":
                    preds = preds.cast(pl.String)
                ov["prediction"] = live_drift.overlay(sketch.columns[target], preds)
            overlays[vd.version] = ov
    return {"report": report, "timelines": timelines, "overlays": overlays}


def arms_view(ws: Workspace, deployment: str, window_s: float = 3600.0, *, outcomes: str | None = None,
              outcome_column: str = "outcome", progress: Progress | None = None) -> Any:
    from mlops_desktop.monitoring.arms import compare_arms

    return compare_arms(ws, deployment, window_s=window_s, outcomes=outcomes or None,
                        outcome_column=outcome_column or "outcome")


def alerts_view(ws: Workspace, deployment: str | None, *, progress: Progress | None = None) -> dict[str, Any]:
    from mlops_desktop.monitoring.alerts import AlertStore

    store = AlertStore(ws)
    return {"alerts": store.alerts(deployment=deployment), "rules": store.rules(deployment),
            "silences": store.silences(active_at=time.time())}


def sparkline(values: list[float]) -> str:
    """A text sparkline (▁▂▃▄▅▆▇█, '·' for no data) scaled to [0, max(0.3, max)] so small noise stays low."""
    marks = "▁▂▃▄▅▆▇█"
    finite = [v for v in values if v == v]
    top = max([0.3, *finite]) if finite else 1.0
    return "".join("·" if v != v else marks[min(len(marks) - 1, int(v / top * (len(marks) - 1) + 0.5))]
                   for v in values)
