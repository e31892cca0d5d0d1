"""How numbers, durations and times read to a person: shared by the CLI tables and the GUI (no Qt here)."""

from __future__ import annotations

import math
from datetime import datetime


def fmt_number(value: float | None, none: str = "") -> str:
    """Four significant places, scientific notation for very large or very small magnitudes."""
    if value is None:
        return none
    if math.isnan(value):
        return "nan"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def fmt_duration(seconds: float | None, none: str = "") -> str:
    if seconds is None:
        return none
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_time(ts: float | None, none: str = "") -> str:
    return none if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
