"""Request bodies -> signature-checked columns: MLflow's /invocations formats and the Open Inference Protocol v2.

MLflow (its scoring server, `mlflow models serve`): JSON with exactly one of `dataframe_split`, `dataframe_records`,
`instances`, `inputs` (optional `params`), or `text/csv` with a header. v2 (KServe, Triton): `inputs` is a list of
named tensors; one tensor per signature column, or a single [rows, columns] tensor in the signature's order.
Rows in messages are 0-based, as in the request's arrays.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from mlops_desktop.registry.signature import FLOAT_TYPES, INTEGER_TYPES, ColumnSpec, Signature
from mlops_desktop.serving.columns import BadInput, describe, parse_text, to_array

_NUMBER = frozenset((float, int))

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
V2_TYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
            "BYTES"}


@dataclass
class Parsed:
    """A request's rows: `columns` (name -> 1-D array, signature order), or for an all-float64 signature sent as
    rows, one `matrix` (rows x columns) whose column views are the columns (one conversion instead of one per
    column; the batcher stacks matrices with one call)."""

    columns: dict[str, Any] | None
    rows: int
    request_id: str | None = None
    outputs: list[str] | None = None  # v2: the outputs the client asked for (None = all)
    matrix: Any = None
    names: tuple[str, ...] = ()

    def column_arrays(self) -> dict[str, Any]:
        if self.columns is None:
            self.columns = {n: self.matrix[:, j] for j, n in enumerate(self.names)}
        return self.columns


class RequestSchema:
    """What parsing needs from a signature, computed once per model (name lookups, the all-float fast path)."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.inputs = signature.inputs
        self.names = tuple(signature.input_names)
        self.name_list = list(self.names)
        self.name_set = frozenset(self.names)
        self.specs = {c.name: c for c in signature.inputs}
        self.all_float64 = all(c.dtype == "float64" for c in signature.inputs)

    def input(self, name: str) -> ColumnSpec | None:
        return self.specs.get(name)

    @property
    def input_names(self) -> list[str]:
        return self.name_list


def loads(body: bytes) -> Any:
    import orjson

    if not body.strip():
        raise BadInput(400, "the request body is empty; send a JSON object", code="BAD_REQUEST")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(400, f"the body is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
                       code="MALFORMED_REQUEST") from None


# ---------------------------------------------------------------- MLflow /invocations

def parse_mlflow(body: bytes, content_type: str, signature: RequestSchema) -> Parsed:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return parse_csv(body, signature)
    if kind not in ("application/json", "", "application/*", "*/*"):
        raise BadInput(415, f"unsupported content type {kind!r}; send application/json or text/csv",
                       code="BAD_REQUEST")
    doc = loads(body)
    if not isinstance(doc, dict):
        raise BadInput(400, "the JSON body must be an object with one of: " + ", ".join(MLFLOW_KEYS),
                       code="BAD_REQUEST")
    keys = [k for k in MLFLOW_KEYS if k in doc]
    if len(keys) != 1:
        found = ", ".join(sorted(k for k in doc if k != "params")) or "none"
        raise BadInput(400, "the JSON body must have exactly one of " + ", ".join(MLFLOW_KEYS) +
                       f" (found: {found})", code="BAD_REQUEST")
    unknown = sorted(set(doc) - {keys[0], "params"})
    if unknown:
        raise BadInput(400, f"unexpected field(s) {', '.join(unknown)} beside {keys[0]!r}", code="BAD_REQUEST")
    key, value = keys[0], doc[keys[0]]
    if key == "dataframe_split":
        return _split(value, signature)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise BadInput(400, "dataframe_records must be a list of row objects", field=key, code="BAD_REQUEST")
        return _records(value, signature, key)
    return _instances(value, signature, key)


def _split(value: Any, signature: RequestSchema) -> Parsed:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise BadInput(400, "dataframe_split must be an object with 'columns' and 'data' (a list of rows)",
                       field="dataframe_split", code="BAD_REQUEST")
    data = value["data"]
    names = value.get("columns")
    if names is None:
        names = signature.input_names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadInput(400, "dataframe_split.columns must be a list of column names", field="columns",
                       code="BAD_REQUEST")
    return _rows(names, data, signature, "dataframe_split.data")


def _rows(names: list[str], data: list[Any], signature: RequestSchema, where: str) -> Parsed:
    """Row-major lists -> columns; each row must have one value per name."""
    width = len(names)
    if names != signature.name_list:
        check_names(names, signature)
    elif signature.all_float64 and data:
        fast = _matrix(data, width)
        if fast is not None:
            return Parsed(None, len(data), matrix=fast, names=signature.names)
    for i, row in enumerate(data):
        if type(row) is not list or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else describe(row)
            raise BadInput(422, f"{where}, row {i}: expected a list of {width} values, got {got}", row=i)
    cols = list(zip(*data, strict=True)) if data else [() for _ in names]
    by_name = dict(zip(names, cols, strict=True))
    return _build(signature, {n: list(by_name[n]) for n in signature.input_names}, len(data))


