"""Signatures: inference from examples and lake schemas, JSON round trip, clear errors for bad specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from mlops_desktop.errors import UsageError
from mlops_desktop.registry.signature import ColumnSpec, Signature, from_frame, from_lake_schema, normalise_dtype


def test_inferred_from_a_pandas_example_keeps_widths_and_kinds():
    frame = pd.DataFrame({"a": np.array([1, 2], dtype="int32"), "b": [0.5, 1.5], "c": ["x", "y"],
                          "d": [True, False], "e": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                          "f": pd.array([1, None], dtype="Int64"), "y": [0, 1]})
    cols = from_frame(frame, exclude=["y"])
    assert [(c.name, c.dtype) for c in cols] == [("a", "int32"), ("b", "float64"), ("c", "string"),
                                                 ("d", "bool"), ("e", "datetime"), ("f", "int64")]


def test_inferred_from_polars_and_lake_schema_agree():
    frame = pl.DataFrame({"a": [1, 2], "b": [0.1, 0.2], "s": ["u", "v"]})
    assert from_frame(frame) == from_lake_schema({"a": "int64", "b": "float64", "s": "string"})


def test_round_trip_through_json():
    sig = Signature((ColumnSpec("a", "int64", nullable=False), ColumnSpec("b", "string")),
                    (ColumnSpec("prediction", "string"),), task="classification", classes=("no", "yes"))
    assert Signature.from_dict(sig.to_dict()) == sig


@pytest.mark.parametrize("bad, match", [
    ({"inputs": [{"name": "a", "dtype": "complex"}]}, "unknown column type 'complex'"),
    ({"inputs": []}, "at least one input"),
    ({"inputs": [{"name": "a", "dtype": "int"}, {"name": "a", "dtype": "int"}]}, "more than once"),
    ({"outputs": []}, "malformed signature"),
    ({"inputs": [{"name": "a", "dtype": "int"}], "task": "ranking"}, "unknown task"),
])
def test_bad_signatures_are_refused_in_words(bad, match):
    with pytest.raises(UsageError, match=match):
        Signature.from_dict(bad)


def test_dtype_aliases():
    assert [normalise_dtype(t) for t in ("Int64", "float", "object", "datetime64[ns]", "boolean")] == \
        ["int64", "float64", "string", "datetime", "bool"]
