"""Contracts: every kind of rule rejects exactly the rows that break it, with file, line and reason."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.contract import contract_from_dict, load_contract_file
from mlops_desktop.data.ingest import ingest
from mlops_desktop.errors import MlopsError

CSV = """id,price,qty,cat,code,day,flag
1,10.5,3,a,AB1,2024-01-01,true
2,-1,4,a,AB2,2024-01-02,false
3,abc,5,b,AB3,2024-01-03,yes
4,20,,c,AB4,2024-01-04,no
5,30,7,z,AB5,2024-01-05,true
6,40,8,b,xx,2024-01-06,true
7,50,9,b,AB7,2024-13-45,true
8,60,1000,a,AB8,2024-01-08,maybe
1,70,2,a,AB9,2024-01-09,true
,80,3,a,AB0,2024-01-10,true
"""


def rejects(ws, ref):
    files = lake.reject_files(ws, catalog.resolve(ws.db, ref))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def run(ws, src, spec, text=CSV):
    path = src("data.csv", text)
    result = ingest(ws, [str(path)], "t", contract=contract_from_dict(spec, "test contract"))
    assert result.rows_in == result.rows_stored + result.rows_rejected == text.count("\n") - 1
    bad = rejects(ws, "t")
    assert set(bad["_source_file"].to_list()) <= {str(path)}
    return result, bad


def lines_and_reasons(bad):
    return sorted(zip(bad["_source_line"].to_list(), bad["_reason"].to_list(), strict=True))


def test_types(ws, src):
    result, bad = run(ws, src, {"columns": {"price": {"type": "float64"}, "day": {"type": "date"},
                                            "flag": {"type": "bool"}}})
    assert result.rows_rejected == 3
    assert lines_and_reasons(bad) == [
        (4, "price: 'abc' is not a valid float64"),
        (8, "day: '2024-13-45' is not a valid date"),
        (9, "flag: 'maybe' is not a valid bool"),
    ]
    stored = lake.open_dataset(ws, "t")
    assert stored.schema["price"] == pl.Float64 and stored.schema["day"] == pl.Date
    assert stored.schema["flag"] == pl.Boolean
    assert stored.filter(pl.col("id") == 4)["flag"].to_list() == [False]  # "no" is a boolean spelling


def test_nullability(ws, src):
    result, bad = run(ws, src, {"columns": {"id": {"nullable": False}, "qty": {"nullable": False}}})
    assert lines_and_reasons(bad) == [(5, "qty: missing value (column is not nullable)"),
                                      (11, "id: missing value (column is not nullable)")]


def test_ranges(ws, src):
    result, bad = run(ws, src, {"columns": {"qty": {"type": "int64", "min": 0, "max": 999},
                                            "price": {"type": "float64", "min": 0}}})
    assert lines_and_reasons(bad) == [(3, "price: -1 is below the minimum 0"),
                                      (4, "price: 'abc' is not a valid float64"),
                                      (9, "qty: 1000 is above the maximum 999")]


def test_date_range_with_iso_bounds(ws, src):
    result, bad = run(ws, src, {"columns": {"day": {"type": "date", "min": "2024-01-03", "max": "2024-01-09"}}})
    assert [line for line, _ in lines_and_reasons(bad)] == [2, 3, 8, 11]


def test_allowed_values(ws, src):
    result, bad = run(ws, src, {"columns": {"cat": {"allowed": ["a", "b", "c"]}}})
    assert lines_and_reasons(bad) == [(6, "cat: 'z' is not one of the allowed values")]


def test_regex(ws, src):
    result, bad = run(ws, src, {"columns": {"code": {"regex": "^AB[0-9]{1}$"}}})
    assert lines_and_reasons(bad) == [(7, "code: 'xx' does not match /^AB[0-9]{1}$/")]


def test_unique_column_keeps_first_occurrence(ws, src):
    result, bad = run(ws, src, {"columns": {"id": {"type": "int64", "unique": True}}})
    assert lines_and_reasons(bad) == [(10, "duplicate value of unique key (id)")]
    assert lake.open_dataset(ws, "t").filter(pl.col("id") == 1)["price"].to_list() == ["10.5"]


def test_composite_unique_key(ws, src):
    text = "a,b\n1,x\n1,y\n1,x\n2,x\n"
    result, bad = run(ws, src, {"unique": [["a", "b"]]}, text)
    assert lines_and_reasons(bad) == [(4, "duplicate value of unique key (a, b)")]


def test_unique_across_append(ws, src):
    contract = contract_from_dict({"columns": {"id": {"type": "int64", "unique": True}}}, "c")
    ingest(ws, [str(src("1.csv", "id,v\n1,a\n2,b\n"))], "u", contract=contract)
    result = ingest(ws, [str(src("2.csv", "id,v\n2,c\n3,d\n3,e\n"))], "u", contract=contract, mode="append")
    assert (result.rows_stored, result.rows_rejected, result.row_count) == (1, 2, 3)
    assert sorted(lake.open_dataset(ws, "u")["id"].to_list()) == [1, 2, 3]
    assert [line for line, _ in lines_and_reasons(rejects(ws, "u@2"))] == [2, 4]


def test_row_expressions(ws, src):
    result, bad = run(ws, src, {"columns": {"price": {"type": "float64"}, "qty": {"type": "int64"}},
                                "rows": ["price * qty < 5000", "cat <> 'c' OR qty IS NOT NULL"]})
    assert lines_and_reasons(bad) == [
        (4, "price: 'abc' is not a valid float64"),
        (5, "row check failed: cat <> 'c' OR qty IS NOT NULL"),
        (9, "row check failed: price * qty < 5000"),
    ]


def test_several_broken_rules_are_all_named(ws, src):
    result, bad = run(ws, src, {"columns": {"price": {"type": "float64", "min": 0}, "cat": {"allowed": ["b"]}}},
                      "price,cat\n-5,a\n")
    assert bad["_reason"].to_list() == ["price: -5 is below the minimum 0; cat: 'a' is not one of the allowed values"]


def test_rejects_keep_the_raw_text(ws, src):
    result, bad = run(ws, src, {"columns": {"price": {"type": "float64"}}})
    row = bad.row(0, named=True)
    assert row["price"] == "abc" and row["id"] == "3" and row["_source_line"] == 4


def test_missing_required_column_is_an_error(ws, src):
    path = src("d.csv", "a,b\n1,2\n")
    with pytest.raises(MlopsError, match=r"missing column\(s\) 'zz' required by the contract"):
        ingest(ws, [str(path)], "t", contract=contract_from_dict({"columns": {"zz": {"type": "int64"}}}, "c"))


def test_optional_missing_column_is_added_as_nulls(ws, src):
    path = src("d.csv", "a\n1\n")
    ingest(ws, [str(path)], "t", contract=contract_from_dict(
        {"columns": {"zz": {"type": "int64", "required": False}}}, "c"))
    df = lake.open_dataset(ws, "t")
    assert df.schema["zz"] == pl.Int64 and df["zz"].to_list() == [None]


def test_extra_columns_error_and_drop(ws, src):
    path = src("d.csv", "a,b\n1,2\n")
    with pytest.raises(MlopsError, match="'b' are not in the contract"):
        ingest(ws, [str(path)], "t", contract=contract_from_dict(
            {"columns": {"a": {}}, "extra_columns": "error"}, "c"))
    ingest(ws, [str(path)], "t", contract=contract_from_dict({"columns": {"a": {}}, "extra_columns": "drop"}, "c"))
    assert lake.open_dataset(ws, "t").columns == ["a"]


def test_row_expression_on_unknown_column_fails_before_reading(ws, src):
    path = src("d.csv", "a\n1\n")
    with pytest.raises(MlopsError, match="does not apply to this data"):
        ingest(ws, [str(path)], "t", contract=contract_from_dict({"rows": ["nope > 1"]}, "c"))


@pytest.mark.parametrize("spec,match", [
    ({"columns": {"a": {"type": "int65"}}}, "unknown column type 'int65'"),
    ({"columns": {"a": {"regex": "("}}}, "invalid regex"),
    ({"columns": {"a": {"nullable": "no"}}}, "'nullable' must be true or false"),
    ({"columns": {"a": {"colour": 1}}}, r"unknown rule\(s\) \['colour'\]"),
    ({"rows": ["a >"]}, "not a valid SQL expression"),
    ({"colums": {}}, r"unknown contract key\(s\) \['colums'\]"),
    ({"extra_columns": "maybe"}, "must be keep, drop or error"),
])
def test_contract_mistakes_are_named(spec, match):
    with pytest.raises(MlopsError, match=match):
        contract_from_dict(spec, "file.toml")


def test_contract_files_toml_and_json(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[columns.id]\ntype = "int64"\nunique = true\n[columns.kind]\nallowed = ["a", "b"]\n')
    contract = load_contract_file(toml)
    assert contract.columns["id"].unique and contract.columns["kind"].allowed == ("a", "b")
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"columns": {"id": "int64"}, "rows": ["id > 0"]}))
    assert load_contract_file(js).rows == ("id > 0",)
    broken = tmp_path / "b.toml"
    broken.write_text("[columns\n")
    with pytest.raises(MlopsError, match="not valid TOML"):
        load_contract_file(broken)


def test_preview_and_draft_contract_round_trip(ws, src, tmp_path):
    from mlops_desktop.data.preview import contract_to_toml, draft_contract, preview

    path = src("p.csv", 'id,price,when,name\n1,2.5,2024-01-01,"a ""b"""\n2,3.5,2024-01-02,c\n')
    pv = preview([str(path)], rows=1)
    assert pv.columns == ["id", "price", "when", "name"] and pv.rows == [("1", "2.5", "2024-01-01", 'a "b"')]
    assert pv.types == {"id": "int64", "price": "float64", "when": "date", "name": "string"}
    text = contract_to_toml(draft_contract(pv))
    saved = tmp_path / "c.toml"
    saved.write_text(text)
    contract = load_contract_file(saved)
    assert {c: r.type for c, r in contract.columns.items()} == pv.types
    result = ingest(ws, [str(path)], "p", contract=contract)
    assert (result.rows_stored, result.rows_rejected) == (2, 0)


