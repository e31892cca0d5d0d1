"""Writing one source into a staged version: contract checks in one polars pass, good rows to Parquet, bad
rows (with their reasons) to rejects, exact line numbers, progress and prompt cancellation."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.data import lake
from mlops_desktop.data.catalog import DatasetVersion
from mlops_desktop.data.contract import (
    CheckPlan,
    Contract,
    dtype_name,
    join_reasons,
    merged_with_inferred,
    plan_checks,
    with_detected_formats,
)
from mlops_desktop.data.sources import LINE, Piece, SourceOptions, has_byte
from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

REJECT_FILE = "_source_file"
REJECT_LINE = "_source_line"
REJECT_REASON = "_reason"
EMPTY_ROW = "empty row: every field is empty"
_EMPTY = "__empty"


@dataclass
class Counts:
    rows_in: int = 0
    stored: int = 0
    rejected: int = 0
    blank_lines: int = 0  # CSV lines with nothing on them: not rows, neither stored nor rejected


class Writer:
    """Writes pieces into one staging directory with a single effective contract (fixed by the first piece)."""

    def __init__(self, staging: lake.Staging, contract: Contract, base: DatasetVersion | None, ws: Workspace,
                 first_part: int = 0, partition_by: tuple[str, ...] = ()) -> None:
        self.staging = staging
        self.partition_by = partition_by
        self._partitions: set[tuple[Any, ...]] = set()
        self.contract = contract
        self.base = base
        self.ws = ws
        self.effective: Contract | None = None
        self.schema: dict[str, Any] | None = None
        self.columns: list[str] | None = None
        self.part = first_part
        self.first_part = first_part
        self.duplicates: dict[str, set[int]] | None = None
        self._hashes: dict[Path, Future[str]] = {}
        self._hasher: ThreadPoolExecutor | None = None

    def _hash_later(self, path: Path) -> None:
        """Hash a finished part on a thread, while the next work (fetching rejects, the next file) goes on."""
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-hash")
        self._hashes[path] = self._hasher.submit(lake.sha256_file, path)

    def _discard(self, output: _Output) -> None:
        for path in output.files:
            self._hashes.pop(path, None)
        output.discard()

    def part_hashes(self) -> dict[str, str]:
        """Content hashes of the parts written, by path relative to the staging root (for ``finish_staging``)."""
        return {p.relative_to(self.staging.root).as_posix(): f.result() for p, f in self._hashes.items()
                if p.exists()}

    def close(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, piece: Piece) -> None:
        import polars as pl

        inferred = dict(piece.inferred)
        if self.base is not None:
            from mlops_desktop.data.contract import parse_dtype

            missing = [c for c in self.base.schema if c not in piece.schema]
            extra = [c for c in piece.schema if c not in self.base.schema]
            if missing or extra:
                drift = [f"added column {c}" for c in extra] + [f"removed column {c}" for c in missing]
                raise UsageError(f"cannot append to {self.base.ref}: the schema differs ({'; '.join(drift)})",
                                 hint="use --mode replace to start a new version with the new schema")
            for name, text in self.base.schema.items():  # appended rows must fit the base version's types
                try:
                    inferred[name] = parse_dtype(text)
                except UsageError:
                    pass
            self.contract = _with_base_types(self.contract, inferred)
        self.effective = merged_with_inferred(self.contract, inferred)

        needs_format = [r.name for r in self.effective.columns.values()
                        if r.type in ("date", "datetime") and not r.format and piece.schema.get(r.name) == pl.String]
        sample = None
        if needs_format and piece.sample is not None and all(piece.sample.schema.get(c) == pl.String
                                                            for c in needs_format):
            sample = piece.sample.select(needs_format).head(2000)  # the reader's sample, read already
        elif needs_format:  # only then: for a pipeline step the sample means evaluating it
            try:
                sample = piece.frame.select(needs_format).head(2000).collect()
            except Exception:  # a malformed start is reported by the full read, with its line
                sample = None
        if sample is not None:
            self.effective = with_detected_formats(self.effective, sample)
        plan = plan_checks(self.effective, piece.schema, piece.label)
        probe = pl.LazyFrame(schema=piece.schema).with_columns(plan.raw_keep).with_columns(plan.typed)
        try:
            probe.select(plan.ok.alias("ok"), plan.reason.alias("r")).collect()
            out = probe.select(plan.output_columns).collect_schema()
        except Exception as exc:
            where = self.contract.origin or "the contract"
            raise UsageError(f"{piece.label}: {where} does not apply to this data: {_first(exc)}") from None
        if self.base is not None:
            # appended rows take the base version's types so that every part has one schema
            from mlops_desktop.data.contract import parse_dtype

            base_types: dict[str, Any] = {}
            for name, text in self.base.schema.items():
                try:
                    base_types[name] = parse_dtype(text)
                except UsageError:
                    base_types[name] = None
            out = {n: (base_types.get(n) or t) for n, t in out.items()}  # type: ignore[assignment]
        self.schema = dict(out)
        self.columns = list(out)
        self._check_partition_columns()

    def _check_partition_columns(self) -> None:
        import polars as pl

        assert self.schema is not None
        for name in self.partition_by:
            if name not in self.schema:
                raise UsageError(f"cannot partition by {name!r}: no such column",
                                 hint="columns: " + ", ".join(self.schema))
            dtype = self.schema[name]
            if dtype is not None and not (dtype == pl.String or dtype == pl.Boolean or dtype == pl.Date
                                          or dtype.is_integer()):
                raise UsageError(f"cannot partition by {name!r}: it is {dtype_name(dtype)}",
                                 hint="partition by a text, integer, boolean or date column (derive a date or "
                                      "a bucket from a timestamp or a number first)")

    def write(self, piece: Piece, counts: Counts, progress: Progress, options: SourceOptions) -> None:
        if self.effective is None:
            self._prepare(piece)
        assert self.effective is not None and self.schema is not None and self.columns is not None
        plan = plan_checks(self.effective, piece.schema, piece.label)
        if set(plan.output_columns) != set(self.columns):
            raise UsageError(f"{piece.label}: columns differ from the first file of this ingestion "
                             f"(expected {', '.join(self.columns)}; got {', '.join(plan.output_columns)})",
                             hint="ingest files with different columns into different datasets")
        part = f"{self.part:05d}-{self.staging.token}.parquet"
        self.part += 1
        output = _Output(self.staging.data, self.staging.root / "tmp", part, self.partition_by, self._partitions)
        last = piece.csv_names[-1] if piece.csv_names else None
        rejects = _Rejects(self.staging.rejects / part, last, self._reject_select(plan, piece))
        native = self._native_types(piece)
        written = None
        if native:
            written = self._write_typed(piece, plan, native, output, rejects, progress, options)
            if written is None:  # a value the reader could not parse (or too many rejects): read it as text
                self._discard(output)
                rejects.discard()
                rejects = _Rejects(self.staging.rejects / part, last, self._reject_select(plan, piece))
        if written is None:
            written = self._write_text(piece, plan, output, rejects, progress, options)
        n_good, n_bad = written
        if rejects.blank_lines is not None:  # the typed path saw the rejected lines' text already
            blank = rejects.blank_lines
        else:
            blank = _drop_blank_lines(rejects.files, piece) if piece.fmt == "csv" and rejects.empty_rows else 0
        n_bad -= blank
        if piece.fmt == "csv" and piece.csv_names:
            self._check_short_rows(piece, output, rejects.last_nulls, n_good + n_bad + blank, options, progress)
        if n_good == 0 and (self.part > self.first_part + 1 or n_bad > 0 or self.first_part > 0):
            self._discard(output)
        elif output.partition_by:
            output.split(progress)
        output.commit()
        for path in output.files:
            if path not in self._hashes:
                self._hash_later(path)
        counts.rows_in += n_good + n_bad
        counts.stored += n_good
        counts.rejected += n_bad
        counts.blank_lines += blank

    def _reject_select(self, plan: CheckPlan, piece: Piece) -> list[Any]:
        """A rejected row as stored: its raw text, file, line and the reasons."""
        import polars as pl

        raw_names = {r: f"__raw_{r}" for r in plan.raw_columns}
        kept = {e.meta.output_name() for e in plan.raw_keep}
        return ([(pl.col(raw_names[c]) if raw_names[c] in kept else pl.col(c)).cast(pl.String).alias(c)
                 for c in plan.raw_columns]
                + [pl.lit(piece.label).alias(REJECT_FILE), pl.col(LINE).cast(pl.Int64).alias(REJECT_LINE),
                   pl.col("__reason").alias(REJECT_REASON)])

    def _good_select(self) -> list[Any]:
        import polars as pl

        assert self.schema is not None and self.columns is not None
        return [pl.col(c).cast(self.schema[c]) if self.schema[c] is not None else pl.col(c) for c in self.columns]

    def _checked(self, frame: pl.LazyFrame, plan: CheckPlan, dups: set[int], piece: Piece) -> tuple[pl.LazyFrame, Any,
                                                                                                      Any]:
        """The frame with converted columns, and the ok / reason expressions including duplicate keys and, for
        CSV, empty rows (polars reads a blank line as a row of nulls; it is never stored)."""
        import polars as pl

        assert self.effective is not None
        ok, reason = plan.ok, plan.reason
        if piece.fmt == "csv" and plan.raw_columns:
            frame = frame.with_columns(pl.all_horizontal([pl.col(c).is_null() for c in plan.raw_columns])
                                       .alias(_EMPTY))
            ok = ok & ~pl.col(_EMPTY)
            reason = pl.when(pl.col(_EMPTY)).then(pl.lit(EMPTY_ROW)).otherwise(reason)
        frame = frame.with_columns(plan.raw_keep).with_columns(plan.typed)
        keys = self.effective.unique_keys
        if keys:
            is_dup = pl.col(LINE).is_in(pl.Series(sorted(dups), dtype=pl.Int64).implode()) if dups else pl.lit(False)
            ok = ok & ~is_dup
            reason = join_reasons([reason, pl.when(is_dup).then(pl.lit(
                "duplicate value of unique key " + " / ".join("(" + ", ".join(k) + ")" for k in keys)))])
        return frame, ok, reason

    def _stream(self, frame: pl.LazyFrame, on_bad: Any, output: _Output, progress: Progress, piece: Piece) -> None:
        """Run the checked query: a callback on polars' threads sees every batch (cancellation, progress, partition
        keys, ``on_bad(batch, ok)`` for batches with bad rows; raising stops the query at once) and passes it on
        unchanged; good rows are then filtered natively (filtering them in the callback, under the GIL, cost
        ~15% of the query) and written."""
        import polars as pl

        seen = [0]

        def batch(df: pl.DataFrame) -> pl.DataFrame:
            if progress.cancelled:
                raise Cancelled()
            seen[0] += df.height
            keep = df["__ok"]
            output.note_keys(df, keep)
            if not keep.all():
                on_bad(df, keep)
            return df

        query = (frame.map_batches(batch, schema=frame.collect_schema(), streamable=True)
                 .filter(pl.col("__ok")).select(self._good_select()))
        _run_cancellable(lambda: output.sink(query), progress, piece, seen)

    def _write_text(self, piece: Piece, plan: CheckPlan, output: _Output, rejects: _Rejects, progress: Progress,
                    options: SourceOptions) -> tuple[int, int]:
        """Every column read as text and converted by the contract: bad rows are put aside batch by batch."""

        assert self.effective is not None
        dups, seen_keys = self._duplicate_lines(piece, piece.frame, plan)
        frame, ok, reason = self._checked(piece.frame, plan, dups, piece)
        frame = frame.with_columns(ok.alias("__ok"))
        rejects.prepare = lambda df: df.with_columns(reason.alias("__reason"))

        def take_rejects(df: pl.DataFrame, keep: pl.Series) -> None:
            # Bad rows (usually few) are put aside, and get their reasons when a reject file is written (one
            # evaluation for many batches: per batch it cost ~10% of the query), so the reason text is never built
            # for good rows. Not two sinks of one scan: polars buffers for them (20M rows: 1.4 GB).
            rejects.add(df.filter(~keep))

        try:
            self._stream(frame, take_rejects, output, progress, piece)
        except (Cancelled, UsageError):
            raise
        except Exception as exc:
            if progress.cancelled:
                raise Cancelled() from None
            raise UsageError(self._explain(piece, exc, options)) from None
        rejects.close()
        self._commit_keys(seen_keys)
        n_good = output.rows()
        n_bad = rejects.rows
        if rejects.files:
            # Row index + header is the line number unless a record spans lines (CSV) or blank lines were
            # skipped (NDJSON); a newline count tells cheaply, and only then are the rejects' lines mapped exactly.
            if piece.fmt == "csv" and _spans_lines(piece, n_good + n_bad, options):
                progress.update(0.96, f"{Path(piece.label).name}: locating rejected rows")
                for bad_path in rejects.files:
                    _exact_lines(bad_path, piece, options)
            elif piece.fmt == "ndjson" and _line_count(piece.path) != n_good + n_bad:
                for bad_path in rejects.files:
                    _exact_ndjson_lines(bad_path, piece.path)
        return n_good, n_bad

    def _native_types(self, piece: Piece) -> dict[str, Any]:
        """Contract-typed numeric and boolean columns the CSV reader can parse itself (UTF-8 files only)."""
        assert self.effective is not None
        if piece.fmt != "csv" or piece.typed_scan is None:
            return {}
        return reader_types(self.effective, piece.schema)

    def _write_typed(self, piece: Piece, text_plan: CheckPlan, native: dict[str, Any], output: _Output,
                     rejects: _Rejects, progress: Progress, options: SourceOptions) -> tuple[int, int] | None:
        """The fast path for CSV: numbers and booleans parsed by the reader (strict), checks on typed values, and
        only the line numbers of bad rows kept while reading; their raw text is fetched from the file afterwards
        and checked again as text, so rejects and reasons are exactly those of the text path.

        None when the reader meets a value it cannot parse, or more bad rows than one reject file holds: the
        caller then reads the file as text (which rejects such values row by row).
        """
        import polars as pl

        assert self.effective is not None and piece.typed_scan is not None
        plan = plan_checks(self.effective, piece.schema | native, piece.label)
        scan = piece.typed_scan(native)
        try:
            dups, seen_keys = self._duplicate_lines(piece, scan, plan)
        except Cancelled:
            raise
        except Exception:
            return None
        frame, ok, _ = self._checked(scan, plan, dups, piece)
        frame = frame.with_columns(ok.alias("__ok"))
        bad: list[pl.Series] = []
        count = [0]

        def take_lines(df: pl.DataFrame, keep: pl.Series) -> None:
            lines = df[LINE].filter(~keep)
            count[0] += lines.len()
            if count[0] > _Rejects.FLUSH_ROWS:
                raise _TooManyRejects()
            bad.append(lines)

        try:
            self._stream(frame, take_lines, output, progress, piece)
        except (Cancelled, UsageError):
            raise
        except Exception:
            if progress.cancelled:
                raise Cancelled() from None
            return None
        n_good = output.rows()
        for path in output.files:
            self._hash_later(path)  # overlaps with fetching the rejected rows
        lines = sorted(pl.concat(bad).cast(pl.Int64).to_list()) if bad else []
        if lines:
            progress.update(0.96, f"{Path(piece.label).name}: reading {len(lines):,} rejected rows")
            recovered = self._fetch_rows(piece, options, lines, n_good + len(lines))
            frame, ok, reason = self._checked(recovered.lazy(), text_plan, dups, piece)
            checked = frame.with_columns(ok.alias("__ok"), reason.alias("__reason")).collect()
            if checked["__ok"].any():
                return None  # the two readings disagree on a row: trust the text path
            if _BLANK in checked.columns:  # blank lines are not rows: neither stored nor rejected
                blank = checked[_BLANK] & (checked["__reason"] == EMPTY_ROW)
                rejects.blank_lines = int(blank.sum())
                checked = checked.filter(~blank)
            rejects.prepare = None
            rejects.add(checked)
            rejects.close()
            if _BY_RECORD in recovered.columns:
                for bad_path in rejects.files:
                    _exact_lines(bad_path, piece, options)
        self._commit_keys(seen_keys)
        return n_good, len(lines)

    def _fetch_rows(self, piece: Piece, options: SourceOptions, lines: list[int], records: int) -> pl.DataFrame:
        """The raw text of the given rows (line numbers as the reader counted them) as all-string columns."""
        import polars as pl

        from mlops_desktop.data.csvlines import fetch_lines

        assert piece.csv_names is not None and piece.csv_read_options is not None
        opts = _csv_opts(piece, options)
        header = 1 if opts.has_header else 0
        got = fetch_lines(piece.path, sorted(set(lines) | {1}))
        if got.total == records + header and all(n in got.text for n in lines):
            # No record spans lines: the reader's row number is the line number. The file's first line goes first,
            # as in the full read, so that it sets the width (a short or blank fetched line is padded with nulls,
            # not taken for the width); without a header it is dropped again after parsing.
            data = b"\n".join([got.text[1]] + [got.text[n] for n in lines]) + b"\n"
            try:
                df = pl.read_csv(data, infer_schema=False, **piece.csv_read_options)
            except Exception:  # noqa: BLE001 - parsed below the slow way
                df = None
            if df is not None and not opts.has_header:
                df = df.slice(1)
            if df is not None and df.height == len(lines):
                return df.with_columns(pl.Series(LINE, lines, dtype=pl.Int64),
                                       pl.Series(_BLANK, [not got.text[n].strip(b" \t") for n in lines]))
        # a quoted newline or a skipped blank line: read the rows by record number (the text scan), then map lines
        found = (piece.frame.filter(pl.col(LINE).is_in(pl.Series(lines, dtype=pl.Int64).implode()))
                 .collect(engine="streaming"))
        return found.with_columns(pl.col(LINE).cast(pl.Int64), pl.lit(True).alias(_BY_RECORD))

    def _explain(self, piece: Piece, exc: BaseException, options: SourceOptions) -> str:
        if piece.fmt == "csv" and piece.csv_names is not None:
            from mlops_desktop.data.csvcheck import diagnose

            problem = diagnose(piece.path, _csv_opts(piece, options), piece.csv_names)
            if problem:
                return problem
        if piece.fmt == "ndjson":
            from mlops_desktop.data.sources import json_syntax_error

            problem = json_syntax_error(piece.path, ndjson=True)
            if problem:
                return problem
        if piece.fmt == "derived":
            return f"evaluation failed: {_first(exc)}"
        return f"{piece.label}: cannot read {piece.fmt}: {_first(exc)}"

    def _check_short_rows(self, piece: Piece, output: _Output, reject_nulls: int, n: int, options: SourceOptions,
                          progress: Progress) -> None:
        """polars pads rows with too few fields with nulls; when the last column has nulls, look for such rows
        (a numpy byte scan of the file, not a Python loop per row)."""
        last = piece.csv_names[-1] if piece.csv_names else None
        if last is None or n == 0:
            return
        nulls = reject_nulls
        if last in (self.columns or []):
            nulls += sum(_null_count(path, last) for path in output.written() if path.exists())
        if not nulls:
            return
        from mlops_desktop.data import csvscan
        from mlops_desktop.data.csvcheck import diagnose

        opts = _csv_opts(piece, options)
        names = piece.csv_names or []
        if csvscan.usable(opts):
            structure = csvscan.scan_structure(piece.path, opts, len(names), progress)
            if structure.short_line is None and structure.records == n:
                return
        # A short row (the csv module confirms and words it), quoting the byte scan cannot follow (its record
        # count disagrees with the reader's), or not UTF-8: the exact Python pass decides.
        problem = diagnose(piece.path, opts, names, progress)
        if problem:
            raise UsageError(problem)

    def _duplicate_lines(self, piece: Piece, scan: pl.LazyFrame, plan: CheckPlan) -> tuple[set[int], Any]:
        """Lines of this piece whose key was already seen (earlier in the piece, an earlier piece, or the base),
        and the keys seen once this piece is stored (kept by ``_commit_keys`` only when it is)."""
        import polars as pl

        assert self.effective is not None and self.schema is not None
        keys = self.effective.unique_keys
        if not keys:
            return set(), None
        if self.duplicates is None:
            self.duplicates = {}
            self._seen: dict[tuple[str, ...], pl.DataFrame] = {}
            for key in keys:
                if self.base is not None:
                    prev = lake.scan(self.ws, self.base).select(list(key)).unique().collect()
                    self._seen[key] = prev
                else:
                    self._seen[key] = pl.DataFrame(schema={c: self.schema[c] for c in key})
        frame = scan.with_columns(plan.raw_keep).with_columns(plan.typed)
        dup_lines: set[int] = set()
        after: dict[tuple[str, ...], pl.DataFrame] = {}
        for key in keys:
            cols = list(key)
            current = frame.select([pl.col(c).cast(self.schema[c]) for c in cols]
                                   + [pl.col(LINE).cast(pl.Int64)]).collect(engine="streaming")
            seen = self._seen[key]
            not_null = pl.all_horizontal([pl.col(c).is_not_null() for c in cols])
            first = current.select(pl.struct(cols).is_first_distinct().alias("f"))["f"]
            current = current.with_columns(first.alias("__first"))
            if seen.height:
                known = current.join(seen, on=cols, how="semi", nulls_equal=False)[LINE]
                known_set = set(known.to_list())
            else:
                known_set = set()
            dups = current.filter(not_null & (~pl.col("__first") | pl.col(LINE).is_in(list(known_set))))[LINE]
            dup_lines |= set(dups.to_list())
            after[key] = pl.concat([seen, current.filter(not_null).select(cols)]).unique()
        return dup_lines, after

    def _commit_keys(self, after: Any) -> None:
        if after is not None:
            self._seen.update(after)


def _with_base_types(contract: Contract, types: dict[str, Any]) -> Contract:
    """The contract with every column typed as in the version being appended to."""
    from mlops_desktop.data.contract import TYPE_NAMES, ColumnRule

    cols = dict(contract.columns)
    for name, dtype in types.items():
        tname = dtype_name(dtype)
        if tname not in TYPE_NAMES:
            continue
        rule = cols.get(name) or ColumnRule(name=name)
        cols[name] = ColumnRule(**{**rule.__dict__, "type": tname})
    return Contract(columns=cols, rows=contract.rows, unique=contract.unique, extra_columns=contract.extra_columns,
                    origin=contract.origin)


def _csv_opts(piece: Piece, options: SourceOptions) -> Any:
    from mlops_desktop.data.csvcheck import CsvOptions

    opts = options.csv
    if piece.path.suffix.lower() in (".tsv", ".tab") and opts.separator == ",":
        opts = CsvOptions(**{**opts.__dict__, "separator": "\t"})
    return opts


class _Rejects:
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


MAX_PARTITIONS = 1000


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


class _Output:
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


class _TooManyRejects(Exception):
    """More bad rows than the typed path keeps line numbers for: the text path handles such files."""


_BY_RECORD = "__by_record"
_BLANK = "__blank_line"


def _run_cancellable(fn: Any, progress: Progress, piece: Piece, seen: list[int] | None = None) -> None:
    """Run a polars job in a thread (it releases the GIL) while this thread reports progress.

    Cancellation is seen by the job itself (its batch callback raises Cancelled), so the thread ends promptly
    and nothing keeps running after this returns.
    """
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="mlops-ingest", daemon=True)
    worker.start()
    expected = piece.est_rows
    started = time.monotonic()
    name = Path(piece.label).name
    while worker.is_alive():
        worker.join(0.1)
        if progress.cancelled:
            continue  # the job stops at its next batch; wait for it so nothing writes after we return
        if expected and seen is not None:
            progress.update(min(0.95, seen[0] / expected), f"{name}: {seen[0]:,} rows")
        else:
            progress.update(min(0.9, (time.monotonic() - started) / 10), f"reading {name}")
    if "error" in box:
        raise box["error"]
    progress.check()


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else 0


def _null_count(path: Path, column: str) -> int:
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


def _spans_lines(piece: Piece, records: int, options: SourceOptions) -> bool:
    """Whether some record spans several lines (then row index + header is not the line number)."""
    opts = _csv_opts(piece, options)
    if not opts.quote_char or not has_byte(piece.path, opts.quote_char.encode()):
        return False
    return _line_count(piece.path) != records + (1 if opts.has_header else 0)


def _line_count(path: Path) -> int:
    """Lines in a file (a last line without a newline counts), at memory speed (numpy: ~4x bytes.count)."""
    import numpy as np

    newlines = 0
    last = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            newlines += int(np.count_nonzero(np.frombuffer(chunk, dtype=np.uint8) == 10))
            last = chunk[-1:]
    return newlines + (0 if last in (b"\n", b"") else 1)


def _drop_blank_lines(files: list[Path], piece: Piece) -> int:
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
        lines = fetch_lines(piece.path, empty[REJECT_LINE].to_list()).text
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


def _exact_ndjson_lines(bad_path: Path, path: Path) -> None:
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


def _exact_lines(bad_path: Path, piece: Piece, options: SourceOptions) -> None:
    """Row index + header is the line only when no record spans lines; map the (few) rejects to exact lines."""
    import polars as pl

    from mlops_desktop.data.csvcheck import record_lines

    opts = _csv_opts(piece, options)
    df = pl.read_parquet(bad_path)
    offset = 2 if opts.has_header else 1
    records = {int(v) - offset + 1 for v in df[REJECT_LINE].to_list()}
    mapping = record_lines(piece.path, opts, records)
    lines = [mapping.get(int(v) - offset + 1, int(v)) for v in df[REJECT_LINE].to_list()]
    if lines != df[REJECT_LINE].to_list():
        df.with_columns(pl.Series(REJECT_LINE, lines, dtype=pl.Int64)).write_parquet(bad_path)


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
