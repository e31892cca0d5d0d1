"""Malformed input fails with a message naming file, line and column, and stores nothing."""

from __future__ import annotations

import polars as pl
import pytest
from data_helpers import catalog_count, lake_versions

from mlops_desktop.data.csvcheck import CsvOptions
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.sources import SourceOptions
from mlops_desktop.errors import MlopsError


def fails(ws, path, match, options=None):
    with pytest.raises(MlopsError, match=match) as info:
        ingest(ws, [str(path)], "bad", options=options)
    assert str(path) in str(info.value)
    assert catalog_count(ws) == 0
    assert lake_versions(ws) == []
    staging = ws.paths.lake / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    return str(info.value)


def test_row_with_too_many_fields(ws, src):
    path = src("r.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n11,12,13\n")
    fails(ws, path, r"line 4: 4 fields, more than the 3 columns")


def test_row_with_too_few_fields(ws, src):
    path = src("r.csv", "a,b,c\n1,2,3\n4,5\n7,8,9\n")
    msg = fails(ws, path, r"line 3: 2 fields, fewer than the 3 columns")
    assert "'c'" in msg or "c)" in msg


def test_trailing_empty_field_is_not_a_short_row(ws, src):
    path = src("ok.csv", "a,b,c\n1,2,\n4,5,6\n")
    result = ingest(ws, [str(path)], "ok")
    assert (result.rows_stored, result.rows_rejected) == (2, 0)


def test_unterminated_quote(ws, src):
    path = src("q.csv", 'a,b,c\n1,2,3\n4,"5,6\n7,8,9\n')
    fails(ws, path, r"line \d+: malformed quoting|line \d+: \d+ fields")


def test_text_after_closing_quote(ws, src):
    path = src("q.csv", 'a,b\n1,"ab"c\n2,x\n')
    fails(ws, path, r"line 2: malformed quoting")


def test_undecodable_bytes_name_line(ws, src):
    path = src("u.csv", b"a,b\n1,ok\n2,caf\xe9\n")
    msg = fails(ws, path, r"line 3.*cannot be decoded as utf-8")
    assert "latin-1" in msg  # the hint says what to do


def test_bytes_invalid_for_the_declared_encoding(ws, src):
    bad = src("v.csv", b"a\n\xff\xfe\n")
    fails(ws, bad, r"line 2.*cannot be decoded as ascii", options=SourceOptions(csv=CsvOptions(encoding="ascii")))


def test_empty_file(ws, src):
    fails(ws, src("e.csv", ""), r"empty \(0 bytes\)")
    fails(ws, src("e.ndjson", ""), r"empty \(0 bytes\)")
    fails(ws, src("e.parquet", b""), r"empty \(0 bytes\)")


def test_header_only_file(ws, src):
    fails(ws, src("h.csv", "a,b,c\n"), r"header but no data rows")


def test_duplicate_column_names(ws, src):
    fails(ws, src("d.csv", "id,name,id\n1,x,2\n"), r"line 1: duplicate column name 'id' \(columns 1 and 3\)")


def test_empty_column_name(ws, src):
    fails(ws, src("d.csv", "id,,x\n1,2,3\n"), r"line 1: column 2 has an empty name")


def test_truncated_parquet(ws, tmp_path):
    good = tmp_path / "g.parquet"
    pl.DataFrame({"a": list(range(10_000))}).write_parquet(good)
    bad = tmp_path / "t.parquet"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    fails(ws, bad, r"not a readable Parquet file")


def test_ndjson_syntax_error_names_line_and_column(ws, src):
    path = src("j.ndjson", '{"a": 1}\n{"a": 2}\n{"a": 3,, "b": 1}\n{"a": 4}\n')
    fails(ws, path, r"line 3, column 9: invalid JSON")


def test_json_array_syntax_error(ws, src):
    path = src("j.json", '[\n  {"a": 1},\n  {"a": 2\n]\n')
    fails(ws, path, r"line 4, column 1: invalid JSON")


def test_json_not_an_array_of_objects(ws, src):
    fails(ws, src("j.json", "[1, 2, 3]"), r"expected a JSON array of objects|no objects")


def test_missing_file_and_unmatched_glob(ws, tmp_path):
    with pytest.raises(MlopsError, match="no such file"):
        ingest(ws, [str(tmp_path / "nope.csv")], "x")
    with pytest.raises(MlopsError, match="no file matches"):
        ingest(ws, [str(tmp_path / "*.csv")], "x")


def test_broken_excel_file_is_refused_plainly(ws, src):
    pytest.importorskip("fastexcel")
    fails(ws, src("x.xlsx", b"PK not really a zip"), "not a readable Excel workbook")


def test_bad_dataset_name(ws, src):
    with pytest.raises(MlopsError, match="invalid dataset name"):
        ingest(ws, [str(src("a.csv", "a\n1\n"))], "drop table;")


def test_second_file_malformed_stores_nothing_of_the_first(ws, src):
    src("m/1.csv", "a,b\n1,2\n")
    bad = src("m/2.csv", "a,b\n3,4,5\n")
    with pytest.raises(MlopsError, match="2.csv: line 2"):
        ingest(ws, [str(bad.parent / "*.csv")], "m")
    assert catalog_count(ws) == 0 and lake_versions(ws) == []


def test_problems_deep_in_a_large_file_are_located(ws, src):
    rows = "".join(f"{i},{i * 2},x{i}\n" for i in range(60_000))
    ragged = src("big.csv", "a,b,c\n" + rows + "1,2\n" + rows)
    fails(ws, ragged, r"line 60002: 2 fields, fewer than the 3 columns")
    badbyte = src("big2.csv", ("a,b,c\n" + rows).encode() + b"1,2,\xff\n" + rows.encode())
    fails(ws, badbyte, r"line 60002.*cannot be decoded as utf-8")
