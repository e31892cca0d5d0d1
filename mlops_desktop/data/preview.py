"""Before ingesting: a preview of the first rows with the types a sample suggests, and a draft contract in TOML.

A column the reader types as text only because a few of its values are not numbers ("n/a", "-", "oops") is drafted
as the numeric type the other values share: words that mean "no value" are proposed as null words (a source
option: ``--null`` / the dialog's "null words"), and any other odd value is left to the contract's type check,
which rejects its rows with the reason. The draft says so in comments next to the column.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.data.contract import TYPE_NAMES, ColumnRule, Contract, dtype_name
from mlops_desktop.data.sources import LINE, SourceOptions, detect_format, expand, pieces

# Values that say "no value" in files people export; matched case-insensitively, proposed as they are spelled.
NULL_WORDS = frozenset({"n/a", "na", "nan", "null", "none", "nil", "-", "--", "?", "missing", "#n/a", "n.a.",
                        "not available", "unknown"})
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
NUMERIC_SHARE = 0.5   # more than this share of a column's sample values are numbers for it to be drafted numeric
MAX_ODD_VALUES = 5    # and at most this many distinct other values


@dataclass
class ColumnHint:
    """Why a text column is drafted as a number: the other values share ``type``; ``null_words`` read as no value;
    rows holding one of ``odd_values`` are rejected by the type check."""

    type: str
    null_words: list[str] = field(default_factory=list)
    odd_values: list[str] = field(default_factory=list)
    odd_rows: int = 0       # sample rows whose value is a null word or an odd value
    sample_rows: int = 0    # sample rows with a value in this column

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "null_words": self.null_words, "odd_values": self.odd_values,
                "odd_rows": self.odd_rows, "sample_rows": self.sample_rows}


@dataclass
class Preview:
    files: list[str]
    format: str
    columns: list[str]
    types: dict[str, str]  # suggested by a sample
    rows: list[tuple[Any, ...]]  # raw values (text for text formats)
    hints: dict[str, ColumnHint] = field(default_factory=dict)  # text columns that are numbers but for a few values

    @property
    def null_words(self) -> list[str]:
        """The null words the hints propose, in column order."""
        words: list[str] = []
        for hint in self.hints.values():
            words += [w for w in hint.null_words if w not in words]
        return words

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "format": self.format, "columns": self.columns, "types": self.types,
                "rows": [list(r) for r in self.rows], "hints": {c: h.to_dict() for c, h in self.hints.items()},
                "null_words": self.null_words}


def numeric_hint(values: list[Any]) -> ColumnHint | None:
    """For the sample values of a text column: the numeric type most of them share, or None."""
    present = [str(v).strip() for v in values if v is not None and str(v).strip() != ""]
    if not present:
        return None
    ints = sum(1 for v in present if _INT.match(v))
    numbers = sum(1 for v in present if _FLOAT.match(v))
    if numbers == 0 or numbers <= NUMERIC_SHARE * len(present):
        return None
    odd = [v for v in present if not _FLOAT.match(v)]
    distinct = list(dict.fromkeys(odd))
    if len(distinct) > MAX_ODD_VALUES:
        return None
    return ColumnHint(type="int64" if ints == numbers else "float64",
                      null_words=[v for v in distinct if v.lower() in NULL_WORDS],
                      odd_values=[v for v in distinct if v.lower() not in NULL_WORDS],
                      odd_rows=len(odd), sample_rows=len(present))


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
    hints: dict[str, ColumnHint] = {}
    for c in head.columns:
        if types[c] == "string" and head.schema[c] == pl_string():
            hint = numeric_hint(head[c].to_list())
            if hint is not None and (hint.null_words or hint.odd_values):
                hints[c] = hint
    return Preview(files=[str(f) for f in files], format=detect_format(first, options.format),
                   columns=head.columns, types=types, rows=head.rows(), hints=hints)


def pl_string() -> Any:
    import polars as pl

    return pl.String


def draft_contract(pv: Preview) -> Contract:
    """Types from the sample (a column that is numbers but for a few values keeps the numeric type, see the module
    doc), every column nullable: a starting point to edit, not a finished contract."""
    cols = {}
    for c, t in pv.types.items():
        hint = pv.hints.get(c)
        cols[c] = ColumnRule(name=c, type=hint.type if hint else (t if t in TYPE_NAMES else "string"))
    return Contract(columns=cols)


def draft_toml(pv: Preview) -> str:
    """The draft contract as TOML, with a comment above each column drafted from a hint saying what happens to its
    odd values and how to keep them instead."""
    text = contract_to_toml(draft_contract(pv))
    for name, hint in pv.hints.items():
        notes = [f"# {name}: {hint.odd_rows} of {hint.sample_rows} sample values are not numbers."]
        if hint.null_words:
            words = ", ".join(repr(w) for w in hint.null_words)
            notes.append(f"# {words} = no value with the proposed null words (Options, --null); "
                         "else its rows are rejected.")
        if hint.odd_values:
            values = ", ".join(repr(v) for v in hint.odd_values)
            notes.append(f"# Rows with {values} are rejected (not a valid {hint.type}); "
                         'type = "string" keeps them as text.')
        key = name if name.replace("_", "").isalnum() else f'"{name}"'
        text = text.replace(f"[columns.{key}]\n", "\n".join(notes) + f"\n[columns.{key}]\n", 1)
    return text


def suggest_dataset_name(paths: list[str]) -> str:
    """A dataset name from the first path: its file name without the extension ('sales/2024-03.csv' ->
    'd_2024_03'), or the folder of a glob ('sales/*.csv' -> 'sales'), made valid for the catalog."""
    if not paths:
        return ""
    path = Path(paths[0].strip().rstrip("/"))
    stem = path.stem if path.suffix else path.name
    if any(ch in stem for ch in "*?[") or not stem:
        stem = path.parent.name
    name = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_").lower() or "data"
    return (name if not name[0].isdigit() else f"d_{name}")[:128]


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
