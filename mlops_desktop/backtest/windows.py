"""Back-test window arithmetic: expanding or sliding train windows, test length, stride, gap, ragged last window.

Pure functions over numbers, no data and no I/O. Two domains:
- values of the time column (durations such as ``7d`` or ``1h`` become microseconds for a datetime column, days
  for a date column; a bare number is in the column's own unit for a numeric column);
- row positions in time order (``500rows``), turned into time bounds by `row_bounds_to_values`.
Every interval is half-open, ``[start, end)``. Vocabulary as in skforecast/sktime: the train window ends ``gap``
before the test window starts; without a train length it is expanding (from the first row), with one it slides.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from mlops_desktop.errors import UsageError

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|m|h|d|w|rows?|r)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Length:
    """A window length as given: ``kind`` is "duration" (``seconds``), "rows" or "units" (a bare number)."""

    kind: str
    amount: float
    text: str

    @property
    def seconds(self) -> float:
        return self.amount

    def in_units(self, unit_s: float | None) -> int:
        """This length in the time column's unit (``unit_s`` seconds per unit; None: the column is numeric)."""
        if self.kind == "units":
            if unit_s is not None:
                raise UsageError(f"{self.text!r} has no unit, but the time column holds dates or times",
                                 hint="write a duration such as 7d, 12h, 30m, or a row count such as 500rows")
            return int(self.amount)
        if self.kind == "duration":
            if unit_s is None:
                raise UsageError(f"{self.text!r} is a duration, but the time column holds plain numbers",
                                 hint="give a bare number in the column's own unit, or a row count such as 500rows")
            return round(self.amount / unit_s)
        raise UsageError(f"{self.text!r} is a row count here, where a time length is needed")


def parse_length(text: str | int | float | None, field: str, *, allow_zero: bool = False) -> Length | None:
    """``7d``, ``1h``, ``90s``, ``2w``, ``500rows`` (``500r``), or a bare number; `field` names it in errors."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    match = _LENGTH.match(str(text))
    if not match:
        raise UsageError(f"{field}: {text!r} is not a length",
                         hint="write a duration (7d, 12h, 30m, 90s, 2w), a row count (500rows) or a number")
    amount, unit = float(match.group(1)), (match.group(2) or "").lower()
    if amount == 0 and not allow_zero:
        raise UsageError(f"{field}: the length must be more than zero, got {text!r}")
    if unit in ("row", "rows", "r"):
        if amount != int(amount):
            raise UsageError(f"{field}: a row count is a whole number, got {text!r}")
        return Length("rows", amount, str(text).strip())
    if not unit:
        return Length("units", amount, str(text).strip())
    return Length("duration", amount * _UNITS_S[unit], str(text).strip())


@dataclass(frozen=True)
class Window:
    """One back-test window, in the plan's domain (time-column values or row positions)."""

    index: int
    train_start: int | None  # None: no training data before this window (replay without a train length)
    train_end: int | None
    test_start: int
    test_end: int
    ragged: bool = False  # the last window, shorter than the test length because the data ends inside it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(test: int, stride: int, train: int | None, gap: int, initial: int | None) -> None:
    if test <= 0:
        raise UsageError("test window: the length must be more than zero")
    if stride <= 0:
        raise UsageError("stride: the length must be more than zero")
    if train is not None and train <= 0:
        raise UsageError("train window: the length must be more than zero")
    if gap < 0:
        raise UsageError("gap: the length cannot be negative")
    if initial is not None and initial < 0:
        raise UsageError("initial train length cannot be negative")


def plan(start: int, end: int, *, test: int, stride: int, train: int | None = None, gap: int = 0,
         initial: int | None = None, keep_ragged: bool = True, max_windows: int = 100_000) -> list[Window]:
    """Windows over ``[start, end)``.

    The first test window starts at ``start + first_train + gap``, where ``first_train`` is ``initial`` if given,
    else ``train`` (a sliding window needs a full first train window), else 0 (expanding: the first window may
    have no training data). Window k tests ``[s_k, s_k + test)`` with ``s_k = s_0 + k * stride`` for every
    ``s_k < end``; its train window is ``[s_k - gap - train, s_k - gap)`` (sliding) or ``[start, s_k - gap)``
    (expanding), cut at ``start``; an empty one is None. The last window is ragged when ``s_k + test > end``;
    ``keep_ragged=False`` drops it.
    """
    _check(test, stride, train, gap, initial)
    first_train = initial if initial is not None else (train if train is not None else 0)
    s = start + first_train + gap
    windows: list[Window] = []
    while s < end:
        if len(windows) >= max_windows:
            raise UsageError(f"the plan has more than {max_windows:,} windows",
                             hint="use a longer test window or stride")
        train_end = s - gap
        train_start = start if train is None else max(start, train_end - train)
        has_train = train_end > train_start
        ragged = s + test > end
        if ragged and not keep_ragged:
            break
        windows.append(Window(len(windows), train_start if has_train else None, train_end if has_train else None,
                              s, s + test, ragged))
        s += stride
    return windows


def row_bounds_to_values(windows: list[Window], sorted_times: Any, end_value: int) -> list[Window]:
    """Row-position windows (over times sorted ascending) as time-value bounds: position p becomes the time of the
    p-th row, a position at or past the last row becomes ``end_value`` (one past the last time).

    Rows that share a timestamp are never split: a bound that falls inside a run of equal times moves to the first
    of them, so those rows all go to the later window (a row can only be tested on training data strictly older).
    """
    n = len(sorted_times)

    def value(p: int | None) -> int | None:
        if p is None:
            return None
        return int(sorted_times[p]) if p < n else end_value

    out = []
    for w in windows:
        out.append(Window(w.index, value(w.train_start), value(w.train_end), int(value(w.test_start) or 0),
                          int(value(w.test_end) or 0), w.ragged))
    return out
