"""The typed CSV fast path: the reader parses contract-typed numbers and booleans itself (strict); only the line
numbers of bad rows are kept while reading, and their raw text is fetched from the file afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.data.contract import CheckPlan, Contract, plan_checks
from mlops_desktop.data.linemap import csv_opts, exact_lines
from mlops_desktop.data.partitions import Output
from mlops_desktop.data.ragged import with_raw
from mlops_desktop.data.rejects import EMPTY_ROW, Rejects
from mlops_desktop.data.sources import LINE, Piece, SourceOptions
from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.data.writer import Writer

BY_RECORD = "__by_record"
BLANK = "__blank_line"


class TooManyRejects(Exception):
    """More bad rows than the typed path keeps line numbers for: the text path handles such files."""


def reader_types(contract: Contract, schema: dict[str, Any]) -> dict[str, Any]:
    """Text columns that the contract types as integers, float64 or booleans: the CSV reader parses those itself
    (strictly) on the typed path."""
    import polars as pl

    from mlops_desktop.data.contract import parse_dtype

    out: dict[str, Any] = {}
    for rule in contract.columns.values():
        if rule.type and schema.get(rule.name) == pl.String:
            dtype = parse_dtype(rule.type)
            if dtype.is_integer() or dtype == pl.Float64 or dtype == pl.Boolean:
                out[rule.name] = dtype
    return out



def write_typed(writer: Writer, piece: Piece, text_plan: CheckPlan, native: dict[str, Any], output: Output,
                rejects: Rejects, progress: Progress, options: SourceOptions) -> tuple[int, int] | None:
    """The fast path for CSV: numbers and booleans parsed by the reader (strict), checks on typed values, and
    only the line numbers of bad rows kept while reading; their raw text is fetched from the file afterwards
    and checked again as text, so rejects and reasons are exactly those of the text path.

    None when the reader meets a value it cannot parse, or more bad rows than one reject file holds: the
    caller then reads the file as text (which rejects such values row by row).
    """
    import polars as pl

    assert writer.effective is not None and piece.typed_scan is not None
    plan = plan_checks(writer.effective, piece.schema | native, piece.label)
    found = writer._ragged  # known ragged rows: cut to the header's width by the reader, rejected by _checked
    scan = piece.typed_scan(native, found is not None)
    try:
        dups, seen_keys = writer._duplicate_lines(piece, scan, plan)
    except Cancelled:
        raise
    except Exception:
        return None
    frame, ok, _ = writer._checked(scan, plan, dups, piece)
    frame = frame.with_columns(ok.alias("__ok"))
    bad: list[pl.Series] = []
    count = [0]

    def take_lines(df: pl.DataFrame, keep: pl.Series) -> None:
        lines = df[LINE].filter(~keep)
        count[0] += lines.len()
        if count[0] > Rejects.FLUSH_ROWS:
            raise TooManyRejects()
        bad.append(lines)

    try:
        writer._stream(frame, take_lines, output, progress, piece)
    except (Cancelled, UsageError):
        raise
    except Exception:
        if progress.cancelled:
            raise Cancelled() from None
        return None
    n_good = output.rows()
    for path in output.files:
        writer._hash_later(path)  # overlaps with fetching the rejected rows
    lines = sorted(pl.concat(bad).cast(pl.Int64).to_list()) if bad else []
    if lines:
        progress.update(0.96, f"{Path(piece.label).name}: reading {len(lines):,} rejected rows")
        recovered = fetch_rows(piece, options, lines, n_good + len(lines), tolerant=found is not None)
        frame, ok, reason = writer._checked(recovered.lazy(), text_plan, dups, piece)
        checked = frame.with_columns(ok.alias("__ok"), reason.alias("__reason")).collect()
        if checked["__ok"].any():
            return None  # the two readings disagree on a row: trust the text path
        if BLANK in checked.columns:  # blank lines are not rows: neither stored nor rejected
            blank = checked[BLANK] & (checked["__reason"] == EMPTY_ROW)
            rejects.blank_lines = int(blank.sum())
            checked = checked.filter(~blank)
        rejects.prepare = None if found is None else (lambda df: with_raw(df, found))
        rejects.add(checked)
        rejects.close()
        if BY_RECORD in recovered.columns:
            for bad_path in rejects.files:
                exact_lines(bad_path, piece, options)
    writer._pending_keys = seen_keys  # kept once the piece is stored
    return n_good, len(lines)

def fetch_rows(piece: Piece, options: SourceOptions, lines: list[int], records: int,
               tolerant: bool = False) -> pl.DataFrame:
    """The raw text of the given rows (line numbers as the reader counted them) as all-string columns
    (``tolerant``: ragged rows cut to the header's width, as the tolerant scan reads them)."""
    import polars as pl

    from mlops_desktop.data.csvlines import fetch_lines

    assert piece.csv_names is not None and piece.csv_read_options is not None
    opts = csv_opts(piece, options)
    header = 1 if opts.has_header else 0
    got = fetch_lines(piece.path, sorted(set(lines) | {1}))
    if got.total == records + header and all(n in got.text for n in lines):
        # No record spans lines: the reader's row number is the line number. The file's first line goes first,
        # as in the full read, so that it sets the width (a short or blank fetched line is padded with nulls,
        # not taken for the width); without a header it is dropped again after parsing.
        data = b"\n".join([got.text[1]] + [got.text[n] for n in lines]) + b"\n"
        try:
            df = pl.read_csv(data, infer_schema=False, truncate_ragged_lines=tolerant, **piece.csv_read_options)
        except Exception:  # noqa: BLE001 - parsed below the slow way
            df = None
        if df is not None and not opts.has_header:
            df = df.slice(1)
        if df is not None and df.height == len(lines):
            return df.with_columns(pl.Series(LINE, lines, dtype=pl.Int64),
                                   pl.Series(BLANK, [not got.text[n].strip(b" \t") for n in lines]))
    # a quoted newline or a skipped blank line: read the rows by record number (the text scan), then map lines
    frame = piece.tolerant_frame() if tolerant and piece.tolerant_frame is not None else piece.frame
    found = (frame.filter(pl.col(LINE).is_in(pl.Series(lines, dtype=pl.Int64).implode()))
             .collect(engine="streaming"))
    return found.with_columns(pl.col(LINE).cast(pl.Int64), pl.lit(True).alias(BY_RECORD))

