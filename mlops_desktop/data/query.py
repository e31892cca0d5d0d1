"""SQL over the lake: datasets are tables (latest version, or NAME@N pinned); paged results and streaming export."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.data import catalog, lake
from mlops_desktop.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

_PINNED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)@(\d+)\b")
_WORD = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\b")


_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:@\d+)?|\S)")
_KEYWORDS = {"where", "group", "order", "limit", "join", "on", "using", "left", "right", "inner", "outer", "full",
             "cross", "natural", "union", "except", "intersect", "having", "window", "qualify", "offset", "select",
             "lateral", "semi", "anti"}


def table_refs(sql: str) -> list[str]:
    """Names (NAME or NAME@N) the SQL reads as tables: what follows FROM/JOIN, and comma lists after FROM."""
    text = re.sub(r"'(?:[^']|'')*'", "''", re.sub(r"--[^\n]*", " ", sql))  # drop strings and comments
    tokens = [t for t in _TOKEN.findall(text) if t]
    refs: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i].lower() in ("from", "join"):
            i += 1
            while i < len(tokens) and _WORD.fullmatch(tokens[i].split("@")[0]) and \
                    tokens[i].lower() not in _KEYWORDS:
                if tokens[i] not in refs:
                    refs.append(tokens[i])
                i += 1
                if i < len(tokens) and tokens[i].lower() == "as":
                    i += 2
                elif i < len(tokens) and _WORD.fullmatch(tokens[i]) and tokens[i].lower() not in _KEYWORDS:
                    i += 1  # alias
                if i < len(tokens) and tokens[i] == ",":
                    i += 1
                    continue
                break
            continue
        i += 1
    return refs


@dataclass
class QueryPage:
    columns: list[str]
    dtypes: list[str]
    rows: list[tuple[Any, ...]]
    offset: int
    total: int | None
    tables: dict[str, str]  # SQL table name -> dataset ref it was bound to

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "dtypes": self.dtypes, "rows": [list(r) for r in self.rows],
                "offset": self.offset, "total": self.total, "tables": self.tables}


def bind(ws: Workspace, sql: str) -> tuple[str, pl.LazyFrame, dict[str, str]]:
    """Rewrite NAME@N into table names, register the datasets the SQL mentions, return the lazy result."""
    import polars as pl

    if not sql.strip():
        raise UsageError("the query is empty")
    tables: dict[str, Any] = {}
    bound: dict[str, str] = {}

    def pin(match: re.Match[str]) -> str:
        name, number = match.group(1), int(match.group(2))
        version = catalog.resolve(ws.db, f"{name}@{number}")
        alias = f"{name}__v{number}"
        tables[alias] = lake.scan(ws, version)
        bound[alias] = version.ref
        return alias

    rewritten = _PINNED.sub(pin, sql)
    known = {v.name for v in catalog.list_datasets(ws.db)}
    for word in table_refs(rewritten):
        if word in known and word not in tables:
            version = catalog.resolve(ws.db, word)
            tables[word] = lake.scan(ws, version)
            bound[word] = version.ref
    ctx = pl.SQLContext(tables, eager=False)
    try:
        frame = ctx.execute(rewritten, eager=False)
        frame.collect_schema()
    except NotFoundError:
        raise
    except Exception as exc:
        hint = None
        if not tables:
            hint = "no dataset is named in the query; see `mlops-desktop data list`"
        raise UsageError(f"query failed: {_first(exc)}", hint=hint) from None
    return rewritten, frame, bound


def query(ws: Workspace, sql: str, *, limit: int = 100, offset: int = 0, count: bool = True) -> QueryPage:
    """One page of the result (``limit`` rows from ``offset``); ``total`` counts every row when ``count``."""
    import polars as pl

    if limit < 0 or offset < 0:
        raise UsageError("limit and offset must not be negative")
    _, frame, bound = bind(ws, sql)
    try:
        page = frame.slice(offset, limit).collect(engine="streaming")
        total = frame.select(pl.len()).collect(engine="streaming").item() if count else None
    except Exception as exc:
        raise UsageError(f"query failed: {_first(exc)}") from None
    from mlops_desktop.data.contract import dtype_name

    return QueryPage(columns=page.columns, dtypes=[dtype_name(t) for t in page.dtypes], rows=page.rows(),
                     offset=offset, total=total, tables=bound)


def export(ws: Workspace, sql: str, output: str | Path) -> dict[str, Any]:
    """Stream the whole result to CSV or Parquet (by extension), through a temporary file renamed at the end."""
    import os

    import polars as pl

    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise UsageError(f"cannot export to {output.name}: use a .csv or .parquet file name")
    _, frame, bound = bind(ws, sql)
    tmp = output.with_name(f".{output.name}.partial")
    try:
        if suffix == ".csv":
            frame.sink_csv(tmp)
        else:
            frame.sink_parquet(tmp)
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"query failed: {_first(exc)}") from None
    rows = pl.scan_parquet(output).select(pl.len()).collect().item() if suffix != ".csv" else \
        pl.scan_csv(output).select(pl.len()).collect().item()
    return {"output": str(output), "rows": rows, "tables": bound}


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
