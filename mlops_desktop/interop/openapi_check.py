"""Check a JSON/YAML document against OpenAPI-generated model classes (the kubernetes client's, KServe's SDK).

Those SDKs are generated from the published OpenAPI schemas (for KServe: the InferenceService CRD's); each class
lists its fields (`attribute_map`: python name -> JSON name) and their types (`openapi_types`). Walking a manifest
through them finds every field the schema does not have and every value of the wrong type, with its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(([^,]+),\s*(.+)\)$")
_SCALARS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                                         "object": (object,), "datetime": (str,), "date": (str,)}


def check(doc: Any, type_name: str, resolve: Callable[[str], Any | None], path: str = "") -> list[str]:
    """Problems of `doc` as an instance of `type_name` (a class name `resolve` finds, or an OpenAPI type string)."""
    problems: list[str] = []
    _check(doc, type_name, resolve, path or "$", problems)
    return problems


def _check(doc: Any, type_name: str, resolve: Callable[[str], Any | None], path: str, out: list[str]) -> None:
    type_name = type_name.strip()
    if doc is None:
        return
    if type_name in _SCALARS:
        allowed = _SCALARS[type_name]
        if type_name in ("int", "float") and isinstance(doc, bool):
            out.append(f"{path}: expected {type_name}, got a boolean")
        elif not isinstance(doc, allowed):
            out.append(f"{path}: expected {type_name}, got {type(doc).__name__}")
        return
    if m := _LIST.match(type_name):
        if not isinstance(doc, list):
            out.append(f"{path}: expected a list, got {type(doc).__name__}")
            return
        for i, item in enumerate(doc):
            _check(item, m.group(1), resolve, f"{path}[{i}]", out)
        return
    if m := _DICT.match(type_name):
        if not isinstance(doc, dict):
            out.append(f"{path}: expected a mapping, got {type(doc).__name__}")
            return
        for key, value in doc.items():
            _check(value, m.group(2), resolve, f"{path}.{key}", out)
        return
    cls = resolve(type_name)
    if cls is None or not hasattr(cls, "openapi_types"):
        return  # an opaque type of the schema (a quantity, an int-or-string): any value
    if not isinstance(doc, dict):
        out.append(f"{path}: expected an object ({type_name}), got {type(doc).__name__}")
        return
    by_json = {json_name: py_name for py_name, json_name in cls.attribute_map.items()}
    for key, value in doc.items():
        py_name = by_json.get(key)
        if py_name is None:
            out.append(f"{path}.{key}: no such field in {type_name}")
            continue
        _check(value, cls.openapi_types[py_name], resolve, f"{path}.{key}", out)
