"""Prediction-log segment formats and the batches written into them.

A batch is a set of typed columns (`Batch`), built by a log from its queued requests without knowing the format.
Two formats hold closed segments:

- **Parquet** (`NNNNNNNNNN.parquet`, zstd), wherever pyarrow is installed: the desktop and the servers it starts.
- **Column lines** (`NNNNNNNNNN.jsonl.gz`) where it is not: model and router images leave pyarrow out (~90 MB of
  a ~460 MB image). A gzip stream of JSON lines written with orjson: a header line naming the format and the
  columns' types, then one line per batch (`{"n": rows, "c": {column: values | {"const": v} | null}}`). The
  desktop turns such a segment into the very Parquet file a server with pyarrow would have written when it pulls
  it (`save_pulled`); nothing downstream (the lake, monitoring, the promotion checks) sees the difference.

Column types are Arrow's names (`string`, `double`, `int32`, `timestamp[us, tz=UTC]`, ...). `auto` columns (a
signature's inputs, the prediction) take their type from the values, as `pyarrow.array(..., from_pandas=True)`
does: NaN and None are nulls, and an integer input that arrived as floats (nulls as NaN) is stored as int64.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

FORMAT = "mlops-desktop/predlog-columns/1"
PARQUET = ".parquet"
COLUMNS = ".jsonl.gz"
SEGMENT_RE = re.compile(r"^(\d{10})(\.parquet|\.jsonl\.gz)$")
TS_TYPE = "timestamp[us, tz=UTC]"
_NO_CONST = object()


@lru_cache(maxsize=1)
def arrow_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def segment_suffix() -> str:
    """The format this process writes: Parquet when it can."""
    return PARQUET if arrow_available() else COLUMNS


@dataclass
class Column:
    """One column of a batch: `values` for every row (a numpy array or a list), or `const` for one value repeated,
    or neither (every value null). `type` is an Arrow type name or `auto`; `spec` the signature's dtype of an
    `auto` input (an integer spec turns float values back into int64)."""

    type: str
    values: Any = None
    const: Any = _NO_CONST
    spec: str | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not _NO_CONST


@dataclass
class Batch:
    rows: int
    columns: dict[str, Column] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- Arrow
def _arrow_type(name: str) -> Any:
    import pyarrow as pa

    if name.startswith("timestamp[us"):
        return pa.timestamp("us", tz="UTC") if "UTC" in name else pa.timestamp("us")
    return pa.type_for_alias(name)


def _auto_arrow(values: Any, spec: str | None) -> Any:
    import pyarrow as pa

    if getattr(values, "dtype", None) is None:
        return pa.array(values, from_pandas=True)
    if values.dtype == object:
        return pa.array(values.tolist(), from_pandas=True)
    if spec is not None and spec.startswith(("int", "uint")) and values.dtype.kind == "f":
        return pa.array(values, from_pandas=True).cast(pa.int64(), safe=False)  # nulls arrived as NaN
    return pa.array(values, from_pandas=True)


def column_to_arrow(col: Column, rows: int) -> Any:
    import numpy as np
    import pyarrow as pa

    if col.type == "auto":
        return _auto_arrow(col.values, col.spec)
    dtype = _arrow_type(col.type)
    if col.is_const:
        return pa.array([col.const], type=dtype).take(np.zeros(rows, dtype="int32"))
    if col.values is None:
        return pa.nulls(rows, type=dtype)
    if pa.types.is_timestamp(dtype):  # int64 microseconds
        return pa.array(np.asarray(col.values, dtype=np.int64)).cast(dtype)
    return pa.array(col.values, type=dtype)


def batch_to_arrow(batch: Batch) -> Any:
    import pyarrow as pa

    return pa.table({name: column_to_arrow(col, batch.rows) for name, col in batch.columns.items()})


# Dictionary-encoded: the few-valued text columns. Not the ids (all different) nor the numbers (their hash tables cost
# the writer thread half its encoding time and make the files larger, measured on a 30-column log batch).
_UNIQUE_TEXT = frozenset(("request_id",))


class ParquetSegmentWriter:
    """An open Parquet segment (zstd level 1: the writer thread's CPU matters more than the bytes). `to_table`
    turns a batch into the Arrow table to append; the file takes the first table's schema."""

    def __init__(self, path: Path, to_table: Callable[[Batch], Any]) -> None:
        self.path = path
        self._to_table = to_table
        self._writer: Any = None

    def write(self, batches: Sequence[Batch]) -> None:
        """Append the batches as one row group."""
        import pyarrow as pa

        tables = [self._to_table(b) for b in batches]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        if self._writer is None:
            import pyarrow.parquet as pq

            text = [f.name for f in table.schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
                    and f.name not in _UNIQUE_TEXT]
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd", compression_level=1,
                                            use_dictionary=text or False)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


# ---------------------------------------------------------------------------------------------- column lines
def _json_column(col: Column) -> tuple[str, Any]:
    """(type, JSON-able values) of one column; `auto` columns resolved from their numpy dtype."""
    if col.is_const:
        return col.type, {"const": col.const}
    if col.values is None:
        return col.type, None
    values = col.values
    kind = getattr(getattr(values, "dtype", None), "kind", None)
    if kind is not None and kind in "fiub" and not values.flags.c_contiguous:
        import numpy as np

        values = np.ascontiguousarray(values)  # orjson serializes contiguous arrays only
    if col.type != "auto":
        if kind is None:
            return col.type, list(values)
        return col.type, values if kind in "fiub" else values.tolist()
    if kind is None:
        return "auto", list(values)
    if kind == "f":
        if col.spec is not None and col.spec.startswith(("int", "uint")):
            return "double>int64", values  # NaN -> null by orjson; cast on the desktop
        return ("float" if values.dtype.itemsize == 4 else "double"), values
    if kind in "iu":
        return f"{'u' if kind == 'u' else ''}int{values.dtype.itemsize * 8}", values
    if kind == "b":
        return "bool", values
    if kind == "M":
        import numpy as np

        micros = values.astype("datetime64[us]")
        ints = micros.astype(np.int64).astype(object)
        ints[np.isnat(micros)] = None
        return "timestamp[us]", ints.tolist()
    if kind == "U":
        return "string", values.tolist()
    return "auto", values.tolist()  # objects: the desktop infers as pyarrow would


class ColumnLinesWriter:
    """An open `.jsonl.gz` segment: a header (the first batch's column types), then one line per batch;
    `close()` ends the gzip stream."""

    def __init__(self, path: Path) -> None:
        import orjson

        self._orjson = orjson
        self.path = path
        self._fh: Any = None

    def write(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            self._write_line(batch)

    def _write_line(self, batch: Batch) -> None:
        columns = {name: _json_column(col) for name, col in batch.columns.items()}
        if self._fh is None:
            self._fh = gzip.open(self.path, "wb", compresslevel=1)  # noqa: SIM115 - closed by close()
            types = {name: kind for name, (kind, _values) in columns.items()}
            self._fh.write(self._orjson.dumps({"format": FORMAT, "columns": types}) + b"\n")
        line = self._orjson.dumps({"n": batch.rows, "c": {name: values for name, (_k, values) in columns.items()}},
                                  option=self._orjson.OPT_SERIALIZE_NUMPY)
        self._fh.write(line + b"\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _decode(data: bytes) -> tuple[dict[str, str], list[dict[str, Any]]]:
    import orjson

    lines = gzip.decompress(data).splitlines()
    if not lines:
        raise ValueError("an empty segment")
    head = orjson.loads(lines[0])
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} segment")
    return head["columns"], [orjson.loads(line) for line in lines[1:] if line.strip()]


def columns_to_arrow(data: bytes) -> Any:
    """The table a column-lines segment holds, typed as the Parquet writer would have typed it."""
    import numpy as np
    import pyarrow as pa

    types, batches = _decode(data)
    tables = []
    for b in batches:
        rows = int(b["n"])
        cols = {}
        for name, values in b["c"].items():
            kind = types.get(name, "auto")
            if isinstance(values, dict) and "const" in values:
                dtype = _arrow_type(kind) if kind != "auto" else None
                cols[name] = pa.array([values["const"]], type=dtype).take(np.zeros(rows, dtype="int32"))
            elif values is None:
                cols[name] = pa.nulls(rows, type=_arrow_type(kind) if kind != "auto" else pa.null())
            elif kind == "auto":
                cols[name] = pa.array(values, from_pandas=True)
            elif kind == "double>int64":
                cols[name] = pa.array(values, type=pa.float64()).cast(pa.int64(), safe=False)
            elif kind.startswith("timestamp[us"):
                cols[name] = pa.array(values, type=pa.int64()).cast(_arrow_type(kind))
            else:
                cols[name] = pa.array(values, type=_arrow_type(kind))
        tables.append(pa.table(cols))
    if not tables:
        raise ValueError("a segment without rows")
    schema = tables[0].schema
    return pa.concat_tables([t if t.schema == schema else t.cast(schema) for t in tables])


_ROWS: dict[tuple[str, int, int], int] = {}
_ROWS_LOCK = threading.Lock()


def segment_rows(path: Path) -> int:
    """Rows of a closed segment of either format (column lines counted once per file, then remembered)."""
    if path.name.endswith(PARQUET):
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _ROWS_LOCK:
        if key in _ROWS:
            return _ROWS[key]
    _types, batches = _decode(path.read_bytes())
    rows = sum(int(b["n"]) for b in batches)
    with _ROWS_LOCK:
        if len(_ROWS) > 4096:
            _ROWS.clear()
        _ROWS[key] = rows
    return rows


def remember_rows(path: Path, rows: int) -> None:
    """The writer knows how many rows it closed a segment with: no need to read it back."""
    st = path.stat()
    with _ROWS_LOCK:
        _ROWS[(str(path), st.st_size, st.st_mtime_ns)] = rows


def content_type(path: Path) -> bytes:
    return b"application/vnd.apache.parquet" if path.name.endswith(PARQUET) else b"application/gzip"


def save_pulled(data: bytes, path: Path) -> None:
    """Store a segment fetched over HTTP as the Parquet file `path` (a column-lines segment is converted first);
    written to a temporary name and renamed, so a reader never sees half a file. ValueError when it is neither."""
    tmp = path.with_name(path.name + ".partial")
    if data[:4] == b"PAR1":
        tmp.write_bytes(data)
    elif data[:2] == b"\x1f\x8b":
        import pyarrow.parquet as pq

        try:
            table = columns_to_arrow(data)
        except (OSError, EOFError, KeyError, TypeError) as exc:
            raise ValueError(f"a damaged segment: {exc}") from None
        pq.write_table(table, tmp, compression="zstd")
    else:
        raise ValueError("neither a Parquet nor a column-lines segment")
    os.replace(tmp, path)
