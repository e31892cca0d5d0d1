"""Rows with too few or too many fields (ragged rows): found by one byte scan, rejected one by one with their line
and raw text, so the rest of the file is stored (``on_malformed = "reject"``, the default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.data.linemap import scan_source
from mlops_desktop.data.rejects import REJECT_RAW
from mlops_desktop.data.sources import LINE, Piece, SourceOptions
from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.data.csvscan import Ragged

MAX_RAGGED = 1_000_000
_MAX_RAW = 64 << 10  # characters of raw text kept per rejected record


@dataclass
class RaggedRows(Exception):
    """Raised while a piece is written when it holds ragged rows: the writer reads it again, rejecting them."""

    ragged: Ragged
    lines: dict[int, int] = field(default_factory=dict)  # reader row number (LINE) -> field count
    raw: dict[int, str] = field(default_factory=dict)  # reader row number (LINE) -> raw text of the record

    def __str__(self) -> str:
        return f"{self.ragged.count} rows with a different number of fields than the header"


def find(piece: Piece, options: SourceOptions, progress: Progress | None = None) -> RaggedRows | None:
    """Every ragged row of a CSV piece with its raw text; None when the byte scan cannot read this file (a
    multi-byte quote) or finds none. Refuses a file where most rows would be ragged: its delimiter is wrong."""
    from mlops_desktop.data import csvscan
    from mlops_desktop.data.csvlines import fetch_lines

    path, opts = scan_source(piece, options)
    names = piece.csv_names or []
    if not names or not csvscan.usable(opts):
        return None
    found = csvscan.scan_ragged(path, opts, len(names), progress, limit=MAX_RAGGED)
    if found.truncated:
        raise UsageError(f"{piece.label}: more than {MAX_RAGGED:,} rows have a different number of fields than the "
                         f"{len(names)} columns of the header (the first on line {found.start_lines[0]})",
                         hint=f"is the delimiter right? (now {opts.separator!r}: pass --delimiter)")
    if not found.count:
        return None
    offset = 1 if opts.has_header else 0  # the reader numbers data record k as row k + offset
    wanted: list[int] = []
    for start, end in zip(found.start_lines, found.end_lines, strict=True):
        wanted += range(start, end + 1)
    text = fetch_lines(path, wanted).text
    out = RaggedRows(ragged=found)
    for number, fields, start, end in zip(found.numbers, found.fields, found.start_lines, found.end_lines,
                                          strict=True):
        row = number + offset
        out.lines[row] = fields
        raw = b"\n".join(text.get(n, b"") for n in range(start, end + 1)).decode("utf-8", "replace")
        out.raw[row] = raw[:_MAX_RAW]
    return out


def reason_for(fields: int, expected: int, has_header: bool) -> str:
    return f"{fields} fields, the {'header' if has_header else 'first row'} has {expected}"


def marks(rows: RaggedRows, has_header: bool) -> tuple[pl.Expr, pl.Expr]:
    """(is ragged, reason) expressions over the reader's row number."""
    import polars as pl

    by_count: dict[int, list[int]] = {}
    for row, fields in rows.lines.items():
        by_count.setdefault(fields, []).append(row)
    line = pl.col(LINE).cast(pl.Int64)
    is_ragged = line.is_in(pl.Series(sorted(rows.lines), dtype=pl.Int64).implode())
    expected = rows.ragged.expected
    if len(by_count) <= 32:
        reason: Any = pl.lit(None, dtype=pl.String)
        for fields, members in sorted(by_count.items(), reverse=True):
            reason = pl.when(line.is_in(pl.Series(members, dtype=pl.Int64).implode())).then(
                pl.lit(reason_for(fields, expected, has_header))).otherwise(reason)
    else:
        reason = line.replace_strict(list(rows.lines), [reason_for(f, expected, has_header)
                                                        for f in rows.lines.values()],
                                     default=None, return_dtype=pl.String)
    return is_ragged, reason


def with_raw(df: pl.DataFrame, rows: RaggedRows) -> pl.DataFrame:
    """Rejected rows with the raw text of the ragged ones (null for the rest)."""
    import polars as pl

    line = df[LINE].cast(pl.Int64)
    return df.with_columns(pl.Series(REJECT_RAW, [rows.raw.get(n) for n in line.to_list()], dtype=pl.String))
