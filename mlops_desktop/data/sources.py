"""Input readers: expand paths and globs, detect formats, and open each source as a lazy frame with line numbers."""

from __future__ import annotations

import glob
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.data.csvcheck import UTF8, CsvOptions, normalise_encoding, read_header, transcode
from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

MALFORMED = ("reject", "fail")
FORMATS = ("csv", "tsv", "ndjson", "json", "parquet", "sqlite", "excel")
LINE = "__line"
_EXT = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".ndjson": "ndjson", ".jsonl": "ndjson",
        ".json": "json", ".parquet": "parquet", ".pq": "parquet", ".sqlite": "sqlite", ".sqlite3": "sqlite",
        ".db": "sqlite", ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel", ".xlsb": "excel", ".ods": "excel"}
SQLITE_BATCH = 100_000


@dataclass
class SourceOptions:
    format: str | None = None
    csv: CsvOptions = field(default_factory=CsvOptions)
    table: str | None = None  # sqlite
    sheet: str | None = None  # excel (default: the first sheet)
    on_malformed: str = "reject"  # a CSV row with too few or too many fields: "reject" it, or "fail" the file

    def __post_init__(self) -> None:
        if self.on_malformed not in MALFORMED:
            raise UsageError(f"unknown on_malformed value {self.on_malformed!r}",
                             hint="use reject (keep the row aside, store the rest) or fail (refuse the file)")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format}
        if self.format in ("csv", "tsv"):
            out.update(self.csv.to_dict())
        if self.on_malformed != "reject":
            out["on_malformed"] = self.on_malformed
        if self.table:
            out["table"] = self.table
        if self.sheet:
            out["sheet"] = self.sheet
        return out


@dataclass
class Piece:
    """One readable unit: a file (or a batch of a SQLite table) as raw columns plus the 1-based line/row number."""

    label: str
    path: Path
    fmt: str
    frame: pl.LazyFrame
    schema: dict[str, Any]
    inferred: dict[str, Any]  # types a sample suggests (used where the contract says nothing)
    line_kind: str  # "line" (text files) or "row"
    csv_names: list[str] | None = None
    est_rows: int | None = None  # for progress only
    # CSV read straight from the file (UTF-8): the same scan with some columns parsed by the reader itself
    typed_scan: Callable[[dict[str, Any], bool], pl.LazyFrame] | None = None
    csv_read_options: dict[str, Any] | None = None  # what polars was given, to parse fetched lines the same way
    sample: pl.DataFrame | None = None  # the first rows, as read for type inference (text where not inferred)
    # the UTF-8, LF-terminated file the reader reads (a transcoded or CR-normalised copy), when it is not ``path``
    readable: Path | None = None
    # the same scan as ``frame`` but with ragged rows cut to the header's width (extra fields dropped, missing null)
    tolerant_frame: Callable[[], pl.LazyFrame] | None = None
    notes: dict[str, str] = field(default_factory=dict)  # column -> why its inferred type is not what it looks like


