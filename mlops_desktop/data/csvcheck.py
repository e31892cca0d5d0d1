"""Plain-Python checks of delimited text files: header, encoding, quoting and field counts, with exact line numbers.

The fast path reads files with polars; these slower checks run up front on the header and, when polars fails or a
file may hold short rows, over the whole file to say exactly which line and column is wrong.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path

from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.progress import Progress

UTF8 = ("utf-8", "utf8", "utf-8-sig", "utf_8", "utf_8_sig")


@dataclass(frozen=True)
class CsvOptions:
    separator: str = ","
    quote_char: str | None = '"'
    encoding: str = "utf-8"
    has_header: bool = True
    null_values: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"separator": self.separator, "quote_char": self.quote_char, "encoding": self.encoding,
                "has_header": self.has_header, "null_values": list(self.null_values)}


def normalise_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UsageError(f"unknown text encoding {name!r}", hint="e.g. utf-8, latin-1, cp1252, utf-16") from None


def _reader(fh, opts: CsvOptions):  # noqa: ANN001, ANN202 - csv module objects
    return csv.reader(fh, delimiter=opts.separator, quotechar=opts.quote_char or '"',
                      quoting=csv.QUOTE_MINIMAL if opts.quote_char else csv.QUOTE_NONE, strict=True)


def read_header(path: Path, opts: CsvOptions) -> list[str]:
    """Column names (or column_1.. without a header); refuses empty, header-only and duplicate-name files."""
    if path.stat().st_size == 0:
        raise UsageError(f"{path}: the file is empty (0 bytes)")
    encoding = "utf-8-sig" if opts.encoding in UTF8 else opts.encoding
    first: list[str] | None = None
    has_data = False
    try:
        with open(path, encoding=encoding, newline="") as fh:
            reader = _reader(fh, opts)
            for record in reader:
                if not record:
                    continue
                if first is None:
                    first = record
                    if not opts.has_header:
                        has_data = True
                        break
                    continue
                has_data = True
                break
    except UnicodeDecodeError:
        problem = find_undecodable(path, opts.encoding)
        raise UsageError(problem or f"{path}: cannot be decoded as {opts.encoding}",
                         hint="pass --encoding (e.g. latin-1 or cp1252) if the file is not UTF-8") from None
    except csv.Error as exc:
        what = "malformed header" if reader.line_num <= 1 else "malformed quoting"
        message = f"{path}: line {reader.line_num}: {what}: {exc}"
        raise UsageError(message, hint=problem_hint("malformed quoting", opts)) from None
    if first is None:
        raise UsageError(f"{path}: the file holds no rows (only blank lines)")
    if not opts.has_header:
        return [f"column_{i}" for i in range(1, len(first) + 1)]
    if not has_data:
        raise UsageError(f"{path}: the file has a header but no data rows",
                         hint="an empty dataset version is not stored; check the export that produced it")
    names = [n.strip() for n in first]
    for i, name in enumerate(names, start=1):
        if not name:
            raise UsageError(f"{path}: line 1: column {i} has an empty name",
                             hint="name every column in the header, or pass --no-header")
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise UsageError(f"{path}: line 1: duplicate column name {name!r} (columns {seen[name]} and {i})",
                             hint="rename one of them in the header")
        seen[name] = i
    return names


def _breaks(data: bytes) -> int:
    """Line breaks in ``data``: LF, CRLF and a CR alone (a CR-only file) each end one line."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _after_last_break(data: bytes) -> bytes:
    return data[max(data.rfind(b"\n"), data.rfind(b"\r")) + 1:]


def find_undecodable(path: Path, encoding: str) -> str | None:
    """'FILE: line N, column C: byte 0x.. cannot be decoded as ENC' for the first bad byte, else None."""
    decoder = codecs.getincrementaldecoder(encoding if encoding not in UTF8 else "utf-8")("strict")
    offset = 0
    line = 1
    line_start = b""
    prev_cr = False  # the previous chunk ended with CR: a LF at the start of this one ends no new line
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            joined = prev_cr and chunk.startswith(b"\n")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = exc.start
                # the decoder may hold a few bytes from the previous chunk: count from this chunk's start
                bad = max(0, min(bad, len(chunk) - 1))
                before = chunk[:bad]
                line += _breaks(before) - (1 if joined and before else 0)
                tail = _after_last_break(line_start + before)
                return (f"{path}: line {line}, byte {offset + bad}: byte 0x{chunk[bad]:02x} cannot be decoded as "
                        f"{encoding} (after {tail[-40:].decode('utf-8', 'replace')!r})")
            line += _breaks(chunk) - (1 if joined else 0)
            line_start = _after_last_break(line_start + chunk)[-64:]
            prev_cr = chunk.endswith(b"\r")
            offset += len(chunk)
    return None


