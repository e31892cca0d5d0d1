"""Typed columns from request values: one signature column's JSON or CSV values -> a checked 1-D numpy array.

Every rejection is a `BadInput` naming the column and the (0-based) row, the way the caller sent it, so a client
can find the value; nothing here lets a library message or a traceback through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlops_desktop.registry.signature import FLOAT_TYPES, INTEGER_TYPES, ColumnSpec

_FLOAT_OK = frozenset((float, int))
_INT_OK = frozenset((int,))
_STR_OK = frozenset((str,))
_BOOL_OK = frozenset((bool,))
_NONE = type(None)


class BadInput(Exception):  # noqa: N818 - a client's mistake, reported as an HTTP status
    """A request the server refuses: HTTP status, a sentence for the client, and where the problem is."""

    def __init__(self, status: int, message: str, *, field: str | None = None, row: int | None = None,
                 code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.row = row
        self.code = code

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.row is not None:
            out["row"] = self.row
        return out


def describe(value: Any) -> str:
    """A short, safe description of a value a client sent (never its whole content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {text!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def expected(spec: ColumnSpec) -> str:
    if spec.dtype in FLOAT_TYPES:
        return f"a number ({spec.dtype})"
    if spec.dtype in INTEGER_TYPES:
        return f"an integer ({spec.dtype})"
    if spec.dtype == "bool":
        return "true or false"
    if spec.dtype == "string":
        return "a string"
    return f"an ISO {spec.dtype} string"


def _bad(spec: ColumnSpec, row: int, value: Any, base_row: int) -> BadInput:
    return BadInput(422, f"column {spec.name!r}, row {row + base_row}: expected {expected(spec)}, "
                         f"got {describe(value)}", field=spec.name, row=row + base_row)


def _first_bad(spec: ColumnSpec, values: Sequence[Any], ok: frozenset[type], base_row: int) -> BadInput:
    for i, v in enumerate(values):
        if type(v) not in ok and not (v is None and spec.nullable):
            if v is None:
                return BadInput(422, f"column {spec.name!r}, row {i + base_row}: a value is required (the column "
                                     "is not nullable)", field=spec.name, row=i + base_row)
            return _bad(spec, i, v, base_row)
    raise AssertionError("no bad value")  # pragma: no cover - callers only come here after a failed check


def to_array(spec: ColumnSpec, values: Sequence[Any], *, base_row: int = 0) -> Any:
    """JSON values of one column -> numpy array of the signature's type (float64 with NaN for null numbers)."""
    import numpy as np

    if not isinstance(values, list):
        values = list(values)
    types = set(map(type, values))
    if spec.dtype in FLOAT_TYPES:
        if not types <= _FLOAT_OK:
            if types <= (_FLOAT_OK | {_NONE}) and spec.nullable:
                return np.array([math.nan if v is None else v for v in values], dtype=spec.dtype)
            raise _first_bad(spec, values, _FLOAT_OK, base_row)
        try:
            return np.array(values, dtype=spec.dtype)
        except OverflowError:
            return _overflow(spec, values, base_row)
    if spec.dtype in INTEGER_TYPES:
        if float in types:  # 3.0 is an integer sent by a client that only has doubles (pandas, JavaScript)
            values = [int(v) if type(v) is float and v.is_integer() else v for v in values]
            types = set(map(type, values))
        if not types <= _INT_OK:
            if types <= {int, _NONE} and spec.nullable:  # nulls in an integer column: float64 with NaN
                return np.array([math.nan if v is None else v for v in values], dtype="float64")
            raise _first_bad(spec, values, _INT_OK, base_row)
        try:
            return np.array(values, dtype=spec.dtype)
        except OverflowError:
            return _overflow(spec, values, base_row)
    if spec.dtype == "bool":
        if not types <= _BOOL_OK:
            if types <= {bool, _NONE} and spec.nullable:
                return np.array(values, dtype=object)
            raise _first_bad(spec, values, _BOOL_OK, base_row)
        return np.array(values, dtype=bool)
    if spec.dtype == "string":
        if not types <= _STR_OK and not (types <= {str, _NONE} and spec.nullable):
            raise _first_bad(spec, values, _STR_OK, base_row)
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return _temporal(spec, values, base_row)


def _overflow(spec: ColumnSpec, values: Sequence[Any], base_row: int) -> Any:
    import numpy as np

    info: Any = np.iinfo(spec.dtype) if spec.dtype in INTEGER_TYPES else np.finfo(spec.dtype)
    for i, v in enumerate(values):
        if v is not None and not (info.min <= v <= info.max):
            raise BadInput(422, f"column {spec.name!r}, row {i + base_row}: {v!r} is out of range for "
                                f"{spec.dtype}", field=spec.name, row=i + base_row)
    raise BadInput(422, f"column {spec.name!r}: a value is out of range for {spec.dtype}", field=spec.name)


def _temporal(spec: ColumnSpec, values: Sequence[Any], base_row: int) -> Any:
    import numpy as np

    unit: Any = "D" if spec.dtype == "date" else "us"
    out = np.empty(len(values), dtype=f"datetime64[{unit}]")
    for i, v in enumerate(values):
        if v is None and spec.nullable:
            out[i] = np.datetime64("NaT")
            continue
        if type(v) is not str:
            raise _bad(spec, i, v, base_row)
        try:
            out[i] = np.datetime64(v.rstrip("Z"), unit)
        except ValueError:
            raise _bad(spec, i, v, base_row) from None
    return out


def parse_text(spec: ColumnSpec, values: Sequence[str], *, base_row: int = 0) -> Any:
    """CSV cells (text) of one column -> the same array `to_array` makes; an empty cell is null."""
    if spec.dtype == "string":
        return to_array(spec, [v if v != "" else None for v in values] if spec.nullable else list(values),
                        base_row=base_row)
    if spec.dtype in FLOAT_TYPES or spec.dtype in INTEGER_TYPES:
        floats = spec.dtype in FLOAT_TYPES
        parsed: list[Any] = []
        for i, text in enumerate(values):
            cell = text.strip()
            if cell == "" or cell.lower() in ("nan", "null", "na"):
                parsed.append(None)
                continue
            try:
                parsed.append(float(cell) if floats else int(cell))
            except ValueError:
                try:  # "3.0" in an integer column
                    number = float(cell)
                except ValueError:
                    raise _bad(spec, i, text, base_row) from None
                if floats or not number.is_integer():
                    raise _bad(spec, i, text, base_row) from None
                parsed.append(int(number))
        return to_array(spec, parsed, base_row=base_row)
    if spec.dtype == "bool":
        words = {"true": True, "1": True, "false": False, "0": False, "": None}
        out = []
        for i, text in enumerate(values):
            key = text.strip().lower()
            if key not in words:
                raise _bad(spec, i, text, base_row)
            out.append(words[key])
        return to_array(spec, out, base_row=base_row)
    return to_array(spec, [v if v.strip() else None for v in values], base_row=base_row)
