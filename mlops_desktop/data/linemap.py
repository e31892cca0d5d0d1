"""Line numbers of rejected rows: exact source lines when records span lines or blank lines were skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_desktop.data.rejects import EMPTY_ROW, REJECT_LINE, REJECT_REASON
from mlops_desktop.data.sources import Piece, SourceOptions, has_byte


def csv_opts(piece: Piece, options: SourceOptions) -> Any:
    from mlops_desktop.data.csvcheck import CsvOptions

    opts = options.csv
    if piece.path.suffix.lower() in (".tsv", ".tab") and opts.separator == ",":
        opts = CsvOptions(**{**opts.__dict__, "separator": "\t"})
    return opts


def scan_source(piece: Piece, options: SourceOptions) -> tuple[Path, Any]:
    """The file byte-level scans read, and its options: the reader's UTF-8, LF copy when there is one (a
    transcoded or CR-only file; its lines are the original's, one for one), else the file itself."""
    from mlops_desktop.data.csvcheck import CsvOptions

    opts = csv_opts(piece, options)
    if piece.readable is None:
        return piece.path, opts
    return piece.readable, CsvOptions(**{**opts.__dict__, "encoding": "utf-8"})


def null_count(path: Path, column: str) -> int:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if column not in names:
        return 0
    j = names.index(column)
    total = 0
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(j).statistics
        if stats is None or stats.null_count is None:
            import polars as pl

            return int(pl.scan_parquet(path).select(pl.col(column).null_count()).collect().item())
        total += stats.null_count
    return total


def spans_lines(piece: Piece, records: int, options: SourceOptions) -> bool:
    """Whether some record spans several lines (then row index + header is not the line number)."""
    path, opts = scan_source(piece, options)
    if not opts.quote_char or not has_byte(path, opts.quote_char.encode()):
        return False
    return line_count(path) != records + (1 if opts.has_header else 0)


def line_count(path: Path) -> int:
    """Lines in a file (a last line without a newline counts), at memory speed (numpy: ~4x bytes.count)."""
    import numpy as np

    newlines = 0
    last = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            newlines += int(np.count_nonzero(np.frombuffer(chunk, dtype=np.uint8) == 10))
            last = chunk[-1:]
    return newlines + (0 if last in (b"\n", b"") else 1)


def drop_blank_lines(files: list[Path], piece: Piece) -> int:
    """Remove rejected "empty rows" that are blank lines of the file (not rows at all); returns how many.

    A line with separators only (",,,") is a row whose fields are all empty: it stays rejected.
    """
    import polars as pl

    from mlops_desktop.data.csvlines import fetch_lines

    dropped = 0
    for path in files:
        df = pl.read_parquet(path)
        empty = df.filter(pl.col(REJECT_REASON) == EMPTY_ROW)
        if empty.is_empty():
            continue
        lines = fetch_lines(piece.readable or piece.path, empty[REJECT_LINE].to_list()).text
        blank = [n for n in empty[REJECT_LINE].to_list() if not lines.get(n, b"x").strip(b" \t\xef\xbb\xbf")]
        if blank:
            kept = df.filter(~((pl.col(REJECT_REASON) == EMPTY_ROW) & pl.col(REJECT_LINE).is_in(blank)))
            dropped += df.height - kept.height
            if kept.is_empty():
                path.unlink()
            else:
                kept.write_parquet(path)
    files[:] = [p for p in files if p.exists()]
    return dropped


def exact_ndjson_lines(bad_path: Path, path: Path) -> None:
    """polars skips blank lines in NDJSON, so its row number is the line only when there are none."""
    import polars as pl

    df = pl.read_parquet(bad_path)
    wanted = set(df[REJECT_LINE].to_list())
    mapping: dict[int, int] = {}
    record = 0
    with open(path, "rb") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                record += 1
                if record in wanted:
                    mapping[record] = line_no
                    if len(mapping) == len(wanted):
                        break
    lines = [mapping.get(int(v), int(v)) for v in df[REJECT_LINE].to_list()]
    if lines != df[REJECT_LINE].to_list():
        df.with_columns(pl.Series(REJECT_LINE, lines, dtype=pl.Int64)).write_parquet(bad_path)


def exact_lines(bad_path: Path, piece: Piece, options: SourceOptions) -> None:
    """Row index + header is the line only when no record spans lines; map the (few) rejects to exact lines."""
    import polars as pl

    from mlops_desktop.data.csvcheck import record_lines

    path, opts = scan_source(piece, options)
    df = pl.read_parquet(bad_path)
    offset = 2 if opts.has_header else 1
    records = {int(v) - offset + 1 for v in df[REJECT_LINE].to_list()}
    mapping = record_lines(path, opts, records)
    lines = [mapping.get(int(v) - offset + 1, int(v)) for v in df[REJECT_LINE].to_list()]
    if lines != df[REJECT_LINE].to_list():
        df.with_columns(pl.Series(REJECT_LINE, lines, dtype=pl.Int64)).write_parquet(bad_path)


