"""Drift of a deployment's served traffic (a window of its prediction log) against the training data of the model
version that served it, and of its predictions.

Reference: the sketch (sketch.py) of the exact training dataset version the version's run read (the registry's
`inputs`), computed once on first use and kept in `monitor_sketches` (`ensure_sketch`; the registry can call it at
registration to pay the cost up front). Drift never reads the training data again.
Prediction drift: against the training target column when the sketch has it (the run's `target` param), else against
the previous window of the same length. Overrides per feature (`methods`, `thresholds`, "*" for all) come from the
caller or `[monitoring.drift]` of the project's mlops.toml. Scores are written as series (`drift.share`,
`drift.dataset`, `drift.any`, `drift.<feature>`, labelled by version), so rules such as `drift.any > 0.2 for 10m` work.
`drift.any` is the largest per-feature score on a distance scale (a distance itself; 1 - p for the p-value tests).
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.monitoring.drift import DriftReport, FeatureDrift, compute_drift, feature_drift
from mlops_desktop.monitoring.sketch import Sketch, build_sketch, sketch_series

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.monitoring.targets import MonitoredDeployment
    from mlops_desktop.workspace import Workspace


@dataclass
class VersionDrift:
    version: str
    rows: int
    report: DriftReport
    prediction: FeatureDrift | None
    prediction_reference: str
    reference: str

    @property
    def any_score(self) -> float:
        scores = [distance_score(f) for f in self.report.features if not math.isnan(f.score)]
        return max(scores) if scores else math.nan

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"version": self.version, "rows": self.rows, "reference": self.reference,
                "prediction_reference": self.prediction_reference, "drift_any": _num(self.any_score),
                "prediction": asdict(self.prediction) if self.prediction else None} | self.report.to_dict()


@dataclass
class LiveDrift:
    deployment: str
    window_s: float
    since: float
    until: float
    versions: list[VersionDrift] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "window_s": self.window_s, "since": self.since, "until": self.until,
                "versions": [v.to_dict() for v in self.versions], "notes": self.notes}


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def distance_score(f: FeatureDrift) -> float:
    return 1.0 - f.score if f.score_is_p_value else f.score


# -- the reference sketch ------------------------------------------------------------------------------------------
def stored_sketch(ws: Workspace, model: str, version: str) -> tuple[Sketch, str | None] | None:
    rows = ws.db.query("SELECT sketch, target FROM monitor_sketches WHERE model = ? AND version = ?",
                       (model, str(version)))
    if not rows:
        return None
    return Sketch.from_dict(json.loads(zlib.decompress(rows[0][0]))), rows[0][1]


def save_sketch(ws: Workspace, model: str, version: str, sketch: Sketch, target: str | None) -> None:
    blob = zlib.compress(json.dumps(sketch.to_dict(), separators=(",", ":")).encode(), 6)
    ws.db.write(lambda c: c.execute(
        "INSERT OR REPLACE INTO monitor_sketches(model, version, source, target, sketch, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)", (model, str(version), sketch.source, target, blob, time.time())))


def ensure_sketch(ws: Workspace, model: str, version: str) -> tuple[Sketch, str | None]:
    """The training-data sketch of MODEL/VERSION: stored, or computed once from the lake and stored."""
    found = stored_sketch(ws, model, version)
    if found is not None:
        return found
    from mlops_desktop import registry
    from mlops_desktop.data import catalog, lake

    mv = registry.resolve(ws, f"{model}/{version}")
    training = [d for d in mv.inputs if d.get("context") in ("training", "input", "", None)] or list(mv.inputs)
    if not training:
        raise NotFoundError(f"model version {model}/{version} records no training dataset, so there is no "
                            "reference for drift", hint="train from a lake dataset (its run records the version)")
    d = training[0]
    dv = catalog.resolve(ws.db, f"{d['dataset']}@{d['version']}")
    target = None
    if mv.run_uuid:
        try:
            target = ws.tracking.get_run(mv.run_uuid).params.get("target")
        except Exception:
            target = None
    sketch = build_sketch(lake.scan(ws, dv), source=f"lake:{dv.ref}")
    save_sketch(ws, model, version, sketch, target)
    return sketch, target


# -- drift of a window ---------------------------------------------------------------------------------------------
def drift_of_frame(sketch: Sketch, frame: pl.DataFrame, *, target: str | None = None,
                   previous: pl.DataFrame | None = None, methods: Mapping[str, str] | None = None,
                   thresholds: Mapping[str, float] | None = None, version: str = "",
                   reference: str = "") -> VersionDrift:
    """Features of `frame` (prediction-log rows) against `sketch`, and its predictions against the target/previous."""
    from mlops_desktop.serving.predlog import stored_name

    current: dict[str, Any] = {}
    notes = []
    for name in sketch.columns:
        if name == target:
            continue
        col = stored_name(name)
        if col in frame.columns:
            current[name] = frame.get_column(col)
    columns = list(current)
    if not columns:
        notes.append("the prediction log has none of the reference's columns")
    report = compute_drift(sketch, current, columns=columns, methods=methods, thresholds=thresholds)
    report.notes += notes
    pred, pred_ref = None, ""
    if "prediction" in frame.columns and len(frame):
        override = (methods or {}).get("prediction"), (thresholds or {}).get("prediction")
        if target and target in sketch.columns:
            ref_col = sketch.columns[target]
            if ref_col.kind == "categorical" and frame.get_column("prediction").dtype.is_numeric():
                preds: Any = frame.get_column("prediction").cast(str)
            else:
                preds = frame.get_column("prediction")
            pred = feature_drift(ref_col, preds, *override)
            pred_ref = f"training target {target!r}"
        elif previous is not None and "prediction" in previous.columns and len(previous):
            ref_col = sketch_series(previous.get_column("prediction"))
            pred = feature_drift(ref_col, frame.get_column("prediction"), *override)
            pred_ref = "the previous window"
        if pred is not None:
            pred.column = "prediction"
    return VersionDrift(version, len(frame), report, pred, pred_ref, reference or sketch.source)


def drift_settings(project: str | None) -> tuple[dict[str, str], dict[str, float], float | None]:
    """[monitoring.drift] of a project's mlops.toml: methods, thresholds (per feature, "*" for all), window."""
    if not project:
        return {}, {}, None
    from pathlib import Path

    from mlops_desktop.monitoring.alerts import read_monitoring_section
    from mlops_desktop.monitoring.rules import parse_duration

    path = Path(project)
    path = path / "mlops.toml" if path.is_dir() else path
    section = read_monitoring_section(path).get("drift") or {}
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [monitoring.drift] must be a table")
    methods = {str(k): str(v) for k, v in (section.get("methods") or {}).items()}
    try:
        thresholds = {str(k): float(v) for k, v in (section.get("thresholds") or {}).items()}
    except (TypeError, ValueError):
        raise UsageError(f"{path}: [monitoring.drift] thresholds must be numbers") from None
    window = parse_duration(section["window"], f"{path}: monitoring.drift.window") if "window" in section else None
    return methods, thresholds, window


