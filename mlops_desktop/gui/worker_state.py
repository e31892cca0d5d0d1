"""Keeps each worker thread's Python thread state for the thread's whole life, so thread-locals survive tasks.

QThreadPool threads are not made by Python: PySide gives each task a fresh Python thread state and drops it
afterwards, so ``threading.local`` data did not survive from one task to the next. The store keeps one SQLite
connection per thread in a thread-local: every task opened a new connection that was never closed (each with its
own page cache), about 8 a second while five runs were charted live, and the window grew by hundreds of MB
(issue 14: 140 -> 950 MB). Taking one more reference on the thread state the first time a thread runs a task
keeps it (and its thread-locals, the connection among them) until the thread ends; the pool's threads are
kept alive (no expiry), so there is one connection per pool thread, as intended.
"""

from __future__ import annotations

import ctypes
import threading

_state = threading.local()   # survives from task to task once pinned (a fresh, unpinned state has no flag)
_count = [0]
_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_ensure.argtypes = []


def keep_thread_state() -> None:
    """Call at the start of every task on a pool thread (cheap after the first time on that thread)."""
    if getattr(_state, "pinned", False):
        return
    _ensure()   # one extra hold on this thread's state: the per-task release no longer deletes it
    _state.pinned = True
    _count[0] += 1


def pinned_threads() -> int:
    return _count[0]
