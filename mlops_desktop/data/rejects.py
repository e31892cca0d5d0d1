"""Where a piece's bad rows go: reject files of bounded size, with the rows' raw text, file, line and reasons."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

REJECT_FILE = "_source_file"
REJECT_LINE = "_source_line"
REJECT_REASON = "_reason"
REJECT_RAW = "_raw_line"  # a rejected row's line(s) as the file has them, where its fields cannot say it (ragged)
EMPTY_ROW = "empty row: every field is empty"


class Rejects:
    """Bad rows of one piece, written in files of at most FLUSH_ROWS rows (memory stays bounded)."""

    FLUSH_ROWS = 200_000

    def __init__(self, path: Path, last_column: str | None, select: list[Any]) -> None:
        self.path = path
        self.last_column = last_column
        self.select = select  # the rejected rows' raw text, file, line and reasons
        self.pending: list[Any] = []
        self.pending_rows = 0
        self.rows = 0
        self.last_nulls = 0
        self.files: list[Path] = []
        self.lock = threading.Lock()
        self.prepare: Any = None  # frame -> frame, before ``select`` (adds the reasons)
        self.empty_rows = 0
        self.blank_lines: int | None = None  # set when blank lines were told apart before writing

    def add(self, df: Any) -> None:
        import polars as pl

        # A filtered frame's strings are views into the whole batch's buffers: holding it would keep every
        # batch that had a bad row alive (memory growing with the file). A round trip through plain Arrow
        # strings copies out just these rows.
        df = pl.from_arrow(df.to_arrow(compat_level=pl.CompatLevel.oldest()))
        with self.lock:
            self.pending.append(df)
            self.pending_rows += df.height
            self.rows += df.height
            if self.pending_rows >= self.FLUSH_ROWS:
                self._flush()

    def _flush(self) -> None:
        import polars as pl

        if not self.pending:
            return
        path = self.path.with_name(f"{self.path.stem}-{len(self.files):04d}.parquet")
        out = pl.concat(self.pending)
        if self.prepare is not None:
            out = self.prepare(out)
        if REJECT_RAW not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(REJECT_RAW))
        out = out.select(self.select)
        if self.last_column and self.last_column in out.columns:
            self.last_nulls += out[self.last_column].null_count()
        self.empty_rows += int((out[REJECT_REASON] == EMPTY_ROW).sum())
        out.write_parquet(path)
        self.files.append(path)
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        with self.lock:
            self._flush()

    def discard(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        self.files, self.pending, self.pending_rows, self.rows, self.last_nulls = [], [], 0, 0, 0
        self.empty_rows = 0
        self.blank_lines = None

