"""Byte-level CSV structure scan with numpy: field count and end line of every record, at memory speed.

polars pads a row with too few fields with nulls, so a short row looks like a row whose last field is empty. This
scan tells them apart without a Python loop per row: a byte is inside quotes when the number of quote bytes before it
is odd (an escaped quote "" adds two and keeps the parity), so record ends are the newlines outside quotes and
fields are one more than the separators outside quotes. It is exact for well-formed RFC 4180 text; for anything
else (a stray quote inside an unquoted field) the record count disagrees with the reader's and the caller falls
back to the plain-Python check, which names the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlops_desktop.data.csvcheck import UTF8, CsvOptions
from mlops_desktop.errors import Cancelled
from mlops_desktop.progress import Progress

CHUNK = 16 << 20  # bytes per numpy pass: a few arrays of this size are alive at once


@dataclass
class Structure:
    records: int  # data records (blank lines count: polars reads them as all-null rows)
    short_line: int | None = None  # end line of the first record with too few fields
    short_fields: int = 0


def usable(opts: CsvOptions) -> bool:
    """Whether the byte scan applies: UTF-8 text and one-byte separator and quote."""
    if opts.encoding not in UTF8 or len(opts.separator.encode()) != 1:
        return False
    return opts.quote_char is None or len(opts.quote_char.encode()) == 1


def scan_structure(path: Path, opts: CsvOptions, expected: int, progress: Progress | None = None) -> Structure:
    """Count the data records of a delimited file and find the first one with fewer than ``expected`` fields."""
    import numpy as np

    sep = opts.separator.encode()[0]
    quote = opts.quote_char.encode()[0] if opts.quote_char else None
    size = max(1, path.stat().st_size)
    parity = 0  # inside quotes at the end of the previous chunk
    lines_before = 0  # newlines (all of them) before this chunk
    open_fields = 1  # fields so far of the record that the previous chunk left open
    open_bytes = 0  # its length, to tell a blank line from a record
    records = 0
    skip_header = opts.has_header
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if progress is not None:
                if progress.cancelled:
                    raise Cancelled()
                progress.update(min(0.99, done / size), f"checking {path.name}")
            done += len(chunk)
            buf = np.frombuffer(chunk, dtype=np.uint8)
            newline = buf == 10
            separator = buf == sep
            if quote is not None:
                inside = np.bitwise_xor.accumulate((buf == quote).view(np.uint8)) ^ np.uint8(parity)
                parity = int(inside[-1])
                outside = inside == 0
                del inside
                newline &= outside
                separator &= outside
                del outside
            ends = np.flatnonzero(newline)
            del newline
            seps = np.flatnonzero(separator)
            del separator
            if len(ends):
                # separators before each record end -> fields of each record ending in this chunk
                before = np.searchsorted(seps, ends)
                fields = np.diff(before, prepend=0) + 1
                fields[0] += open_fields - 1
                starts = np.empty_like(ends)
                starts[0] = 0
                starts[1:] = ends[:-1] + 1
                length = ends - starts
                length[0] += open_bytes
                # a blank line ("" or "\r") is a record of nulls for polars, never a short row
                cr_only = (length == 1) & (buf[np.maximum(ends - 1, 0)] == 13)
                blank = (length == 0) | cr_only
                if skip_header:
                    fields[0] = expected
                    blank[0] = True
                short = np.flatnonzero((fields < expected) & ~blank)
                if len(short):
                    first = int(short[0])
                    line = lines_before + int(np.count_nonzero(buf[: ends[first] + 1] == 10))
                    n_records = records + first + (0 if skip_header else 1)
                    return Structure(records=n_records, short_line=line, short_fields=int(fields[first]))
                records += len(ends) - (1 if skip_header else 0)
                skip_header = False
                tail = len(buf) - int(ends[-1]) - 1
                open_fields = 1 + len(seps) - int(before[-1])
                open_bytes = tail
            else:
                open_fields += len(seps)
                open_bytes += len(buf)
            lines_before += int(np.count_nonzero(buf == 10))
    if open_bytes:  # a last line without a newline
        if skip_header:
            return Structure(records=records)
        if open_fields < expected:
            return Structure(records=records + 1, short_line=lines_before + 1, short_fields=open_fields)
        records += 1
    return Structure(records=records)


def short_row_message(path: Path, structure: Structure, names: list[str]) -> str:
    """The same words as csvcheck.diagnose for a record with too few fields."""
    n = structure.short_fields
    return (f"{path}: line {structure.short_line}: {n} fields, fewer than the {len(names)} columns of the header "
            f"(first missing/extra: {names[n]})")


@dataclass
class Ragged:
    """Every data record whose field count differs from the header's, as the reader numbers rows (1-based, blank
    lines counted), with the lines it starts and ends on; ``records`` is the file's data record count."""

    expected: int
    records: int = 0
    numbers: list[int] = field(default_factory=list)
    fields: list[int] = field(default_factory=list)
    start_lines: list[int] = field(default_factory=list)
    end_lines: list[int] = field(default_factory=list)
    truncated: bool = False  # more than ``limit`` ragged records: the lists hold the first ``limit``

    @property
    def count(self) -> int:
        return len(self.numbers)


