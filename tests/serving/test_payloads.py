"""Request parsing: every MLflow and v2 payload format gives the same columns; each bad input a 4xx naming field and
row; a fuzzed body never escapes as anything but a BadInput."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_factories import classifier_signature, mixed_signature

from mlops_desktop.serving.columns import BadInput
from mlops_desktop.serving.handlers import parse
from mlops_desktop.serving.payloads import RequestSchema, parse_mlflow, parse_v2

MIXED = RequestSchema(mixed_signature())
FLOATS = RequestSchema(classifier_signature(3))
ROWS = [{"age": 30, "income": 1.5, "city": "Oslo", "member": True},
        {"age": 41, "income": None, "city": "Lima", "member": False}]
NAMES = ["age", "income", "city", "member"]


def mlflow(doc, schema=MIXED, ctype="application/json"):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse(parse_mlflow, body, ctype, schema)


def cols(parsed):
    return {k: list(v) for k, v in parsed.column_arrays().items()}


def same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        for x, y in zip(a[k], b[k], strict=True):
            assert (isinstance(x, float) and math.isnan(x) and math.isnan(y)) or x == y, (k, x, y)


EXPECTED = {"age": [30, 41], "income": [1.5, math.nan], "city": ["Oslo", "Lima"], "member": [True, False]}


@pytest.mark.parametrize("doc", [
    {"dataframe_split": {"columns": NAMES, "data": [[r[n] for n in NAMES] for r in ROWS]}},
    {"dataframe_split": {"index": [0, 1], "columns": NAMES, "data": [[r[n] for n in NAMES] for r in ROWS]}},
    {"dataframe_records": ROWS},
    {"instances": ROWS},
    {"inputs": ROWS},
    {"inputs": {n: [r[n] for r in ROWS] for n in NAMES}},
    {"instances": [[r[n] for n in NAMES] for r in ROWS], "params": {}},
], ids=["split", "split+index", "records", "instances-records", "inputs-records", "inputs-columns",
        "instances-rows"])
def test_every_mlflow_json_format_gives_the_same_columns(doc):
    parsed = mlflow(doc)
    assert parsed.rows == 2
    same(cols(parsed), EXPECTED)


def test_csv_with_a_header():
    body = b"age,income,city,member\n30,1.5,Oslo,true\n41,,Lima,false\n"
    same(cols(mlflow(body, ctype="text/csv")), EXPECTED)


def test_v2_per_column_tensors_and_one_matrix_agree():
    per_column = {"id": "r1", "inputs": [
        {"name": "x0", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        {"name": "x1", "shape": [2, 1], "datatype": "FP32", "data": [[3.0], [4.0]]},
        {"name": "x2", "shape": [2], "datatype": "INT64", "data": [5, 6]}]}
    matrix = {"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": [1, 3, 5, 2, 4, 6]}]}
    a = parse(parse_v2, json.dumps(per_column).encode(), FLOATS)
    b = parse(parse_v2, json.dumps(matrix).encode(), FLOATS)
    assert a.request_id == "r1"
    same(cols(a), cols(b))
    assert cols(a) == {"x0": [1.0, 2.0], "x1": [3.0, 4.0], "x2": [5.0, 6.0]}


def test_the_float_fast_path_equals_the_checked_path():
    rows = [[0.5, 1, -2.25], [3, 4.5, 6]]
    fast = mlflow({"dataframe_split": {"columns": ["x0", "x1", "x2"], "data": rows}}, FLOATS)
    slow = mlflow({"inputs": {"x0": [0.5, 3], "x1": [1, 4.5], "x2": [-2.25, 6]}}, FLOATS)
    assert fast.matrix is not None and slow.matrix is None
    same(cols(fast), cols(slow))


BAD = [
    # (body, content type, status, words in the message, field, row)
    (b"{not json", "application/json", 400, "not valid JSON", None, None),
    (b"", "application/json", 400, "empty", None, None),
    (b"[1, 2]", "application/json", 400, "must be an object", None, None),
    (b'{"foo": []}', "application/json", 400, "exactly one of", None, None),
    (b'{"inputs": [], "instances": []}', "application/json", 400, "exactly one of", None, None),
    (b'{"dataframe_records": [{"age": 1, "income": 1.0, "city": "a"}]}', "application/json", 422,
     "missing column 'member'", "member", 0),
    (b'{"dataframe_records": [{"age": 1, "income": 1.0, "city": "a", "member": true, "zip": 1}]}',
     "application/json", 422, "unexpected column 'zip'", "zip", 0),
    (b'{"dataframe_records": [{"age": 1, "income": 1.0, "city": "a", "member": true},'
     b'{"age": "old", "income": 1.0, "city": "a", "member": true}]}', "application/json", 422,
     "column 'age', row 1: expected an integer (int64), got the string 'old'", "age", 1),
    (b'{"dataframe_records": [{"age": null, "income": 1.0, "city": "a", "member": true}]}', "application/json",
     422, "not nullable", "age", 0),
    (b'{"dataframe_records": [{"age": 1.5, "income": 1.0, "city": "a", "member": true}]}', "application/json",
     422, "expected an integer", "age", 0),
    (b'{"dataframe_records": [{"age": 1, "income": true, "city": "a", "member": true}]}', "application/json",
     422, "expected a number (float64), got true", "income", 0),
    (b'{"dataframe_records": [{"age": 1, "income": 1.0, "city": 7, "member": true}]}', "application/json",
     422, "expected a string, got the number 7", "city", 0),
    (b'{"dataframe_records": [{"age": 99999999999999999999, "income": 1.0, "city": "a", "member": true}]}',
     "application/json", 422, "out of range for int64", "age", 0),
    (b'{"dataframe_split": {"columns": ["age", "income", "city", "member"], "data": [[1, 2.0, "a", true], [1]]}}',
     "application/json", 422, "row 1: expected a list of 4 values, got 1 values", None, 1),
    (b'{"dataframe_records": [1]}', "application/json", 422, "row 0: expected an object", None, 0),
    (b'{"dataframe_records": []}', "application/json", 422, "no rows", None, None),
    (b'{"inputs": {"age": [1, 2], "income": [1.0], "city": ["a", "b"], "member": [true, false]}}',
     "application/json", 422, "column 'income' has 1 values", "income", None),
    (b"age,income,city,member\n1,x,a,true\n", "text/csv", 422, "column 'income', row 0", "income", 0),
    (b"age,income,city\n1,2,a\n", "text/csv", 422, "missing column 'member'", "member", None),
    (b"age,income,city,member\n1,2,a\n", "text/csv", 422, "CSV row 0 (line 2): 3 fields", None, 0),
    (b"\xff\xfe", "text/csv", 400, "not UTF-8", None, None),
    (b"a=1", "application/x-www-form-urlencoded", 415, "unsupported content type", None, None),
]


@pytest.mark.parametrize("body,ctype,status,words,field,row", BAD)
def test_bad_input_is_a_4xx_that_names_field_and_row(body, ctype, status, words, field, row):
    with pytest.raises(BadInput) as info:
        mlflow(body, ctype=ctype)
    exc = info.value
    assert exc.status == status
    assert words in exc.message
    assert exc.field == field
    assert exc.row == row
    assert "Traceback" not in exc.message


V2_BAD = [
    (b'{"inputs": []}', 400, "non-empty list"),
    (b'{"inputs": [{"name": "x0"}]}', 400, "'name', 'shape', 'datatype' and 'data'"),
    (b'{"inputs": [{"name": "x0", "shape": [1], "datatype": "FP64", "data": [1]}]}', 422, "missing column 'x1'"),
    (b'{"inputs": [{"name": "m", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}', 422, "[rows, 3]"),
    (b'{"inputs": [{"name": "m", "shape": [2, 3], "datatype": "FP64", "data": [1, 2]}]}', 422, "says 6 values"),
    (b'{"inputs": [{"name": "m", "shape": [1, 3], "datatype": "BYTES", "data": ["a", "b", "c"]}]}', 422,
     "does not fit"),
    (b'{"inputs": [{"name": "m", "shape": [1, 3], "datatype": "FP99", "data": [1, 2, 3]}]}', 400,
     "unknown datatype"),
    (b'{"inputs": [{"name": "m", "shape": "x", "datatype": "FP64", "data": [1, 2, 3]}]}', 400, "'shape' must"),
    (b'{"id": 5, "inputs": [{"name": "m", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}', 400,
     "'id' must be a string"),
]


@pytest.mark.parametrize("body,status,words", V2_BAD)
def test_v2_bad_input(body, status, words):
    with pytest.raises(BadInput) as info:
        parse(parse_v2, body, FLOATS)
    assert info.value.status == status
    assert words in info.value.message


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
                           max_leaves=20)
keys = st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "params", "columns", "data",
                        "age", "income", "city", "member", "x0", "x1", "x2", "name", "shape", "datatype"])
documents = st.dictionaries(keys, json_values | st.dictionaries(keys, json_values, max_size=5), max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents | json_values, schema=st.sampled_from([MIXED, FLOATS]))
def test_fuzzed_json_is_parsed_or_refused_in_words(doc, schema):
    body = json.dumps(doc).encode()
    for fn, args in ((parse_mlflow, (body, "application/json", schema)), (parse_v2, (body, schema))):
        try:
            parsed = parse(fn, *args)
        except BadInput as exc:
            assert 400 <= exc.status < 500 and exc.message
        else:
            arrays = parsed.column_arrays()
            assert list(arrays) == list(schema.names)
            assert all(len(a) == parsed.rows for a in arrays.values())


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200), ctype=st.sampled_from(["application/json", "text/csv", ""]))
def test_fuzzed_bytes_never_escape(body, ctype):
    try:
        parse(parse_mlflow, body, ctype, MIXED)
    except BadInput as exc:
        assert 400 <= exc.status < 500


def test_integer_given_as_a_whole_float_and_nulls_in_floats():
    parsed = mlflow({"dataframe_records": [{"age": 3.0, "income": None, "city": None, "member": None}]})
    arrays = parsed.column_arrays()
    assert arrays["age"].dtype == np.int64 and arrays["age"][0] == 3
    assert math.isnan(arrays["income"][0])
    assert arrays["city"][0] is None