def expand(paths: list[str]) -> list[Path]:
    """Files named by paths, globs and directories, in a stable order; every pattern must match something."""
    out: list[Path] = []
    for text in paths:
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise UsageError(f"no file matches {text!r}")
            out += matches
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _EXT)
            if not files:
                raise UsageError(f"directory {path} holds no file of a known format ({', '.join(FORMATS)})")
            out += files
        elif path.is_file():
            out.append(path)
        else:
            raise UsageError(f"no such file: {path}")
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def detect_format(path: Path, requested: str | None) -> str:
    if requested:
        if requested not in FORMATS:
            raise UsageError(f"unknown format {requested!r}", hint="use one of " + ", ".join(FORMATS))
        return requested
    suffix = path.suffix.lower()
    fmt = _EXT.get(suffix)
    if fmt is None:
        raise UsageError(f"{path}: cannot tell the format from the extension {suffix or '(none)'}",
                         hint="pass --format " + "|".join(FORMATS))
    if fmt == "json":
        with open(path, "rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"{"):
            return "ndjson"
    return fmt


def pieces(path: Path, opts: SourceOptions, tmpdir: Path, typed: frozenset[str] = frozenset()) -> Iterator[Piece]:
    """The readable units of one file; ``typed`` names columns whose type is fixed already (no inference)."""
    fmt = detect_format(path, opts.format)
    if fmt in ("csv", "tsv"):
        csv_opts = opts.csv
        if fmt == "tsv" and csv_opts.separator == ",":
            csv_opts = CsvOptions(**{**csv_opts.__dict__, "separator": "\t"})
        yield csv_piece(path, csv_opts, tmpdir, typed)
    elif fmt == "ndjson":
        yield ndjson_piece(path)
    elif fmt == "json":
        yield json_array_piece(path)
    elif fmt == "parquet":
        yield parquet_piece(path)
    elif fmt == "sqlite":
        yield from sqlite_pieces(path, opts.table)
    elif fmt == "excel":
        yield excel_piece(path, opts.sheet)


def csv_piece(path: Path, opts: CsvOptions, tmpdir: Path, typed: frozenset[str] = frozenset()) -> Piece:
    import polars as pl

    encoding = normalise_encoding(opts.encoding)
    opts = CsvOptions(**{**opts.__dict__, "encoding": encoding})
    if len(opts.separator) != 1:
        raise UsageError(f"the delimiter must be one character, got {opts.separator!r}")
    names = read_header(path, opts)
    readable = path
    cr_only = _cr_only(path)
    if encoding not in UTF8 or cr_only:  # old spreadsheet exports end lines with CR alone: the reader needs LF
        readable = transcode(path, encoding, tmpdir / f"{path.stem}.utf8{path.suffix}", cr_to_lf=cr_only)
    common: dict[str, Any] = dict(separator=opts.separator, quote_char=opts.quote_char, has_header=opts.has_header,
                                  null_values=list(opts.null_values) or None, encoding="utf8")
    common["new_columns"] = names  # stripped header names (or column_N without a header)
    head = b""
    sample = None
    try:
        head = _head_bytes(readable)
        # ragged rows must not stop inference: they are rejected (or refused) by the full read
        sample = pl.read_csv(head, n_rows=10_000, infer_schema_length=10_000, truncate_ragged_lines=True, **common)
        inferred: dict[str, Any] = dict(sample.schema)
        notes, raw = _leading_zero_columns(head, common, inferred, typed)
        if notes and raw is not None:  # the sample holds those columns as the file wrote them
            sample = sample.with_columns(raw.select(list(notes)))
            for name in notes:
                inferred[name] = pl.String
        # date detection is slow in polars (~10 us a value): only for text columns that the contract leaves
        # untyped and whose first values start like a date, on a smaller sample
        dateish = [n for n, t in inferred.items() if t == pl.String and n not in typed
                   and _starts_like_dates(sample[n])]
        if dateish:
            small = head[: head.rfind(b"\n", 0, 128 << 10) + 1] if len(head) > 128 << 10 else head
            dated = pl.read_csv(small, infer_schema_length=None, try_parse_dates=True, truncate_ragged_lines=True,
                                **common).schema
            for name in dateish:
                if dated[name].is_temporal():
                    inferred[name] = dated[name]
    except Exception:  # a malformed sample is reported by the full read with its exact line
        inferred = {}
        notes = {}
        sample = None
    frame = pl.scan_csv(readable, infer_schema=False, row_index_name=LINE,
                        row_index_offset=2 if opts.has_header else 1, **common)

    def tolerant_frame() -> pl.LazyFrame:
        return pl.scan_csv(readable, infer_schema=False, row_index_name=LINE, truncate_ragged_lines=True,
                           row_index_offset=2 if opts.has_header else 1, **common)
    schema = {n: pl.String for n in names}
    typed_scan = None
    if readable == path:
        def typed_scan(types: dict[str, Any], tolerant: bool = False) -> pl.LazyFrame:
            # strict: a value the reader cannot parse fails the scan (the caller then reads the file as text);
            # tolerant: ragged rows cut to the header's width (they are known and rejected)
            return pl.scan_csv(readable, infer_schema=False, schema_overrides=types, row_index_name=LINE,
                               row_index_offset=2 if opts.has_header else 1, truncate_ragged_lines=tolerant,
                               **common)
    est_rows = None
    if head:
        per_row = len(head) / max(1, head.count(b"\n"))
        est_rows = int(readable.stat().st_size / per_row)
    return Piece(label=str(path), path=path, fmt="csv", frame=frame, schema=schema, inferred=inferred,
                 line_kind="line", csv_names=names, est_rows=est_rows, typed_scan=typed_scan, csv_read_options=common,
                 sample=sample, readable=None if readable == path else readable, tolerant_frame=tolerant_frame,
                 notes=notes)


def _cr_only(path: Path) -> bool:
    """Whether lines end with CR alone (classic Mac OS, old spreadsheet exports): CRs and no LF at the start."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    return b"\r" in head and b"\n" not in head


_LEADING_ZERO = r"^\s*[+-]?0[0-9]+\s*$"


def _leading_zero_columns(head: bytes, common: dict[str, Any], inferred: dict[str, Any],
                         typed: frozenset[str]) -> tuple[dict[str, str], pl.DataFrame | None]:
    """Columns the sample reads as numbers although some values have leading zeros (08123): identifiers such as
    postcodes or account numbers, whose zeros a number would lose. They stay text; the note says why."""
    import polars as pl

    out: dict[str, str] = {}
    names = [n for n, t in inferred.items() if t.is_numeric() and n not in typed]
    if not names:
        return out, None
    # the sample parsed those columns already: read them once more as text (the head only, a few ms)
    raw = pl.read_csv(head, n_rows=10_000, infer_schema_length=0, truncate_ragged_lines=True, **common).select(names)
    for name in names:
        values = raw[name].drop_nulls()
        hits = values.filter(values.str.contains(_LEADING_ZERO))
        if hits.len():
            out[name] = (f"kept as text: values with leading zeros such as {hits[0].strip()!r} would lose them as "
                         "numbers (type it in a contract to store numbers)")
    return out, raw


def _starts_like_dates(values: pl.Series) -> bool:
    """Whether the first non-null values all begin like a date or time (2024-01-31, 31/01/2024, 31.1.2024,
    20240131T1010, 10:30 ...): a superset of what polars' date inference accepts, so it only skips work."""
    head = values.drop_nulls().head(50)
    return not head.is_empty() and bool(head.str.contains(r"^\s*\d{1,8}[-/.:T]\d").all())


def _head_bytes(path: Path, limit: int = 2 << 20) -> bytes:
    """The first complete lines of a file (at most ``limit`` bytes), for type inference on a sample."""
    with open(path, "rb") as fh:
        head = fh.read(limit)
    if len(head) == limit and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]
    return head


def has_byte(path: Path, needle: bytes) -> bool:
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            if needle in chunk:
                return True
    return False


def _check_nonempty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise UsageError(f"{path}: the file is empty (0 bytes)")


def json_syntax_error(path: Path, ndjson: bool) -> str | None:
    """'FILE: line N, column C: message' for the first JSON syntax error, else None."""
    try:
        if ndjson:
            with open(path, encoding="utf-8-sig") as fh:
                for line_no, line in enumerate(fh, start=1):
                    if line.strip():
                        try:
                            value = json.loads(line)
                        except json.JSONDecodeError as exc:
                            return f"{path}: line {line_no}, column {exc.colno}: invalid JSON: {exc.msg}"
                        if not isinstance(value, dict):
                            return f"{path}: line {line_no}: expected a JSON object per line, got {type(value).__name__}"
            return None
        with open(path, encoding="utf-8-sig") as fh:
            json.load(fh)
    except json.JSONDecodeError as exc:
        return f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
    except UnicodeDecodeError as exc:
        return f"{path}: byte {exc.start}: not valid UTF-8 ({exc.reason})"
    return None


def ndjson_piece(path: Path) -> Piece:
    import polars as pl

    _check_nonempty(path)
    try:
        # the whole file decides the types: a late string in a numeric column widens it instead of failing
        frame = pl.scan_ndjson(path, infer_schema_length=None, row_index_name=LINE, row_index_offset=1)
        schema = dict(frame.collect_schema())
    except Exception as exc:
        raise UsageError(json_syntax_error(path, ndjson=True) or f"{path}: cannot read NDJSON: {_first(exc)}") from None
    schema.pop(LINE, None)
    if not schema:
        raise UsageError(f"{path}: no JSON objects with fields found")
    return Piece(label=str(path), path=path, fmt="ndjson", frame=frame, schema=schema, inferred=schema,
                 line_kind="line")


def json_array_piece(path: Path) -> Piece:
    import polars as pl

    _check_nonempty(path)
    problem = json_syntax_error(path, ndjson=False)
    if problem:
        raise UsageError(problem)
    try:
        df = pl.read_json(path, infer_schema_length=None)
    except Exception as exc:
        raise UsageError(f"{path}: expected a JSON array of objects: {_first(exc)}") from None
    if df.width == 0:
        raise UsageError(f"{path}: the JSON array holds no objects with fields")
    frame = df.with_row_index(LINE, offset=1).lazy()
    return Piece(label=str(path), path=path, fmt="json", frame=frame, schema=dict(df.schema), inferred=dict(df.schema),
                 line_kind="row", est_rows=df.height)


def parquet_piece(path: Path) -> Piece:
    import polars as pl

    _check_nonempty(path)
    try:
        schema = dict(pl.read_parquet_schema(path))
    except Exception as exc:
        raise UsageError(f"{path}: not a readable Parquet file (truncated or damaged?): {_first(exc)}") from None
    frame = pl.scan_parquet(path).with_row_index(LINE, offset=1)
    try:
        import pyarrow.parquet as pq

        est = int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # progress only
        est = None
    return Piece(label=str(path), path=path, fmt="parquet", frame=frame, schema=schema, inferred=schema,
                 line_kind="row", est_rows=est)


def excel_piece(path: Path, sheet: str | None) -> Piece:
    """One sheet of a workbook (read whole: sheets are small); values as text, typed like a CSV's."""
    import polars as pl

    _check_nonempty(path)
    try:
        import fastexcel
    except ImportError:
        raise UsageError(f"{path}: reading Excel needs the fastexcel package, which is not installed",
                         hint="pip install fastexcel, or save the sheet as CSV") from None
    try:
        reader = fastexcel.read_excel(str(path))
    except Exception as exc:
        raise UsageError(f"{path}: not a readable Excel workbook: {_first(exc)}") from None
    names = reader.sheet_names
    if sheet is not None and sheet not in names:
        raise UsageError(f"{path}: no sheet named {sheet!r}", hint="sheets: " + ", ".join(names))
    index = names.index(sheet) if sheet is not None else 0
    label = f"{path}[{names[index]}]"
    try:
        header = reader.load_sheet(index, header_row=None, n_rows=1, dtypes="string").to_polars()
        raw = reader.load_sheet(index, dtypes="string").to_polars()
        typed = reader.load_sheet(index, n_rows=10_000).to_polars()
    except Exception as exc:
        raise UsageError(f"{label}: cannot read the sheet: {_first(exc)}") from None
    if header.height == 0:
        raise UsageError(f"{label}: the sheet is empty")
    titles = [str(v).strip() if v is not None else "" for v in header.row(0)]
    for i, title in enumerate(titles, start=1):
        if not title:
            raise UsageError(f"{label}: row 1: column {i} has an empty name")
        if titles.index(title) + 1 != i:
            raise UsageError(f"{label}: row 1: duplicate column name {title!r} (columns {titles.index(title) + 1} "
                             f"and {i})")
    if raw.height == 0:
        raise UsageError(f"{label}: the sheet has a header but no data rows")
    raw.columns = titles
    inferred = {t: dtype for t, dtype in zip(titles, typed.dtypes, strict=True)}
    frame = raw.with_row_index(LINE, offset=2).lazy()  # line = the sheet's row number (row 1 is the header)
    return Piece(label=label, path=path, fmt="excel", frame=frame, schema={t: pl.String for t in titles},
                 inferred=inferred, line_kind="row", est_rows=raw.height)


_AFFINITY = (("INT", "int64"), ("CHAR", "string"), ("CLOB", "string"), ("TEXT", "string"), ("REAL", "float64"),
             ("FLOA", "float64"), ("DOUB", "float64"), ("BOOL", "bool"), ("DATETIME", "datetime"), ("DATE", "date"))


def _sqlite_type(declared: str) -> str:
    upper = (declared or "").upper()
    for needle, name in _AFFINITY:
        if needle in upper:
            return name
    return "string"


def sqlite_pieces(path: Path, table: str | None) -> Iterator[Piece]:
    """A SQLite table in batches; values arrive as text and are typed by the column's declared type."""
    import polars as pl

    from mlops_desktop.data.contract import parse_dtype

    if not table:
        raise UsageError(f"{path}: which table? pass --table NAME for a SQLite source")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        info = conn.execute(f'PRAGMA table_info("{table.replace(chr(34), chr(34) * 2)}")').fetchall()
    except sqlite3.Error as exc:
        raise UsageError(f"{path}: not a readable SQLite database: {exc}") from None
    if not info:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        conn.close()
        raise UsageError(f"{path}: no table named {table!r}", hint="tables: " + (", ".join(tables) or "(none)"))
    names = [r[1] for r in info]
    declared = {r[1]: _sqlite_type(r[2]) for r in info}
    quoted = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
    try:
        cur = conn.execute(f'SELECT {quoted} FROM "{table.replace(chr(34), chr(34) * 2)}" ORDER BY rowid')
    except sqlite3.Error:
        cur = conn.execute(f'SELECT {quoted} FROM "{table.replace(chr(34), chr(34) * 2)}"')
    schema = {n: pl.String for n in names}
    inferred = {n: parse_dtype(t) for n, t in declared.items()}
    start = 1
    try:
        while True:
            rows = cur.fetchmany(SQLITE_BATCH)
            if not rows and start > 1:
                break
            columns = {n: [None if r[i] is None else (r[i].hex() if isinstance(r[i], bytes) else str(r[i]))
                           for r in rows] for i, n in enumerate(names)}
            df = pl.DataFrame(columns, schema=schema).with_row_index(LINE, offset=start)
            yield Piece(label=f"{path}:{table}", path=path, fmt="sqlite", frame=df.lazy(), schema=schema,
                        inferred=inferred, line_kind="row")
            start += len(rows)
            if not rows:
                break
    finally:
        conn.close()


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