def _matrix(data: list[Any], width: int) -> Any:
    """Rows that are all lists of `width` numbers -> one float64 matrix; None to take the checking path."""
    import numpy as np

    if not all(type(r) is list and len(r) == width for r in data):
        return None
    if not set(map(type, chain.from_iterable(data))) <= _NUMBER:
        return None
    try:
        return np.array(data, dtype="float64")
    except OverflowError:
        return None


def _records(value: list[Any], signature: RequestSchema, where: str) -> Parsed:
    names = signature.input_names
    wanted = signature.name_set
    for i, rec in enumerate(value):
        if type(rec) is not dict:
            raise BadInput(422, f"{where}, row {i}: expected an object of column values, got {describe(rec)}", row=i)
        if rec.keys() != wanted:
            missing = [n for n in names if n not in rec]
            if missing:
                raise BadInput(422, f"row {i}: missing column {missing[0]!r}", field=missing[0], row=i)
            extra = sorted(k for k in rec if k not in wanted)
            raise BadInput(422, f"row {i}: unexpected column {extra[0]!r} (the model takes: {', '.join(names)})",
                           field=extra[0], row=i)
    if signature.all_float64 and value:
        fast = _matrix([[rec[n] for n in names] for rec in value], len(names))
        if fast is not None:
            return Parsed(None, len(value), matrix=fast, names=signature.names)
    return _build(signature, {n: [rec[n] for rec in value] for n in names}, len(value))


def _instances(value: Any, signature: RequestSchema, key: str) -> Parsed:
    if isinstance(value, dict):  # columnar: {"x1": [..], "x2": [..]} (or one row of scalars)
        check_names(list(value), signature)
        if all(not isinstance(v, list) for v in value.values()):
            return _build(signature, {n: [value[n]] for n in signature.input_names}, 1)
        lengths = {n: len(v) if isinstance(v, list) else -1 for n, v in value.items()}
        n_rows = lengths[signature.input_names[0]]
        for name, length in lengths.items():
            if length != n_rows:
                raise BadInput(422, f"{key}: column {name!r} has "
                                    f"{'a single value' if length < 0 else f'{length} values'}, "
                                    f"{signature.input_names[0]!r} has {n_rows}", field=name)
        return _build(signature, {n: value[n] for n in signature.input_names}, n_rows)
    if not isinstance(value, list):
        raise BadInput(400, f"{key} must be a list of rows or an object of columns", field=key, code="BAD_REQUEST")
    if value and all(type(r) is dict for r in value):
        return _records(value, signature, key)
    if value and type(value[0]) is list:
        return _rows(signature.input_names, value, signature, key)
    if value and len(signature.inputs) == 1 and all(type(r) not in (list, dict) for r in value):
        return _build(signature, {signature.input_names[0]: value}, len(value))  # a 1-column model's values
    if not value:
        return _build(signature, {n: [] for n in signature.input_names}, 0)
    first = next(i for i, r in enumerate(value) if type(r) is not type(value[0]) or type(r) not in (list, dict))
    raise BadInput(422, f"{key}, row {first}: expected a row (a list of {len(signature.inputs)} values or an "
                        f"object of column values), got {describe(value[first])}", row=first)


def parse_csv(body: bytes, signature: RequestSchema) -> Parsed:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(400, f"the CSV body is not UTF-8 text (byte {exc.start})", code="BAD_REQUEST") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise BadInput(400, f"the CSV body cannot be read: {exc}", code="BAD_REQUEST") from None
    rows = [r for r in rows if r]  # blank lines are not rows
    if not rows:
        raise BadInput(400, "the CSV body is empty; send a header line and rows", code="BAD_REQUEST")
    header = [h.strip() for h in rows[0]]
    check_names(header, signature)
    data = rows[1:]
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise BadInput(422, f"CSV row {i} (line {i + 2}): {len(row)} fields, the header has {len(header)}",
                           row=i)
    cols = list(zip(*data, strict=True)) if data else [() for _ in header]
    by_name = dict(zip(header, cols, strict=True))
    columns = {}
    for spec in signature.inputs:
        columns[spec.name] = parse_text(spec, list(by_name[spec.name]))
    return Parsed(columns, len(data))