def diagnose(path: Path, opts: CsvOptions, names: list[str], progress: Progress | None = None, *,
             label: str | None = None, ragged_ok: bool = False) -> str | None:
    """Walk the whole file; describe the first structural problem (bad quotes, wrong field count) or None.

    ``label`` names the file in the message (the original of a transcoded copy); ``ragged_ok`` skips field counts
    (rows with too few or too many fields are rejected row by row, not a problem of the file).
    """
    encoding = "utf-8-sig" if opts.encoding in UTF8 else opts.encoding
    expected = len(names)
    size = max(1, path.stat().st_size)
    where = label or str(path)
    try:
        with open(path, encoding=encoding, newline="") as fh:
            reader = _reader(fh, opts)
            record_no = 0
            for record in reader:
                record_no += 1
                if progress is not None and record_no % 200_000 == 0:
                    progress.update(min(0.99, fh.buffer.tell() / size),  # type: ignore[attr-defined]
                                    f"checking {path.name}")
                if not record or (opts.has_header and record_no == 1) or ragged_ok:
                    continue
                if len(record) != expected:
                    what = "fewer" if len(record) < expected else "more"
                    column = names[len(record)] if len(record) < expected else f"extra field {expected + 1}"
                    return (f"{where}: line {reader.line_num}: {len(record)} fields, {what} than the {expected} "
                            f"columns of the header (first missing/extra: {column})")
    except UnicodeDecodeError:
        return find_undecodable(path, opts.encoding) or f"{where}: cannot be decoded as {opts.encoding}"
    except csv.Error as exc:
        return f"{where}: line {reader.line_num}: malformed quoting: {exc}"
    except Cancelled:
        raise
    return None


def problem_hint(problem: str, opts: CsvOptions) -> str:
    """The option that helps with a problem ``diagnose`` found."""
    if "fields, fewer than" in problem or "fields, more than" in problem:
        return ("--on-malformed reject (the default) keeps such rows aside as rejects and stores the rest; "
                f"check the delimiter too (now {opts.separator!r}: pass --delimiter)")
    if "malformed quoting" in problem:
        quote = f"now {opts.quote_char!r}" if opts.quote_char else "now none"
        return (f"if the file does not quote fields, pass --no-quote; another quote character: --quote C ({quote}); "
                "a quoted field must end with its quote, a quote inside it is written twice")
    if "cannot be decoded" in problem:
        return "pass --encoding (e.g. latin-1 or cp1252) if the file is not UTF-8"
    return ""


def record_lines(path: Path, opts: CsvOptions, records: set[int]) -> dict[int, int]:
    """Map 1-based data record numbers to the 1-based line where each starts (quoted newlines span lines)."""
    encoding = "utf-8-sig" if opts.encoding in UTF8 else opts.encoding
    wanted = set(records)
    out: dict[int, int] = {}
    if not wanted:
        return out
    last = max(wanted)
    with open(path, encoding=encoding, newline="", errors="replace") as fh:
        reader = _reader(fh, opts)
        prev_end = 0
        data_no = 0
        try:
            for i, _record in enumerate(reader):
                start = prev_end + 1
                prev_end = reader.line_num
                if i == 0 and opts.has_header:
                    continue
                data_no += 1
                if data_no in wanted:
                    out[data_no] = start
                if data_no >= last:
                    break
        except csv.Error:
            pass
    return out


def transcode(path: Path, encoding: str, target: Path, *, cr_to_lf: bool = False) -> Path:
    """Rewrite a text file as UTF-8 (streaming), so that the fast reader can take it; ``cr_to_lf`` turns the line
    ends of a CR-only file into LF (one for one: line numbers stay the same)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        with open(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(4 << 20):
                text = decoder.decode(chunk)
                dst.write(text.replace("\r", "\n") if cr_to_lf else text)
            text = decoder.decode(b"", final=True)
            dst.write(text.replace("\r", "\n") if cr_to_lf else text)
    except UnicodeDecodeError:
        raise UsageError(find_undecodable(path, encoding) or f"{path}: cannot be decoded as {encoding}",
                         hint=f"pass the file's own --encoding (now {encoding})") from None
    return target
