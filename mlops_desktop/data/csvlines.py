"""Fetching a few lines of a large text file by line number, at memory speed (a numpy newline scan of a mmap).

The typed CSV fast path keeps only the line numbers of rejected rows while it reads; their raw text is fetched
afterwards from the file with this, so that rejects keep exactly what the file said.
"""

from __future__ import annotations

import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 8 << 20  # a multiple of mmap.ALLOCATIONGRANULARITY
_BOM = b"\xef\xbb\xbf"


@dataclass
class Lines:
    """The lines asked for -> their bytes (without the line end); ``total`` is the file's line count (a last line
    without a newline counts)."""

    total: int
    text: dict[int, bytes]


def _newlines(fd: int, pos: int, size: int) -> Any:
    """Offsets (within the window) of the newlines in the window of the file starting at ``pos``. One window is
    mapped at a time: the whole file mapped would count in the process's RSS as it is read."""
    import numpy as np

    with mmap.mmap(fd, min(CHUNK, size - pos), access=mmap.ACCESS_READ, offset=pos) as window:
        view = np.frombuffer(window, dtype=np.uint8)
        found = np.flatnonzero(view == 10).astype(np.int32)
        del view  # the window cannot close while a view of it exists
    return found


def fetch_lines(path: Path, wanted: list[int]) -> Lines:
    """The bytes of the 1-based lines in ``wanted`` and the number of lines in the file, in one pass."""
    import numpy as np

    size = path.stat().st_size
    if size == 0:
        return Lines(total=0, text={})
    want = np.unique(np.asarray(wanted, dtype=np.int64))
    newlines = 0  # newlines before the current chunk = complete lines so far
    line_start = 0  # offset where line newlines+1 starts
    text: dict[int, bytes] = {}
    with open(path, "rb") as fh, ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        fd = fh.fileno()
        # the newline scans run in parallel (numpy releases the GIL); the lines are picked out in order
        for pos, nl in zip(range(0, size, CHUNK), pool.map(lambda p: _newlines(fd, p, size), range(0, size, CHUNK)),
                           strict=True):
            if not nl.size:
                continue
            # lines newlines+1 .. newlines+nl.size end in this window
            lo = np.searchsorted(want, newlines + 1)
            hi = np.searchsorted(want, newlines + nl.size, side="right")
            if hi > lo:
                idx = want[lo:hi] - newlines - 1  # each wanted line's newline, as an index into nl
                ends = nl[idx].astype(np.int64) + pos
                starts = np.where(idx > 0, nl[np.maximum(idx - 1, 0)].astype(np.int64) + 1 + pos, line_start)
                for line, begin, stop in zip(want[lo:hi].tolist(), starts.tolist(), ends.tolist(), strict=True):
                    text[line] = os.pread(fd, stop - begin, begin)
            line_start = int(nl[-1]) + 1 + pos
            newlines += int(nl.size)
        total = newlines + (1 if line_start < size else 0)
        last = int(np.searchsorted(want, newlines + 1))
        if line_start < size and last < want.size and want[last] == newlines + 1:
            text[newlines + 1] = os.pread(fd, size - line_start, line_start)  # the last line, without a newline
    for line, raw in text.items():
        if raw.endswith(b"\r"):
            text[line] = raw = raw[:-1]
        if line == 1 and raw.startswith(_BOM):
            text[line] = raw[len(_BOM):]
    return Lines(total=total, text=text)
