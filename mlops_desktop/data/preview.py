"""Before ingesting: a preview of the first rows with the types a sample suggests, and a draft contract in TOML."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_desktop.data.contract import TYPE_NAMES, ColumnRule, Contract, dtype_name
from mlops_desktop.data.sources import LINE, SourceOptions, detect_format, expand, pieces


@dataclass
class Preview:
    files: list[str]
    format: str
    columns: list[str]
    types: dict[str, str]  # suggested by a sample
    rows: list[tuple[Any, ...]]  # raw values (text for text formats)

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "format": self.format, "columns": self.columns, "types": self.types,
                "rows": [list(r) for r in self.rows]}


def preview(paths: list[str], options: SourceOptions | None = None, rows: int = 100) -> Preview:
    """The first ``rows`` rows of the first file; malformed input raises the same MlopsError ingest would."""
    options = options or SourceOptions()
    files = expand(paths)
    first = files[0]
    with tempfile.TemporaryDirectory(prefix="mlops-preview-") as tmp:
        piece = next(iter(pieces(first, options, Path(tmp))))
        frame = piece.frame
        if piece.fmt == "csv":  # a blank line reads as a row of nulls; ingestion skips it, so does the preview
            import polars as pl

            frame = frame.filter(~pl.all_horizontal([pl.col(c).is_null() for c in piece.schema]))
        head = frame.head(rows).collect()
    head = head.drop(LINE) if LINE in head.columns else head
    types = {c: dtype_name(piece.inferred.get(c, piece.schema[c])) for c in head.columns}
    return Preview(files=[str(f) for f in files], format=detect_format(first, options.format),
                   columns=head.columns, types=types, rows=head.rows())


def draft_contract(pv: Preview) -> Contract:
    """Types from the sample, every column nullable: a starting point to edit, not a finished contract."""
    cols = {c: ColumnRule(name=c, type=t if t in TYPE_NAMES else "string") for c, t in pv.types.items()}
    return Contract(columns=cols)


def contract_to_toml(contract: Contract) -> str:
    """A contract as the TOML accepted by --contract and [datasets.NAME.contract]."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        text = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'

    data = contract.to_dict()
    lines: list[str] = []
    if data.get("rows"):
        lines.append("rows = " + value(data["rows"]))
    if data.get("unique"):
        lines.append("unique = " + value(data["unique"]))
    if data.get("extra_columns"):
        lines.append("extra_columns = " + value(data["extra_columns"]))
    for name, rules in data["columns"].items():
        key = name if name.replace("_", "").isalnum() else value(name)
        lines.append("")
        lines.append(f"[columns.{key}]")
        lines += [f"{k} = {value(v)}" for k, v in rules.items()]
    return "\n".join(lines).lstrip("\n") + "\n"
