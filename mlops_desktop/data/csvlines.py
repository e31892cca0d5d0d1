"""Fetching a few lines of a large text file by line number, at memory speed.

The typed CSV fast path keeps only the line numbers of rejected rows while it reads; their raw text is fetched
afterwards from the file with this, so that rejects keep exactly what the file said.

Each 8 MiB window of the file is turned into a bitmap of its newlines (numpy ``packbits``) with a popcount per
64-byte word, on a few threads (numpy releases the GIL). Counting needs only the popcounts; the exact offset of a
wanted line's newline is found in its one word. That is ~3.5x less work than listing every newline's offset.
"""

from __future__ import annotations

import mmap
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 8 << 20  # a multiple of mmap.ALLOCATIONGRANULARITY and of 64
_BOM = b"\xef\xbb\xbf"


@dataclass
class Lines:
    """The lines asked for -> their bytes (without the line end); ``total`` is the file's line count (a last line
    without a newline counts)."""

    total: int
    text: dict[int, bytes]


def _newline_words(fd: int, pos: int, size: int) -> tuple[Any, Any]:
    """The newline bitmap of one window as uint64 words (bit i of word w = byte 64*w + i) and the cumulative
    count of newlines up to and including each word. One window is mapped at a time: the whole file mapped
    would count in the process's RSS as it is read."""
    import numpy as np

    with mmap.mmap(fd, min(CHUNK, size - pos), access=mmap.ACCESS_READ, offset=pos) as window:
        view = np.frombuffer(window, dtype=np.uint8)
        bits = np.packbits(view == 10, bitorder="little")
        del view  # the window cannot close while a view of it exists
    if len(bits) % 8:
        bits = np.concatenate([bits, np.zeros(8 - len(bits) % 8, dtype=np.uint8)])
    words = bits.view(np.uint64)
    return words, np.cumsum(np.bitwise_count(words), dtype=np.int64)


def _nth_newlines(words: Any, cum: Any, nth: Any) -> Any:
    """Offsets (in the window) of the 0-based ``nth`` newlines of a window."""
    import numpy as np

    word = np.searchsorted(cum, nth, side="right")  # the word holding that newline
    before = np.where(word > 0, cum[np.maximum(word - 1, 0)], 0)
    rank = nth - before  # which set bit of that word
    bits = np.unpackbits(words[word].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    bit = np.argmax(np.cumsum(bits, axis=1) > rank[:, None], axis=1)
    return word.astype(np.int64) * 64 + bit


def fetch_lines(path: Path, wanted: list[int]) -> Lines:
    """The bytes of the 1-based lines in ``wanted`` and the number of lines in the file, in one pass."""
    import numpy as np

    size = path.stat().st_size
    if size == 0:
        return Lines(total=0, text={})
    want = np.unique(np.asarray(wanted, dtype=np.int64))
    text: dict[int, bytes] = {}
    newlines = 0  # newlines before the current window = complete lines so far
    line_start = 0  # file offset where line newlines+1 starts
    workers = min(4, os.cpu_count() or 1)
    with open(path, "rb") as fh, ThreadPoolExecutor(max_workers=workers) as pool:
        fd = fh.fileno()
        positions = iter(range(0, size, CHUNK))
        pending: deque[tuple[int, Future[tuple[Any, Any]]]] = deque()
        for pos in positions:  # a few windows in flight: memory stays bounded whatever the file size
            pending.append((pos, pool.submit(_newline_words, fd, pos, size)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            pos, future = pending.popleft()
            nxt = next(positions, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_newline_words, fd, nxt, size)))
            words, cum = future.result()
            count = int(cum[-1]) if cum.size else 0
            if not count:
                continue
            # lines newlines+1 .. newlines+count end in this window
            lo = np.searchsorted(want, newlines + 1)
            hi = np.searchsorted(want, newlines + count, side="right")
            if hi > lo:
                nth = want[lo:hi] - newlines - 1  # each wanted line's newline, counted in this window
                ends = _nth_newlines(words, cum, nth) + pos
                starts: Any = np.full(nth.shape, line_start, dtype=np.int64)
                later = nth > 0
                starts[later] = _nth_newlines(words, cum, nth[later] - 1) + 1 + pos
                for line, begin, stop in zip(want[lo:hi].tolist(), starts.tolist(), ends.tolist(), strict=True):
                    text[line] = os.pread(fd, stop - begin, begin)
            line_start = int(_nth_newlines(words, cum, np.array([count - 1]))[0]) + 1 + pos
            newlines += count
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
