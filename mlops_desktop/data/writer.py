"""Writing one source into a staged version: contract checks in one polars pass, good rows to Parquet, bad
rows (with their reasons) to rejects, exact line numbers, progress and prompt cancellation."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from mlops_desktop.data import lake, ragged
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
from mlops_desktop.data.linemap import (
    drop_blank_lines,
    exact_lines,
    exact_ndjson_lines,
    line_count,
    null_count,
    scan_source,
    spans_lines,
)
from mlops_desktop.data.partitions import MAX_PARTITIONS, Output, partition_segment
from mlops_desktop.data.rejects import EMPTY_ROW, REJECT_FILE, REJECT_LINE, REJECT_RAW, REJECT_REASON, Rejects
from mlops_desktop.data.sources import LINE, Piece, SourceOptions
from mlops_desktop.data.typedpath import reader_types, write_typed
from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

__all__ = ["EMPTY_ROW", "MAX_PARTITIONS", "REJECT_FILE", "REJECT_LINE", "REJECT_REASON", "Counts", "Writer",
           "partition_segment", "reader_types"]

_EMPTY = "__empty"
# the classes keep their old private names here: tests tune their limits through this module
_Rejects = Rejects
_Output = Output


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
        self._ragged: ragged.RaggedRows | None = None  # the current piece's ragged rows, once known
        self._pending_keys: Any = None  # unique keys of the current piece, kept once it is stored
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
        self._ragged = None
        while True:
            try:
                output, n_good, n_bad, blank = self._write_part(piece, plan, part, progress, options)
                break
            except ragged.RaggedRows as found:  # rows with the wrong number of fields: read again, rejecting them
                self._ragged = found
        self._commit_keys(self._pending_keys)
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

    def _write_part(self, piece: Piece, plan: CheckPlan, part: str, progress: Progress,
                    options: SourceOptions) -> tuple[_Output, int, int, int]:
        """One reading of a piece into its part: (output, good rows, bad rows, blank lines). Raises RaggedRows,
        having discarded what it wrote, when ragged rows are to be rejected and this reading did not know them."""
        output = _Output(self.staging.data, self.staging.root / "tmp", part, self.partition_by, self._partitions)
        last = piece.csv_names[-1] if piece.csv_names else None
        rejects = _Rejects(self.staging.rejects / part, last, self._reject_select(plan, piece))
        self._pending_keys = None
        native = self._native_types(piece)
        written = None
        try:
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
                blank = drop_blank_lines(rejects.files, piece) if piece.fmt == "csv" and rejects.empty_rows else 0
            n_bad -= blank
            if piece.fmt == "csv" and piece.csv_names:
                self._check_field_counts(piece, output, rejects.last_nulls, n_good + n_bad + blank, options,
                                         progress)
        except BaseException:
            self._discard(output)
            rejects.discard()
            raise
        return output, n_good, n_bad, blank

    def _reject_select(self, plan: CheckPlan, piece: Piece) -> list[Any]:
        """A rejected row as stored: its raw text, file, line and the reasons."""
        import polars as pl

        raw_names = {r: f"__raw_{r}" for r in plan.raw_columns}
        kept = {e.meta.output_name() for e in plan.raw_keep}
        return ([(pl.col(raw_names[c]) if raw_names[c] in kept else pl.col(c)).cast(pl.String).alias(c)
                 for c in plan.raw_columns]
                + [pl.lit(piece.label).alias(REJECT_FILE), pl.col(LINE).cast(pl.Int64).alias(REJECT_LINE),
                   pl.col("__reason").alias(REJECT_REASON), pl.col(REJECT_RAW)])

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
        if self._ragged is not None:  # a ragged row's fields are shifted: its one reason is its field count
            has_header = bool((piece.csv_read_options or {}).get("has_header", True))
            is_ragged, ragged_reason = ragged.marks(self._ragged, has_header)
            ok = ok & ~is_ragged
            reason = pl.when(is_ragged).then(ragged_reason).otherwise(reason)
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
        found = self._ragged
        source = piece.frame
        if found is not None and piece.tolerant_frame is not None:
            source = piece.tolerant_frame()  # ragged rows cut to the header's width; they are rejected below
        try:
            dups, seen_keys = self._duplicate_lines(piece, source, plan)
        except (Cancelled, UsageError):
            raise
        except Exception as exc:  # a malformed file: reported (or its ragged rows found) as for the full read
            self._read_failed(piece, exc, options, progress)
        frame, ok, reason = self._checked(source, plan, dups, piece)
        frame = frame.with_columns(ok.alias("__ok"))
        if found is None:
            rejects.prepare = lambda df: df.with_columns(reason.alias("__reason"))
        else:
            rejects.prepare = lambda df: ragged.with_raw(df.with_columns(reason.alias("__reason")), found)

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
            self._read_failed(piece, exc, options, progress)
        rejects.close()
        self._pending_keys = seen_keys
        n_good = output.rows()
        n_bad = rejects.rows
        if rejects.files:
            # Row index + header is the line number unless a record spans lines (CSV) or blank lines were
            # skipped (NDJSON); a newline count tells cheaply, and only then are the rejects' lines mapped exactly.
            if piece.fmt == "csv" and spans_lines(piece, n_good + n_bad, options):
                progress.update(0.96, f"{Path(piece.label).name}: locating rejected rows")
                for bad_path in rejects.files:
                    exact_lines(bad_path, piece, options)
            elif piece.fmt == "ndjson" and line_count(piece.path) != n_good + n_bad:
                for bad_path in rejects.files:
                    exact_ndjson_lines(bad_path, piece.path)
        return n_good, n_bad

    def _native_types(self, piece: Piece) -> dict[str, Any]:
        """Contract-typed numeric and boolean columns the CSV reader can parse itself (UTF-8 files only)."""
        assert self.effective is not None
        if piece.fmt != "csv" or piece.typed_scan is None:
            return {}
        return reader_types(self.effective, piece.schema)


    def _write_typed(self, piece: Piece, text_plan: CheckPlan, native: dict[str, Any], output: _Output,
                     rejects: _Rejects, progress: Progress, options: SourceOptions) -> tuple[int, int] | None:
        """The typed fast path (typedpath.py); None hands the piece to the text path."""
        return write_typed(self, piece, text_plan, native, output, rejects, progress, options)

    def _read_failed(self, piece: Piece, exc: BaseException, options: SourceOptions, progress: Progress) -> NoReturn:
        """The reader stopped: find the ragged rows (rejected: RaggedRows) or say in words what is wrong."""
        if piece.fmt == "csv" and self._ragged is None and options.on_malformed == "reject":
            found = ragged.find(piece, options, progress)
            if found is not None:
                raise found
        message, hint = self._explain(piece, exc, options)
        raise UsageError(message, hint=hint or None) from None

    def _explain(self, piece: Piece, exc: BaseException, options: SourceOptions) -> tuple[str, str]:
        """The reader's failure in words that name the file and the line, and the option that helps (never the
        reader's own message)."""
        if piece.fmt == "csv" and piece.csv_names is not None:
            from mlops_desktop.data.csvcheck import diagnose, problem_hint

            path, opts = scan_source(piece, options)
            problem = diagnose(path, opts, piece.csv_names, label=piece.label, ragged_ok=self._ragged is not None)
            if problem:
                return problem, problem_hint(problem, opts)
            return csv_failure(piece, exc, opts)
        if piece.fmt == "ndjson":
            from mlops_desktop.data.sources import json_syntax_error

            problem = json_syntax_error(piece.path, ndjson=True)
            if problem:
                return problem, ""
        if piece.fmt == "derived":
            return f"evaluation failed: {_first(exc)}", ""
        return f"{piece.label}: cannot read {piece.fmt}: {_first(exc)}", ""

    def _check_field_counts(self, piece: Piece, output: _Output, reject_nulls: int, n: int, options: SourceOptions,
                            progress: Progress) -> None:
        """polars pads rows with too few fields with nulls; when the last column has nulls, look for such rows
        (a numpy byte scan of the file, not a Python loop per row). Rejected (RaggedRows) or refused."""
        from mlops_desktop.data import csvscan
        from mlops_desktop.data.csvcheck import diagnose, problem_hint

        path, opts = scan_source(piece, options)
        names = piece.csv_names or []
        if self._ragged is not None:  # read with the ragged rows known: the scan and the reader must agree
            if self._ragged.ragged.records != n:
                problem = diagnose(path, opts, names, progress, label=piece.label, ragged_ok=True)
                raise UsageError(problem or f"{piece.label}: the rows with the wrong number of fields cannot be "
                                            "told apart from the others (quotes the scan cannot follow)",
                                 hint=problem_hint(problem or "malformed quoting", opts))
            return
        last = piece.csv_names[-1] if piece.csv_names else None
        if last is None or n == 0:
            return
        nulls = reject_nulls
        if last in (self.columns or []):
            nulls += sum(null_count(path, last) for path in output.written() if path.exists())
        if not nulls:
            return
        if options.on_malformed == "reject":
            found = ragged.find(piece, options, progress)
            if found is not None:
                raise found
        if csvscan.usable(opts):
            structure = csvscan.scan_structure(path, opts, len(names), progress)
            if structure.short_line is None and structure.records == n:
                return
        # A short row (the csv module confirms and words it), quoting the byte scan cannot follow (its record
        # count disagrees with the reader's), or a multi-byte quote: the exact Python pass decides.
        problem = diagnose(path, opts, names, progress, label=piece.label)
        if problem:
            raise UsageError(problem, hint=problem_hint(problem, opts) or None)

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



def csv_failure(piece: Piece, exc: BaseException, opts: Any) -> tuple[str, str]:
    """A CSV reader failure that the checks of csvcheck do not explain, worded without the reader's message."""
    text = str(exc)
    names = piece.csv_names or []
    options = (f"delimiter {opts.separator!r}, quote {opts.quote_char!r}" if opts.quote_char
               else f"delimiter {opts.separator!r}, no quoting")
    if "new_columns" in text or "number of columns" in text:
        return (f"{piece.label}: line 1: the reader splits the header into another number of columns than the "
                f"{len(names)} it names ({options}); are the line ends or the delimiter unusual?",
                "pass --delimiter, --quote C or --no-quote to match the file")
    return (f"{piece.label}: cannot be read as CSV with {options} (encoding {opts.encoding}), and no line breaks "
            "the field, quote or encoding rules on its own",
            "pass --delimiter, --quote C / --no-quote or --encoding to match the file")


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