def scan_ragged(path: Path, opts: CsvOptions, expected: int, progress: Progress | None = None,
                limit: int = 1_000_000) -> Ragged:
    """Find every record with fewer or more fields than ``expected`` in one numpy pass (same rules as
    ``scan_structure``: quotes by parity, blank lines are records of nulls and never ragged)."""
    import numpy as np

    sep = opts.separator.encode()[0]
    quote = opts.quote_char.encode()[0] if opts.quote_char else None
    size = max(1, path.stat().st_size)
    out = Ragged(expected=expected)
    parity = 0
    lines_before = 0
    last_end_line = 0  # the line the previous record (or the header) ended on
    open_fields = 1
    open_bytes = 0
    skip_header = opts.has_header
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if progress is not None:
                if progress.cancelled:
                    raise Cancelled()
                progress.update(min(0.99, done / size), f"checking {path.name}")
            done += len(chunk)
            buf = np.frombuffer(chunk, dtype=np.uint8)
            all_newlines = np.flatnonzero(buf == 10)
            newline = buf == 10
            separator = buf == sep
            if quote is not None:
                inside = np.bitwise_xor.accumulate((buf == quote).view(np.uint8)) ^ np.uint8(parity)
                parity = int(inside[-1])
                outside = inside == 0
                del inside
                newline &= outside
                separator &= outside
                del outside
            ends = np.flatnonzero(newline)
            del newline
            seps = np.flatnonzero(separator)
            del separator
            if len(ends):
                before = np.searchsorted(seps, ends)
                fields = np.diff(before, prepend=0) + 1
                fields[0] += open_fields - 1
                starts = np.empty_like(ends)
                starts[0] = 0
                starts[1:] = ends[:-1] + 1
                length = ends - starts
                length[0] += open_bytes
                cr_only = (length == 1) & (buf[np.maximum(ends - 1, 0)] == 13)
                blank = (length == 0) | cr_only
                end_lines = lines_before + np.searchsorted(all_newlines, ends, side="right")
                start_lines = np.empty_like(end_lines)
                start_lines[0] = last_end_line + 1
                start_lines[1:] = end_lines[:-1] + 1
                first_no = out.records + (0 if skip_header else 1)  # the record number of ends[0]
                if skip_header:
                    fields[0] = expected
                    blank[0] = True
                bad = np.flatnonzero((fields != expected) & ~blank)
                room = limit - out.count
                if len(bad) > room:
                    out.truncated = True
                    bad = bad[:room]
                out.numbers += (bad + first_no).tolist()
                out.fields += fields[bad].tolist()
                out.start_lines += start_lines[bad].tolist()
                out.end_lines += end_lines[bad].tolist()
                out.records += len(ends) - (1 if skip_header else 0)
                skip_header = False
                last_end_line = int(end_lines[-1])
                open_fields = 1 + len(seps) - int(before[-1])
                open_bytes = len(buf) - int(ends[-1]) - 1
            else:
                open_fields += len(seps)
                open_bytes += len(buf)
            lines_before += len(all_newlines)
    if open_bytes and not skip_header:  # a last line without a newline
        out.records += 1
        if open_fields != expected:
            if out.count < limit:
                out.numbers.append(out.records)
                out.fields.append(open_fields)
                out.start_lines.append(last_end_line + 1)
                out.end_lines.append(lines_before + 1)
            else:
                out.truncated = True
    return out
