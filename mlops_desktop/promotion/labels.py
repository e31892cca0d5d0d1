"""Labelling live samples of a review: the reviewer picks the champion's or the candidate's answer, or types the
right one. Labels are kept with the review and written to the lake dataset `labels_<model>` (one version holding
every label of the model's reviews, with the inputs), so training and evaluation can reuse them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from mlops_desktop import audit
from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.promotion import requests as rq
from mlops_desktop.promotion.samples import Sample, load

if TYPE_CHECKING:
    from mlops_desktop.data.catalog import DatasetVersion
    from mlops_desktop.workspace import Workspace

PICKS = {"champion": "champion", "c": "champion", "candidate": "candidate", "n": "candidate"}


def dataset_for(model: str) -> str:
    from mlops_desktop.serving.lakesink import dataset_name

    return dataset_name(model, prefix="labels")


def _find(ws: Workspace, request_id: int, spec: str | int) -> Sample:
    kept = load(ws, request_id)
    if not kept:
        raise NotFoundError(f"promotion request {request_id} has no live samples to label",
                            hint="samples come from a shadow check; its policy has none, or no traffic reached it")
    text = str(spec)
    for s in kept:
        if text == str(s.sample) or text == s.key or text == s.source_request:
            return s
    raise NotFoundError(f"promotion request {request_id} has no sample {text!r}",
                        hint=f"samples 1-{len(kept)}, or REQUEST_ID:ROW (see `reviews show {request_id} --samples`)")


def _typed(text: str, like: Any) -> Any:
    """A typed label in the type of the answers it replaces (so 1 stays a number where answers are numbers)."""
    if isinstance(like, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise UsageError(f"label {text!r}: the answers are true/false")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"label {text!r}: the answers are whole numbers") from None
    if isinstance(like, float):
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"label {text!r}: the answers are numbers") from None
    return text


def label(ws: Workspace, request_id: int | str, sample: str | int, value: str, *, actor: str | None = None,
          typed: bool = False) -> Sample:
    """Label one sample: `champion`/`c` or `candidate`/`n` picks that answer; anything else (or `typed=True`) is
    the right answer itself."""
    req = rq.get(ws, request_id)
    if req.state in ("rejected", "expired", "cancelled", "failed"):
        raise UsageError(f"promotion request {req.id} is {req.state}; its samples can no longer be labelled")
    value = str(value)
    if not value.strip():
        raise UsageError("a label cannot be empty")
    found = _find(ws, req.id, sample)
    pick = None if typed else PICKS.get(value.strip().lower())
    if pick == "champion":
        answer = found.champion
    elif pick == "candidate":
        answer = found.candidate
    else:
        answer = _typed(value, found.champion if found.champion is not None else found.candidate)
    picked = pick or "typed"
    actor = actor or audit.current_actor()

    def tx(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO promotion_labels(request_id, sample, label_json, picked, actor, ts) "
                     "VALUES (?,?,?,?,?,?) ON CONFLICT(request_id, sample) DO UPDATE SET label_json = excluded."
                     "label_json, picked = excluded.picked, actor = excluded.actor, ts = excluded.ts",
                     (req.id, found.sample, json.dumps(answer), picked, actor, time.time()))
        rq.record(conn, "promotion.labelled", req.id, actor=actor, to_value=json.dumps(answer),
                  from_value=found.key, reason=picked, details={"sample": found.sample})

    ws.db.write(tx)
    return _find(ws, req.id, found.sample)


def export(ws: Workspace, model: str) -> DatasetVersion | None:
    """Write every label of the model's reviews as a new version of `labels_<model>` (None: no labels, or the
    same labels as the latest version)."""
    import polars as pl

    from mlops_desktop.data import catalog
    from mlops_desktop.data.ingest import derive

    rows = ws.db.query(
        "SELECT r.id, r.version, r.champion_version, s.source_request, s.source_row, s.ts, s.inputs_json, "
        "s.champion_json, s.candidate_json, s.agree, l.label_json, l.picked, l.actor, l.ts "
        "FROM promotion_labels l JOIN promotion_samples s ON s.request_id = l.request_id AND s.sample = l.sample "
        "JOIN promotion_requests r ON r.id = l.request_id WHERE r.model = ? ORDER BY r.id, s.sample", (model,))
    if not rows:
        return None
    records: list[dict[str, Any]] = []
    for rid, version, champ, req_id, row, ts, inputs, c_json, n_json, agree, l_json, picked, actor, lts in rows:
        records.append({**json.loads(inputs), "review": rid, "candidate_version": version,
                        "champion_version": champ, "request_id": req_id, "row": row, "served_at": ts,
                        "champion_prediction": json.loads(c_json), "candidate_prediction": json.loads(n_json),
                        "agree": bool(agree), "label": json.loads(l_json), "picked": picked, "labelled_by": actor,
                        "labelled_at": lts})
    for key in ("champion_prediction", "candidate_prediction", "label"):
        kinds = {type(r[key]) for r in records if r[key] is not None}
        if len(kinds) > 1:
            for r in records:
                r[key] = None if r[key] is None else str(r[key])
    frame = pl.DataFrame(records, infer_schema_length=None)
    fingerprint = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
    name = dataset_for(model)
    latest = catalog.latest(ws.db, name)
    if latest is not None and latest.producer_fingerprint == fingerprint:
        return latest
    result = derive(ws, name, frame.lazy(), label=f"labels of {model} reviews", parent_ids=[],
                    step=f"promotion labels {model}", fingerprint=fingerprint,
                    source={"kind": "promotion-labels", "model": model,
                            "reviews": sorted({r["review"] for r in records})})
    return catalog.resolve(ws.db, f"{name}@{result.version}")
