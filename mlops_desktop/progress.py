"""Progress reporting and cancellation for long-running core jobs (no Qt: the GUI adapts it to signals)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from mlops_desktop.errors import Cancelled

ProgressCallback = Callable[[float, str], None]


class Progress:
    """Handed to a core job: ``update(fraction, message)`` reports, ``check()`` raises Cancelled when asked to stop.

    ``sub(start, end)`` maps a sub-task's 0..1 onto a slice of this one (as Orange's wrap_callback does).
    Updates are forwarded only when the fraction moved by at least ``min_step`` or the message changed.
    """

    def __init__(self, callback: ProgressCallback | None = None, *, min_step: float = 0.005,
                 cancel_event: threading.Event | None = None) -> None:
        self._callback = callback
        self._cancel = cancel_event or threading.Event()
        self._min_step = min_step
        self._last: tuple[float, str] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def update(self, fraction: float, message: str = "") -> None:
        self.check()
        fraction = min(1.0, max(0.0, fraction))
        last = self._last
        if last is not None and message == last[1] and abs(fraction - last[0]) < self._min_step and fraction < 1.0:
            return
        self._last = (fraction, message)
        if self._callback is not None:
            self._callback(fraction, message)

    def sub(self, start: float, end: float) -> Progress:
        child = Progress(lambda f, m: self.update(start + (end - start) * f, m),
                         min_step=self._min_step, cancel_event=self._cancel)
        return child