def deployment_drift(ws: Workspace, deployment: str | MonitoredDeployment, *, window_s: float = 3600.0, now: float | None = None,
                     methods: Mapping[str, str] | None = None, thresholds: Mapping[str, float] | None = None,
                     frame: pl.DataFrame | None = None, record: bool = True, pull: bool = True) -> LiveDrift:
    """Drift of the last `window_s` of the deployment's prediction log, per served version."""
    import polars as pl

    from mlops_desktop.monitoring import predictions, targets
    from mlops_desktop.monitoring.series import Point, SeriesStore, label_key

    if window_s <= 0:
        raise UsageError("the drift window must be longer than 0 s", hint="e.g. --window 1h")
    now = time.time() if now is None else now
    since = now - window_s
    dep = targets.resolve(ws, deployment) if isinstance(deployment, str) else deployment
    out = LiveDrift(dep.name, window_s, since, now)
    if frame is None:
        frame = predictions.deployment_window(ws, dep, since=since - window_s, until=now, pull=pull)
    if frame.is_empty() or "ts" not in frame.columns:
        out.notes.append(f"no predictions logged in the last {window_s:.0f} s")
        return out
    frame = frame.filter(~pl.col("shadow").fill_null(False)) if "shadow" in frame.columns else frame
    import datetime as dt

    cut = dt.datetime.fromtimestamp(since, dt.UTC)
    model = dep.model or str(frame.get_column("model")[0])
    points: list[Point] = []
    for version in sorted(frame.get_column("version").unique().to_list(), key=str):
        rows = frame.filter(pl.col("version") == version)
        cur, prev = rows.filter(pl.col("ts") >= cut), rows.filter(pl.col("ts") < cut)
        if cur.is_empty():
            continue
        try:
            sketch, target = ensure_sketch(ws, model, str(version))
        except (NotFoundError, UsageError) as exc:
            out.notes.append(f"version {version}: {exc.message}")
            continue
        vd = drift_of_frame(sketch, cur, target=target, previous=prev, methods=methods, thresholds=thresholds,
                            version=str(version))
        out.versions.append(vd)
        labels = label_key({"version": str(version)})
        points += [Point("drift.share", labels, now, vd.report.share_drifted),
                   Point("drift.dataset", labels, now, float(vd.report.dataset_drift)),
                   Point("drift.any", labels, now, vd.any_score)]
        points += [Point(f"drift.{f.column}", labels, now, distance_score(f)) for f in vd.report.features]
        if vd.prediction is not None:
            points.append(Point("drift.prediction", labels, now, distance_score(vd.prediction)))
    if record and points:
        SeriesStore(ws.db).append(dep.name, points)
    return out


