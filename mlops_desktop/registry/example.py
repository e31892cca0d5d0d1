"""Input examples as JSON columns ({"columns": {name: [values]}}): written from a frame, read back as numpy columns
typed by the signature, so the server's "Try it", the bundle check and the ONNX verification use the same rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.registry.signature import FLOAT_TYPES, INTEGER_TYPES, Signature

EXAMPLE_FILE = "input_example.json"


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def frame_to_json(frame: Any, rows: int = 5) -> dict[str, Any]:
    """The first `rows` rows of a pandas or polars frame as {"columns": {name: [values]}}."""
    head = frame.head(rows)
    if hasattr(head, "to_dict") and hasattr(head, "iloc"):  # pandas
        import pandas as pd

        cols = {str(c): [None if (v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)))
                         else _jsonable(v) for v in head[c].tolist()] for c in head.columns}
    else:  # polars
        cols = {str(c): [_jsonable(v) for v in head[c].to_list()] for c in head.columns}
    return {"columns": cols}


def write_example(path: Path, example: dict[str, Any]) -> None:
    path.write_text(json.dumps(example, indent=1, allow_nan=False), encoding="utf-8")


def read_example(path: Path, signature: Signature) -> dict[str, Any]:
    """Columns of the example as numpy arrays, in signature order, typed by the signature."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cols = data["columns"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"the input example {path} cannot be read: {exc}") from None
    return columns_from_lists(cols, signature, source=str(path))


def columns_from_lists(cols: dict[str, list[Any]], signature: Signature, *, source: str = "input") -> dict[str, Any]:
    import numpy as np

    missing = [c.name for c in signature.inputs if c.name not in cols]
    if missing:
        raise UsageError(f"{source} lacks the input column(s) {', '.join(missing)}")
    out: dict[str, Any] = {}
    for spec in signature.inputs:
        values = cols[spec.name]
        if spec.dtype in FLOAT_TYPES or (spec.dtype in INTEGER_TYPES and any(v is None for v in values)):
            out[spec.name] = np.array([math.nan if v is None else v for v in values],
                                      dtype=spec.dtype if spec.dtype in FLOAT_TYPES else "float64")
        elif spec.dtype in INTEGER_TYPES:
            out[spec.name] = np.array(values, dtype=spec.dtype)
        elif spec.dtype == "bool":
            out[spec.name] = np.array(values, dtype=bool if all(v is not None for v in values) else object)
        elif spec.dtype.startswith("datetime") or spec.dtype == "date":
            out[spec.name] = np.array(values, dtype="datetime64[us]" if spec.dtype != "date" else "datetime64[D]")
        else:
            out[spec.name] = np.array(values, dtype=object)
    return out
