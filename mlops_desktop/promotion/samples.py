"""Live samples for a review: the shadow comparison's requests joined with both arms' prediction logs (inputs, the
champion's answer, the candidate's answer), disagreements first, kept with the review (table promotion_samples).

Prediction rows come from the managed servers' log folders of the model (`<workspace>/serving/<server>/
predictions/`), the lake dataset `predictions_<model>` and any folders the policy names; the same row found twice
(a segment the lake committer also linked) counts once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.registry.entities import ModelVersion
    from mlops_desktop.workspace import Workspace


@dataclass(frozen=True)
class Sample:
    sample: int
    source_request: str
    source_row: int
    ts: float
    inputs: dict[str, Any]
    champion: Any
    candidate: Any
    agree: bool
    label: Any = None
    picked: str | None = None       # champion | candidate | typed
    labelled_by: str | None = None

    @property
    def key(self) -> str:
        return f"{self.source_request}:{self.source_row}"

    def to_dict(self) -> dict[str, Any]:
        return {"sample": self.sample, "request": self.source_request, "row": self.source_row, "ts": self.ts,
                "inputs": self.inputs, "champion": self.champion, "candidate": self.candidate, "agree": self.agree,
                "label": self.label, "picked": self.picked, "labelled_by": self.labelled_by}


def log_folders(ws: Workspace, model: str, extra: tuple[str, ...] = ()) -> list[Path]:
    """Prediction-log folders of the model's managed servers, and the extra folders given."""
    from mlops_desktop.serving import manager

    folders = [Path(p) for p in extra]
    for server in manager.list_servers(ws):
        if server.model == model:
            folders.append(Path(server.run_dir) / "predictions")
    return [f for f in dict.fromkeys(folders) if f.is_dir()]


def _read(files: list[Path], request_ids: set[str]) -> pl.DataFrame:
    import polars as pl

    frames = []
    for f in files:
        try:
            lf = pl.scan_parquet(str(f))
            names = lf.collect_schema().names()
            if "request_id" not in names:
                continue
            if "shadow" not in names:
                lf = lf.with_columns(pl.lit(False).alias("shadow"))
            frames.append(lf.filter(pl.col("request_id").is_in(list(request_ids))).collect())
        except (OSError, pl.exceptions.PolarsError):
            continue  # a segment being renamed or removed by retention: the others still count
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def prediction_rows(ws: Workspace, model: str, request_ids: set[str], extra: tuple[str, ...] = ()) -> pl.DataFrame:
    from mlops_desktop.data import catalog, lake
    from mlops_desktop.serving.lakesink import dataset_name

    files: list[Path] = []
    for folder in log_folders(ws, model, extra):
        files += sorted(folder.rglob("*.parquet"))
    version = catalog.latest(ws.db, dataset_name(model))
    if version is not None:
        files += lake.data_files(ws, version)
    frame = _read(files, request_ids)
    if frame.height:
        frame = frame.unique(subset=["request_id", "row", "shadow", "version"], keep="first", maintain_order=True)
    return frame


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def join_samples(rows: pl.DataFrame, candidate: ModelVersion, comparisons: pl.DataFrame,
                 limit: int) -> list[Sample]:
    """One sample per compared input row: disagreements first (newest first within each group)."""
    import polars as pl

    from mlops_desktop.serving.predlog import stored_name

    if rows.height == 0 or "prediction" not in rows.columns:
        return []
    inputs = [(c.name, stored_name(c.name)) for c in candidate.signature.inputs if stored_name(c.name) in rows.columns]
    shadow = rows.filter(pl.col("shadow") & (pl.col("version") == str(candidate.version)))
    primary = rows.filter(~pl.col("shadow"))
    keep = ["request_id", "row", "ts", "prediction", *[s for _, s in inputs]]
    joined = primary.select(keep).join(shadow.select(["request_id", "row", "prediction"]),
                                       on=["request_id", "row"], suffix="_candidate")
    joined = joined.filter(pl.col("request_id").is_in(comparisons["request_id"].to_list()))
    if joined.height == 0:
        return []
    joined = joined.with_columns((pl.col("prediction").cast(pl.String) == pl.col("prediction_candidate")
                                  .cast(pl.String)).alias("agree"))
    joined = joined.sort(["agree", "ts"], descending=[False, True]).head(limit)
    out = []
    for i, r in enumerate(joined.iter_rows(named=True), start=1):
        ts = r["ts"]
        out.append(Sample(i, r["request_id"], int(r["row"]), ts.timestamp() if hasattr(ts, "timestamp") else 0.0,
                          {name: _json_value(r[s]) for name, s in inputs}, _json_value(r["prediction"]),
                          _json_value(r["prediction_candidate"]), bool(r["agree"])))
    return out


def store(ws: Workspace, request_id: int, samples: list[Sample]) -> None:
    """Replace the review's samples (labels of samples that are still there are kept)."""

    def tx(conn: Any) -> None:
        old = {(r[0], r[1]): r[2] for r in conn.execute(
            "SELECT source_request, source_row, sample FROM promotion_samples WHERE request_id = ?", (request_id,))}
        labels: dict[int, tuple[Any, ...]] = {}
        for sample, label, picked, actor, ts in conn.execute(
                "SELECT sample, label_json, picked, actor, ts FROM promotion_labels WHERE request_id = ?",
                (request_id,)):
            labels[sample] = (label, picked, actor, ts)
        keys_by_old = {v: k for k, v in old.items()}
        conn.execute("DELETE FROM promotion_labels WHERE request_id = ?", (request_id,))
        conn.execute("DELETE FROM promotion_samples WHERE request_id = ?", (request_id,))
        conn.executemany(
            "INSERT INTO promotion_samples(request_id, sample, source_request, source_row, ts, inputs_json, "
            "champion_json, candidate_json, agree) VALUES (?,?,?,?,?,?,?,?,?)",
            [(request_id, s.sample, s.source_request, s.source_row, s.ts, json.dumps(s.inputs),
              json.dumps(s.champion), json.dumps(s.candidate), int(s.agree)) for s in samples])
        new_by_key = {(s.source_request, s.source_row): s.sample for s in samples}
        for old_sample, value in labels.items():
            key = keys_by_old.get(old_sample)
            if key in new_by_key:
                conn.execute("INSERT INTO promotion_labels(request_id, sample, label_json, picked, actor, ts) "
                             "VALUES (?,?,?,?,?,?)", (request_id, new_by_key[key], *value))

    ws.db.write(tx)


def load(ws: Workspace, request_id: int, *, limit: int | None = None, offset: int = 0) -> list[Sample]:
    sql = ("SELECT s.sample, s.source_request, s.source_row, s.ts, s.inputs_json, s.champion_json, s.candidate_json, "
           "s.agree, l.label_json, l.picked, l.actor FROM promotion_samples s LEFT JOIN promotion_labels l "
           "ON l.request_id = s.request_id AND l.sample = s.sample WHERE s.request_id = ? ORDER BY s.sample")
    params: tuple[Any, ...] = (request_id,)
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += (int(limit), int(offset))
    return [Sample(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), json.loads(r[6]), bool(r[7]),
                   json.loads(r[8]) if r[8] is not None else None, r[9], r[10])
            for r in ws.db.query(sql, params)]
