"""The prediction log of a deployment as one table: the lake dataset `predictions_<model>` plus the closed segments
each replica serves over HTTP (`/predictions/segments`, pulled incrementally into a local cache, so this works for
replicas on other hosts, Swarm or Kubernetes as for local servers), without duplicates.

Rows are the model server's (serving/predlog.py): request_id, ts (UTC), latency_ms, model, version, arm, row, shadow,
the input columns, prediction, proba_<class>.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.monitoring.targets import MonitoredDeployment, ScrapeTarget
from mlops_desktop.serving.segfmt import save_pulled

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)
SEGMENT_RE = re.compile(r"^\d{10}\.parquet$")


def cache_dir(ws: Workspace) -> Path:
    return ws.root / "monitoring" / "segments"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".") or "x"


def pull_segments(ws: Workspace, target: ScrapeTarget, *, timeout: float = 5.0) -> int:
    """Copy the closed segments of `target` that the cache lacks; returns how many were fetched."""
    base = cache_dir(ws) / _safe(target.name)
    try:
        with urllib.request.urlopen(target.url + "/predictions/segments?after=0", timeout=timeout) as resp:  # noqa: S310
            doc = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        log.debug("no segments from %s: %s", target.url, exc)
        return 0
    folder = base / _safe(str(doc.get("log_dir") or "log"))
    folder.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for seg in doc.get("segments") or []:
        seq = int(seg["seq"])
        path = folder / f"{seq:010d}.parquet"
        if path.exists():
            continue
        try:
            with urllib.request.urlopen(f"{target.url}/predictions/segments/{seq}", timeout=timeout) as resp:  # noqa: S310
                data = resp.read()
        except OSError:
            continue
        try:
            save_pulled(data, path)  # a column-lines segment (a server without pyarrow) becomes Parquet here
        except (OSError, ValueError) as exc:
            log.warning("segment %d of %s not kept: %s", seq, target.url, exc)
            continue
        fetched += 1
    return fetched


def segment_files(ws: Workspace, dep: MonitoredDeployment) -> list[Path]:
    out: list[Path] = []
    for t in dep.targets:
        if t.role == "router":
            continue
        folder = cache_dir(ws) / _safe(t.name)
        if folder.is_dir():
            out += sorted(p for p in folder.rglob("*.parquet") if SEGMENT_RE.match(p.name))
    return out


def lake_files(ws: Workspace, model: str) -> list[Path]:
    from mlops_desktop.data import catalog, lake
    from mlops_desktop.serving.lakesink import dataset_name

    if not model:
        return []
    version = catalog.latest(ws.db, dataset_name(model))
    return list(lake.data_files(ws, version)) if version is not None else []


def read_window(files: list[Path], *, since: float | None = None, until: float | None = None,
                include_shadow: bool = True) -> pl.DataFrame:
    """Rows of the given Parquet files (lake parts, segments) within [since, until], deduplicated."""
    import datetime as dt

    import polars as pl

    frames = []
    for f in files:
        with contextlib.suppress(OSError, pl.exceptions.ComputeError):
            lf = pl.scan_parquet(str(f))
            if "shadow" not in lf.collect_schema().names():
                lf = lf.with_columns(pl.lit(False).alias("shadow"))
            frames.append(lf)
    if not frames:
        return pl.DataFrame()
    lf = pl.concat(frames, how="diagonal_relaxed")
    if since is not None:
        lf = lf.filter(pl.col("ts") >= dt.datetime.fromtimestamp(since, dt.UTC))
    if until is not None:
        lf = lf.filter(pl.col("ts") < dt.datetime.fromtimestamp(until, dt.UTC))
    if not include_shadow:
        lf = lf.filter(~pl.col("shadow").fill_null(False))
    return lf.unique(subset=["request_id", "row", "shadow", "version"], keep="first",
                     maintain_order=True).collect()


def deployment_window(ws: Workspace, dep: MonitoredDeployment, *, since: float | None = None,
                      until: float | None = None, pull: bool = True) -> pl.DataFrame:
    """The deployment's prediction log in [since, until]: its model's lake dataset plus fresh segments."""
    if pull:
        for t in dep.targets:
            if t.role != "router":
                pull_segments(ws, t)
    model = dep.model or next((t.model for t in dep.targets if t.model), "")
    return read_window(lake_files(ws, model) + segment_files(ws, dep), since=since, until=until)


def input_columns(frame: Any) -> list[str]:
    from mlops_desktop.serving.predlog import META

    skip = set(META) | {"prediction"}
    return [c for c in frame.columns if c not in skip and not c.startswith("proba_")]
