"""Build Neptune Exporter exports with pyarrow in the exporter's own schema and layout (for the import tests)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# The exporter's model.SCHEMA, written out here from its documentation (not imported from the code under test).
SCHEMA = pa.schema([
    ("project_id", pa.string()),
    ("run_id", pa.string()),
    ("attribute_path", pa.string()),
    ("attribute_type", pa.string()),
    ("step", pa.decimal128(18, 6)),
    ("timestamp", pa.timestamp("ms", tz="UTC")),
    ("int_value", pa.int64()),
    ("float_value", pa.float64()),
    ("string_value", pa.string()),
    ("bool_value", pa.bool_()),
    ("datetime_value", pa.timestamp("ms", tz="UTC")),
    ("string_set_value", pa.list_(pa.string())),
    ("file_value", pa.struct([("path", pa.string())])),
    ("histogram_value", pa.struct([("type", pa.string()), ("edges", pa.list_(pa.float64())),
                                   ("values", pa.list_(pa.float64()))])),
])
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
VALUE_COLUMN = {"int": "int_value", "float": "float_value", "string": "string_value", "bool": "bool_value",
                "datetime": "datetime_value", "string_set": "string_set_value"}


def folder_name(part: str) -> str:
    """The exporter's file-name rule: unsafe characters to '_' plus a short digest of the original."""
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in part)
    return f"{safe}-{hashlib.blake2b(part.encode(), digest_size=8).hexdigest()}"


def param(project: str, run: str, path: str, kind: str, value: Any) -> dict[str, Any]:
    return {"project_id": project, "run_id": run, "attribute_path": path, "attribute_type": kind,
            VALUE_COLUMN[kind]: value}


def point(project: str, run: str, path: str, kind: str, step: str | float, ts: datetime | None,
          **values: Any) -> dict[str, Any]:
    return {"project_id": project, "run_id": run, "attribute_path": path, "attribute_type": kind,
            "step": Decimal(str(step)).quantize(Decimal("1.000000")), "timestamp": ts, **values}


def sys_rows(project: str, run: str, *, name: str = "", custom_id: str = "", tags: list[str] | None = None,
             created: datetime = T0, failed: bool = False, parent: str | None = None,
             fork_step: float | None = None, owner: str = "ana") -> list[dict[str, Any]]:
    rows = [param(project, run, "sys/id", "string", run),
            param(project, run, "sys/custom_run_id", "string", custom_id or f"custom-{run}"),
            param(project, run, "sys/creation_time", "datetime", created),
            param(project, run, "sys/modification_time", "datetime", created.replace(hour=13)),
            param(project, run, "sys/owner", "string", owner),
            param(project, run, "sys/failed", "bool", failed),
            param(project, run, "sys/running_time", "float", 3600.5),
            param(project, run, "sys/tags", "string_set", tags or [])]
    if name:
        rows.append(param(project, run, "sys/name", "string", name))
    if parent:
        rows.append(param(project, run, "sys/forking/parent", "string", parent))
        rows.append(param(project, run, "sys/forking/step", "float", fork_step or 0.0))
    return rows


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in SCHEMA.names} for r in rows], schema=SCHEMA)


def write_run(data: Path, project: str, run: str, parts: list[pa.Table]) -> list[Path]:
    """data/<project>/<run>_part_N.parquet, as the exporter leaves a finished run."""
    folder = data / folder_name(project)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, part in enumerate(parts):
        path = folder / f"{folder_name(run)}_part_{n}.parquet"
        pq.write_table(part, path, compression="snappy")
        paths.append(path)
    return paths


def put_file(files: Path, project: str, rel: str, content: bytes) -> str:
    target = files / folder_name(project) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return rel


def float_series(project: str, run: str, path: str, steps_unscaled: np.ndarray, values: np.ndarray,
                 ts_ms: np.ndarray) -> pa.Table:
    """A large float series built column-wise (steps given as exact multiples of 1e-6)."""
    n = len(values)
    words = np.empty((n, 2), dtype="<i8")
    words[:, 0] = steps_unscaled
    words[:, 1] = np.where(steps_unscaled < 0, -1, 0)
    step = pa.Array.from_buffers(pa.decimal128(18, 6), n, [None, pa.py_buffer(words.tobytes())])
    cols = {name: pa.nulls(n, SCHEMA.field(name).type) for name in SCHEMA.names}
    cols.update(project_id=pa.array([project] * n, pa.string()), run_id=pa.array([run] * n, pa.string()),
                attribute_path=pa.array([path] * n, pa.string()),
                attribute_type=pa.array(["float_series"] * n, pa.string()), step=step,
                timestamp=pa.array(ts_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                float_value=pa.array(values, pa.float64()))
    return pa.table(cols, schema=SCHEMA)