def check_names(names: Sequence[str], signature: RequestSchema) -> None:
    expected_names = signature.input_names
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadInput(422, f"column {name!r} is given twice", field=name)
        seen.add(name)
    missing = [n for n in expected_names if n not in seen]
    if missing:
        raise BadInput(422, f"missing column {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                                 if len(missing) > 1 else ""), field=missing[0])
    extra = [n for n in names if signature.input(n) is None]
    if extra:
        raise BadInput(422, f"unexpected column {extra[0]!r} (the model takes: {', '.join(expected_names)})",
                       field=extra[0])


def _build(signature: RequestSchema, values: dict[str, Any], rows: int) -> Parsed:
    if rows == 0:
        raise BadInput(422, "the request has no rows", code="BAD_REQUEST")
    return Parsed({spec.name: to_array(spec, values[spec.name]) for spec in signature.inputs}, rows)


# ---------------------------------------------------------------- Open Inference Protocol v2

def parse_v2(body: bytes, signature: RequestSchema) -> Parsed:
    doc = loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise BadInput(400, "the v2 inference request needs 'inputs': a non-empty list of tensors",
                       field="inputs", code="BAD_REQUEST")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadInput(400, "'id' must be a string", field="id", code="BAD_REQUEST")
    outputs = None
    if doc.get("outputs") is not None:
        if not isinstance(doc["outputs"], list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                           for o in doc["outputs"]):
            raise BadInput(400, "'outputs' must be a list of objects with a 'name'", field="outputs",
                           code="BAD_REQUEST")
        outputs = [o["name"] for o in doc["outputs"]]
    tensors = []
    for i, t in enumerate(doc["inputs"]):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or "data" not in t:
            raise BadInput(400, f"inputs[{i}] must be an object with 'name', 'shape', 'datatype' and 'data'",
                           field=f"inputs[{i}]", code="BAD_REQUEST")
        tensors.append(t)
    names = [t["name"] for t in tensors]
    if len(tensors) == 1 and signature.input(names[0]) is None and len(signature.inputs) > 1:
        parsed = _v2_matrix(tensors[0], signature)
    else:
        check_names(names, signature)
        columns = {}
        n_rows = None
        for t in tensors:
            spec = signature.input(t["name"])
            assert spec is not None
            data = _v2_data(t, spec)
            if n_rows is not None and len(data) != n_rows:
                raise BadInput(422, f"input {spec.name!r} has {len(data)} values, the others have {n_rows}",
                               field=spec.name)
            n_rows = len(data)
            columns[spec.name] = data
        parsed = _build(signature, columns, n_rows or 0)
    parsed.request_id = request_id
    parsed.outputs = outputs
    return parsed


def _v2_shape(t: dict[str, Any]) -> list[int]:
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) or not shape:
        raise BadInput(400, f"input {t['name']!r}: 'shape' must be a list of non-negative integers",
                       field=t["name"], code="BAD_REQUEST")
    return shape


def _v2_check_type(t: dict[str, Any], spec: ColumnSpec) -> None:
    datatype = t.get("datatype")
    if datatype not in V2_TYPES:
        raise BadInput(400, f"input {t['name']!r}: unknown datatype {datatype!r}; use one of "
                            + ", ".join(sorted(V2_TYPES)), field=t["name"], code="BAD_REQUEST")
    numeric = datatype.startswith(("INT", "UINT", "FP"))
    if spec.dtype in FLOAT_TYPES:
        ok = numeric
    elif spec.dtype in INTEGER_TYPES:
        ok = datatype.startswith(("INT", "UINT"))
    elif spec.dtype == "bool":
        ok = datatype == "BOOL"
    else:
        ok = datatype == "BYTES"
    if not ok:
        raise BadInput(422, f"input {spec.name!r}: datatype {datatype} does not fit the column's type "
                            f"{spec.dtype}", field=spec.name)


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise BadInput(400, f"input {name!r}: 'data' must be a list", field=name, code="BAD_REQUEST")
    flat: list[Any] = []
    stack = [iter(data)]
    depth_limit = 8
    while stack:
        for item in stack[-1]:
            if type(item) is list:
                if len(stack) >= depth_limit:
                    raise BadInput(400, f"input {name!r}: 'data' is nested too deeply", field=name,
                                   code="BAD_REQUEST")
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _v2_data(t: dict[str, Any], spec: ColumnSpec) -> list[Any]:
    _v2_check_type(t, spec)
    shape = _v2_shape(t)
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise BadInput(422, f"input {spec.name!r}: shape {shape} is not one column; use [rows] or [rows, 1]",
                       field=spec.name)
    data = _flatten(t["data"], spec.name)
    if len(data) != shape[0]:
        raise BadInput(422, f"input {spec.name!r}: shape {shape} says {shape[0]} values, 'data' has {len(data)}",
                       field=spec.name)
    return data


def _v2_matrix(t: dict[str, Any], signature: RequestSchema) -> Parsed:
    name = t["name"]
    shape = _v2_shape(t)
    width = len(signature.inputs)
    if len(shape) != 2 or shape[1] != width:
        raise BadInput(422, f"input {name!r} is not a model column; a single tensor must have shape "
                            f"[rows, {width}] in the signature's column order ({', '.join(signature.input_names)})",
                       field=name)
    for spec in signature.inputs:
        _v2_check_type(t, spec)
    flat = _flatten(t["data"], name)
    if len(flat) != shape[0] * width:
        raise BadInput(422, f"input {name!r}: shape {shape} says {shape[0] * width} values, 'data' has "
                            f"{len(flat)}", field=name)
    if shape[0] == 0:
        raise BadInput(422, "the request has no rows", code="BAD_REQUEST")
    if signature.all_float64 and set(map(type, flat)) <= _NUMBER:
        import numpy as np

        with contextlib.suppress(OverflowError):
            matrix = np.array(flat, dtype="float64").reshape(shape[0], width)
            return Parsed(None, shape[0], matrix=matrix, names=signature.names)
    columns = {spec.name: to_array(spec, flat[j::width]) for j, spec in enumerate(signature.inputs)}
    return Parsed(columns, shape[0])
