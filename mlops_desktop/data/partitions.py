"""Where a piece's good rows go: one Parquet part, or one part per key in percent-encoded col=value/ folders."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

MAX_PARTITIONS = 1000

class Output:
    """Where one piece's good rows go: one Parquet part, or with ``partition_by`` one part per key in
    ``col=value/`` folders (the key columns stay in the files, so every part reads alone).

    A partitioned piece is written whole first, then split in passes of at most SPLIT_KEYS keys: polars keeps an
    open writer with buffered rows per key, so splitting while reading would hold memory in proportion to the
    number of keys times their rows (1,000 keys, 15M rows: 980 MB); per pass it stays bounded.
    """

    SPLIT_KEYS = 32

    def __init__(self, data: Path, scratch: Path, name: str, partition_by: tuple[str, ...],
                 seen: set[tuple[Any, ...]]) -> None:
        self.data = data
        self.scratch = scratch
        self.name = name
        self.partition_by = partition_by
        self.files: list[Path] = []
        self.unsplit: Path | None = None
        self.seen = seen  # keys of the whole version so far (earlier pieces included)
        self.keys: set[tuple[Any, ...]] = set()
        self.lock = threading.Lock()

    def note_keys(self, df: Any, keep: Any) -> None:
        """Called for every batch: stop at once when the version would get more than MAX_PARTITIONS folders."""
        if not self.partition_by:
            return
        keys = df.select(self.partition_by).filter(keep).unique().rows()
        with self.lock:
            self.keys.update(keys)
            if len(self.keys | self.seen) > MAX_PARTITIONS:
                raise UsageError(
                    f"partitioning by {', '.join(self.partition_by)} would make more than {MAX_PARTITIONS:,} "
                    "partitions", hint="partition by a column with fewer distinct values (a month, a region)")

    def sink(self, query: Any) -> None:
        if not self.partition_by:
            path = self.data / self.name
            self.files = [path]
            query.sink_parquet(path, engine="streaming")
            return
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.unsplit = self.scratch / self.name
        query.sink_parquet(self.unsplit, engine="streaming")

    def written(self) -> list[Path]:
        """The files holding this piece's rows now (before a split: the unsplit part)."""
        return [self.unsplit] if self.unsplit is not None else list(self.files)

    def rows(self) -> int:
        return sum(_rows(path) for path in self.written())

    def split(self, progress: Progress) -> None:
        """Write the unsplit part as one part per key, SPLIT_KEYS keys per pass, rows in their order."""
        import polars as pl

        if self.unsplit is None:
            return
        source = pl.scan_parquet(self.unsplit)
        keys = source.select(self.partition_by).unique(maintain_order=True).collect()
        stem = self.name.removesuffix(".parquet")
        files: list[Path] = []

        def file_path(args: Any) -> str:
            values = args.partition_keys.row(0, named=True)
            rel = "/".join(f"{k}={partition_segment(v)}" for k, v in values.items())
            rel += f"/{stem}-{args.index_in_partition:04d}.parquet"
            with self.lock:
                files.append(self.data / rel)
            return rel

        passes = range(0, keys.height, self.SPLIT_KEYS)
        for start in passes:
            progress.check()
            progress.update(0.97, f"writing partitions ({start:,} of {keys.height:,})")
            frame = source
            if len(passes) > 1:
                group = keys.slice(start, self.SPLIT_KEYS).lazy()
                frame = source.join(group, on=list(self.partition_by), how="semi", nulls_equal=True,
                                    maintain_order="left")
            frame.sink_parquet(pl.PartitionBy(self.data, key=list(self.partition_by), include_key=True,
                                              file_path_provider=file_path), mkdir=True, engine="streaming")
        self.unsplit.unlink()
        self.unsplit = None
        self.files = sorted(files)

    def commit(self) -> None:
        self.seen |= self.keys

    def discard(self) -> None:
        for path in self.written():
            path.unlink(missing_ok=True)
        self.files = []
        self.unsplit = None
        self.keys = set()


def partition_segment(value: Any) -> str:
    """A key value as a folder name, one-to-one: percent-encoded except letters, digits, "-" and "." ("a/b" ->
    "a%2Fb"), null as __null__ (no encoded value holds "_"), and a long value cut and completed with "~" and a
    hash (no encoded value holds "~")."""
    import datetime
    import hashlib
    from urllib.parse import quote

    if value is None:
        return "__null__"
    text = value.isoformat() if isinstance(value, datetime.date) else str(value)
    safe = quote(text, safe="-.").replace("_", "%5F").replace("~", "%7E")
    if len(safe) > 120:
        safe = safe[:80] + "~" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return safe


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else 0