def drift_timeline(sketch: Sketch, frame: pl.DataFrame, *, since: float, until: float, buckets: int = 12,
                   target: str | None = None) -> dict[str, list[float]]:
    """Per feature, the drift score (distance scale) of each of `buckets` equal slices of [since, until]; NaN for an
    empty slice. What the GUI's sparklines draw."""
    import datetime as dt

    import polars as pl

    out: dict[str, list[float]] = {}
    step = (until - since) / max(buckets, 1)
    for i in range(buckets):
        lo = dt.datetime.fromtimestamp(since + i * step, dt.UTC)
        hi = dt.datetime.fromtimestamp(since + (i + 1) * step, dt.UTC)
        part = frame.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
        scores: dict[str, float] = {}
        if len(part):
            vd = drift_of_frame(sketch, part, target=target)
            scores = {f.column: distance_score(f) for f in vd.report.features}
            if vd.prediction is not None:
                scores["prediction"] = distance_score(vd.prediction)
        for name in [c for c in sketch.columns if c != target] + ["prediction"]:
            out.setdefault(name, []).append(scores.get(name, math.nan))
    return out


def overlay(ref: Any, values: Any, bins: int = 30) -> dict[str, Any]:
    """Reference vs current distribution of one column for a plot: shares per bin (numbers) or per category."""
    import numpy as np

    from mlops_desktop.monitoring.drift import _Counted, _numeric_values, _text_counts, ref_cdf

    if ref.kind == "numeric":
        cur = _numeric_values(ref.name, values)
        lo = min(float(ref.minimum or 0.0), float(cur.min()) if len(cur) else math.inf)
        hi = max(float(ref.maximum or 0.0), float(cur.max()) if len(cur) else -math.inf)
        if not hi > lo:
            lo, hi = lo - 0.5, lo + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        cdf = ref_cdf(ref, edges)
        cdf[-1] = 1.0
        cur_share = np.histogram(cur, edges)[0] / max(len(cur), 1)
        return {"kind": "numeric", "edges": edges.tolist(), "reference": np.diff(cdf).tolist(),
                "current": cur_share.tolist()}
    counted = _Counted(ref, None, _text_counts(values))
    keys, ref_counts, cur_counts = counted.keyed()
    order = np.argsort(-ref_counts)[:20]
    return {"kind": "categorical", "categories": [keys[i] for i in order],
            "reference": (ref_counts[order] / max(ref_counts.sum(), 1)).tolist(),
            "current": (cur_counts[order] / max(cur_counts.sum(), 1)).tolist()}