def test_preview_reports_malformed_input_like_ingest(src):
    from mlops_desktop.data.preview import preview

    with pytest.raises(MlopsError, match="header but no data rows"):
        preview([str(src("h.csv", "a,b\n"))])


def test_contract_toml_round_trip_keeps_every_rule(tmp_path):
    from mlops_desktop.data.preview import contract_to_toml

    spec = {"columns": {"code": {"type": "string", "regex": r'^\d{3}-"x"$', "nullable": False, "unique": True},
                        "n": {"type": "int64", "min": -1, "max": 9.5, "allowed": [1, 2, 3]},
                        "odd name": {"type": "date", "format": "%Y/%m/%d", "required": False}},
            "rows": ["n > 0 OR code = 'a'"], "unique": [["code", "n"]], "extra_columns": "drop"}
    contract = contract_from_dict(spec, "spec")
    path = tmp_path / "c.toml"
    path.write_text(contract_to_toml(contract))
    again = load_contract_file(path)
    assert again.to_dict() == contract.to_dict()


def test_every_row_rejected_gives_an_empty_typed_version(ws, src):
    from mlops_desktop.data.profile import profile
    from mlops_desktop.data.query import query

    path = src("d.csv", "id,when\nx,2024-01-01\ny,2024-01-02\n")
    result = ingest(ws, [str(path)], "t", contract=contract_from_dict({"columns": {"id": {"type": "int64"}}}, "c"))
    assert (result.rows_stored, result.rows_rejected) == (0, 2)
    df = lake.open_dataset(ws, "t")
    assert df.height == 0 and df.schema == {"id": pl.Int64, "when": pl.Date}
    assert query(ws, "SELECT count(*) AS n FROM t").rows == [(0,)]
    assert profile(ws, "t")["columns"][0]["nulls"] == 0


