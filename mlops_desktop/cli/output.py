"""Human-readable tables by default, JSON with --json: the two ways every command prints."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from mlops_desktop import textfmt
from mlops_desktop.textfmt import fmt_number


def fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


def fmt_time(ts: float | None) -> str:
    return textfmt.fmt_time(ts, none="-")


def fmt_duration(seconds: float | None) -> str:
    return textfmt.fmt_duration(seconds, none="-")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None,
          max_width: int = 48) -> None:
    out = out or sys.stdout
    # one line per row: a multi-line cell (a command, a message) is folded onto its line
    cells = [[" ⏎ ".join(fmt_value(c).splitlines()) for c in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    out.write(line.rstrip() + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if not rows:
        out.write("(none)\n")


def emit_json(obj: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, float):
        return None
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def clean_json(obj: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by None, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj
