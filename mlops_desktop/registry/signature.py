"""A model's input/output signature: named, typed columns, inferred from a lake schema or an example, kept as JSON.

Type names are the data lake's (`data/contract.py` TYPE_NAMES), so a dataset version's schema, a contract and a
model's signature speak one vocabulary. The server validates requests against `inputs`; the containers, monitoring
(drift per input column) and promotion (input contract) read the same object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_desktop.errors import UsageError

INTEGER_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_TYPES = ("float32", "float64")
DTYPES = (*INTEGER_TYPES, *FLOAT_TYPES, "string", "bool", "date", "datetime")
TASKS = ("classification", "regression", "other")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: str
    nullable: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise UsageError("a signature column has an empty name")
        if self.dtype not in DTYPES and not self.dtype.startswith("datetime["):
            raise UsageError(f"signature column {self.name!r}: unknown type {self.dtype!r}",
                             hint="use one of " + ", ".join(DTYPES))

    @property
    def numeric(self) -> bool:
        return self.dtype in INTEGER_TYPES or self.dtype in FLOAT_TYPES

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}


@dataclass(frozen=True)
class Signature:
    """Inputs in the order the model expects them; outputs as the server returns them (`prediction` first)."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = (ColumnSpec("prediction", "float64"),)
    task: str = "other"
    classes: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [c.name for c in self.inputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UsageError(f"the signature names input column(s) {', '.join(dupes)} more than once")
        if not self.inputs:
            raise UsageError("a signature needs at least one input column")
        if self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}", hint="use one of " + ", ".join(TASKS))

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def input(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.inputs if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inputs": [c.to_dict() for c in self.inputs],
                               "outputs": [c.to_dict() for c in self.outputs], "task": self.task}
        if self.classes:
            out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        try:
            inputs = tuple(_column(c) for c in data["inputs"])
            outputs = tuple(_column(c) for c in data.get("outputs") or [{"name": "prediction", "dtype": "float64"}])
        except (KeyError, TypeError) as exc:
            raise UsageError(f"malformed signature: {exc}") from None
        return cls(inputs, outputs, str(data.get("task") or "other"), tuple(data.get("classes") or ()))


def _column(data: Mapping[str, Any]) -> ColumnSpec:
    dtype = str(data.get("dtype") or data.get("type") or "")
    return ColumnSpec(str(data["name"]), normalise_dtype(dtype), bool(data.get("nullable", True)))


_ALIASES = {"int": "int64", "integer": "int64", "long": "int64", "float": "float64", "double": "float64",
            "str": "string", "utf8": "string", "text": "string", "object": "string", "boolean": "bool",
            "category": "string"}


def normalise_dtype(text: str) -> str:
    """'Int64', 'float', 'object', 'datetime64[ns]', 'datetime[us]' ... -> a name of DTYPES."""
    key = text.strip().lower()
    if key.startswith("datetime"):
        return "datetime"
    key = _ALIASES.get(key, key)
    if key not in DTYPES:
        raise UsageError(f"unknown column type {text!r}", hint="use one of " + ", ".join(DTYPES))
    return key


def from_lake_schema(schema: Mapping[str, str], *, exclude: Iterable[str] = ()) -> tuple[ColumnSpec, ...]:
    """Input columns from a dataset version's schema ({column: type name}), minus the target and the like."""
    skip = set(exclude)
    return tuple(ColumnSpec(name, normalise_dtype(dtype)) for name, dtype in schema.items() if name not in skip)


def from_frame(frame: Any, *, exclude: Iterable[str] = ()) -> tuple[ColumnSpec, ...]:
    """Input columns from an example: a pandas or polars DataFrame (or anything with `.dtypes` per column)."""
    skip = set(exclude)
    if hasattr(frame, "schema") and hasattr(frame, "lazy"):  # polars
        from mlops_desktop.data.contract import dtype_name

        items = [(name, dtype_name(dtype)) for name, dtype in frame.schema.items()]
    else:
        items = [(str(name), pandas_dtype_name(dtype)) for name, dtype in frame.dtypes.items()]
    return tuple(ColumnSpec(name, normalise_dtype(dtype)) for name, dtype in items if name not in skip)


def pandas_dtype_name(dtype: Any) -> str:
    """A numpy/pandas dtype -> a DTYPES name (nullable pandas integer types keep their width)."""
    kind = getattr(dtype, "kind", "O")
    name = str(dtype).lower()
    if kind == "b" or name == "boolean":
        return "bool"
    if kind in "iu":
        return name if name in INTEGER_TYPES else ("int64" if kind == "i" else "uint64")
    if kind == "f":
        return name if name in FLOAT_TYPES else "float64"
    if kind == "M" or name.startswith("datetime"):
        return "datetime"
    return "string"