def test_bool_spellings_match_strip_and_lowercase():
    from mlops_desktop.data.contract import ColumnRule, _convert

    words = ["true", "TRUE", "True", "tRuE", " yes ", "Y", "1", "0", "\tNo", "F", "fAlSe", "n", "", "maybe",
             "truee", "yes no", "2", "ja", "\u212a", "T\u0130", None]
    got = pl.DataFrame({"b": words}).select(_convert(pl.col("b"), pl.String, ColumnRule("b", type="bool")).alias("b"))["b"]

    def reference(word):
        low = None if word is None else word.strip().lower()
        return True if low in ("true", "t", "yes", "y", "1") else False if low in ("false", "f", "no", "n", "0") \
            else None

    assert got.to_list() == [reference(w) for w in words]


iso_parts = st.tuples(st.sampled_from(["2024", "1999", "0001", "24", "20245", "+2024"]), st.sampled_from(["-", "/"]),
                      st.sampled_from(["01", "12", "13", "1", "00"]), st.sampled_from(["-"]),
                      st.sampled_from(["01", "29", "30", "31", "7"]), st.sampled_from(["T", " ", "t", ""]),
                      st.sampled_from(["00", "23", "24", "9"]), st.sampled_from([":"]),
                      st.sampled_from(["00", "59", "60", "5"]), st.sampled_from([":", ""]),
                      st.sampled_from(["00", "59", "60", "5", ""]),
                      st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".123456789", ".000000000", ",5"]),
                      st.sampled_from(["", "Z", "+01:00", " "]))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(iso_parts.map("".join), st.none()), max_size=6),
       fmt=st.sampled_from(["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]))
def test_fast_iso_datetimes_equal_polars_parser(values, fmt):
    from mlops_desktop.data.contract import iso_datetimes

    clean = "2024-01-31T10:00:00" if "T" in fmt else "2024-01-31 10:00:00"
    for batch in (values, [clean, *values], [clean] * 3 + [v for v in values if v is None]):
        series = pl.Series("t", batch, dtype=pl.String)
        expected = series.str.to_datetime(fmt, strict=False, time_unit="us")
        assert iso_datetimes(series, fmt).to_list() == expected.to_list(), batch


@pytest.mark.parametrize("value", ["2024-01-01T00:00", "2024-01-01", "2024-01-01 00:00:00", "2024-01-01T00:00:00",
                                   "2024-01-01T00", "2024-01-01T00:00:00.5", "2024-01-01T00:00:00.123456789",
                                   "2024-01-01T00:00:00Z", "2024-02-30T00:00:00", "2024-01-01T23:59:60",
                                   " 2024-01-01T00:00:00", "2024-1-01T00:00:00"])
@pytest.mark.parametrize("fmt", ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"])
def test_forms_arrow_reads_but_the_format_refuses_take_polars_parser(value, fmt):
    from mlops_desktop.data.contract import iso_datetimes

    for batch in ([value], [value, None, value]):
        series = pl.Series("t", batch, dtype=pl.String)
        assert iso_datetimes(series, fmt).to_list() == series.str.to_datetime(fmt, strict=False).to_list()


def test_bad_iso_datetime_is_rejected_with_its_text(ws, src):
    rows = "".join(f"{i},2024-01-01T00:00:{i % 60:02d}.5\n" for i in range(50))
    path = src("t.csv", "id,ts\n" + rows + "50,2024-01-01T25:00:00\n51,2024-01-01 00:00:00\n")
    contract = contract_from_dict({"columns": {"ts": {"type": "datetime", "format": "%Y-%m-%dT%H:%M:%S%.f"}}}, "c")
    result = ingest(ws, [str(path)], "t", contract=contract)
    assert (result.rows_stored, result.rows_rejected) == (50, 2)
    rejected = pl.concat([pl.read_parquet(f) for f in lake.reject_files(ws, catalog.resolve(ws.db, "t"))])
    assert rejected["_source_line"].to_list() == [52, 53]
    assert rejected["_reason"].to_list() == ["ts: '2024-01-01T25:00:00' is not a valid datetime",
                                             "ts: '2024-01-01 00:00:00' is not a valid datetime"]
    assert lake.open_dataset(ws, "t")["ts"][1].microsecond == 500_000


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "B", "", "ab", "7"])), max_size=20),
       allowed=st.lists(st.one_of(st.none(), st.sampled_from(["a", "B", "", "x", "7", 7])), max_size=18),
       as_int=st.booleans())
def test_allowed_values_check_equals_is_in(values, allowed, as_int):
    """The or-chain used for short allowed lists says exactly what ``is_in`` says, nulls included."""
    from mlops_desktop.data.contract import _one_of

    dtype = pl.Int64 if as_int else pl.String
    series = pl.Series("v", values, dtype=pl.String).cast(dtype, strict=False)
    expected = series.is_in(pl.Series([str(a) if a is not None else None for a in allowed]).cast(dtype, strict=False)
                            .implode())
    got = pl.DataFrame({"v": series}).select(
        _one_of(pl.col("v"), [str(a) if a is not None else None for a in allowed], dtype).alias("r"))["r"]
    assert got.fill_null(False).to_list() == expected.fill_null(False).to_list()
    assert got.is_null().to_list() == series.is_null().to_list() or not allowed
