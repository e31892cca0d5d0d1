"""Malformed input fails with a message naming file, line and column, and stores nothing."""

from __future__ import annotations

import polars as pl
import pytest
from data_helpers import catalog_count, lake_versions

from mlops_desktop.data import catalog, lake
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


FAIL = SourceOptions(on_malformed="fail")  # --on-malformed fail: a ragged row refuses the whole file


def test_row_with_too_many_fields(ws, src):
    path = src("r.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n11,12,13\n")
    fails(ws, path, r"line 4: 4 fields, more than the 3 columns", options=FAIL)


def test_row_with_too_few_fields(ws, src):
    path = src("r.csv", "a,b,c\n1,2,3\n4,5\n7,8,9\n")
    msg = fails(ws, path, r"line 3: 2 fields, fewer than the 3 columns", options=FAIL)
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
        ingest(ws, [str(bad.parent / "*.csv")], "m", options=FAIL)
    assert catalog_count(ws) == 0 and lake_versions(ws) == []


def test_problems_deep_in_a_large_file_are_located(ws, src):
    rows = "".join(f"{i},{i * 2},x{i}\n" for i in range(60_000))
    ragged = src("big.csv", "a,b,c\n" + rows + "1,2\n" + rows)
    fails(ws, ragged, r"line 60002: 2 fields, fewer than the 3 columns", options=FAIL)
    badbyte = src("big2.csv", ("a,b,c\n" + rows).encode() + b"1,2,\xff\n" + rows.encode())
    fails(ws, badbyte, r"line 60002.*cannot be decoded as utf-8")


# ---------------------------------------------------------------- ragged rows are rejected, the rest is stored
def _rejects(ws, name):
    files = lake.reject_files(ws, catalog.resolve(ws.db, name))
    return pl.concat([pl.read_parquet(f) for f in files]).sort("_source_line") if files else None


def test_ragged_rows_go_to_the_rejects_with_line_reason_and_raw_text(ws, src):
    path = src("r.csv", 'a,b,c,d,e\n1,2,3,4,5\n6,7,8,9,10,11,12\n13,14\n\n"multi\nline",1,2,3,4,5\n15,16,17,18,19\n')
    result = ingest(ws, [str(path)], "r")
    assert (result.rows_in, result.rows_stored, result.rows_rejected, result.blank_lines) == (5, 2, 3, 1)
    assert result.rows_in == result.rows_stored + result.rows_rejected
    rej = _rejects(ws, "r")
    assert rej["_source_line"].to_list() == [3, 4, 6]
    assert rej["_reason"].to_list() == ["7 fields, the header has 5", "2 fields, the header has 5",
                                        "6 fields, the header has 5"]
    assert rej["_raw_line"].to_list() == ["6,7,8,9,10,11,12", "13,14", '"multi\nline",1,2,3,4,5']
    assert rej["a"].to_list() == ["6", "13", "multi\nline"]  # the fields the header names, as text
    stored = lake.scan(ws, catalog.resolve(ws.db, "r")).collect()
    assert stored["a"].to_list() == ["1", "15"] and stored["e"].to_list() == [5, 19]  # a: "multi\nline" is text


def test_ragged_rows_with_a_typed_contract_and_other_bad_rows(ws, src):
    from mlops_desktop.data.contract import contract_from_dict

    contract = contract_from_dict({"columns": {"id": {"type": "int64"}, "x": {"type": "float64", "min": 0}}}, "c")
    rows = "".join(f"{i},{i * 0.5},t{i}\n" for i in range(1, 3001))
    path = src("t.csv", "id,x,s\n" + rows + "3001,-1,neg\n3002,1\n3003,1,s,extra\noops,1,s\n")
    result = ingest(ws, [str(path)], "t", contract=contract)
    assert (result.rows_in, result.rows_stored, result.rows_rejected) == (3004, 3000, 4)
    rej = _rejects(ws, "t")
    assert rej["_source_line"].to_list() == [3002, 3003, 3004, 3005]
    assert rej["_reason"].to_list() == ["x: -1 is below the minimum 0", "2 fields, the header has 3",
                                        "4 fields, the header has 3", "id: 'oops' is not a valid int64"]
    assert rej["_raw_line"].to_list() == [None, "3002,1", "3003,1,s,extra", None]


def test_rows_in_is_stored_plus_rejected_on_every_file(ws, src):
    src("m/1.csv", "a,b\n1,2\n3,4,5\n")
    src("m/2.csv", "a,b\n6\n7,8\n9,10\n")
    result = ingest(ws, [str(src("m/3.csv", "a,b\n11,12\n").parent / "*.csv")], "m")
    per_file = [(f["rows_in"], f["rows_stored"], f["rows_rejected"]) for f in result.files]
    assert per_file == [(2, 1, 1), (3, 2, 1), (1, 1, 0)]
    assert all(f["rows_in"] == f["rows_stored"] + f["rows_rejected"] for f in result.files)


def test_fail_mode_keeps_refusing_the_file(ws, src):
    path = src("r.csv", "a,b,c\n1,2,3\n4,5,6,7\n")
    msg = fails(ws, path, r"line 3: 4 fields, more than the 3 columns", options=FAIL)
    with pytest.raises(MlopsError) as info:
        ingest(ws, [str(path)], "bad", options=FAIL)
    assert "--on-malformed reject" in info.value.hint and msg


def test_a_file_whose_rows_are_mostly_ragged_is_refused_with_the_delimiter_hint(ws, src, monkeypatch):
    from mlops_desktop.data import ragged

    monkeypatch.setattr(ragged, "MAX_RAGGED", 5)
    path = src("semi.csv", "a;b;c\n" + "".join(f"{i},{i},{i}\n" for i in range(10)))  # really comma-separated
    with pytest.raises(MlopsError, match=r"semi.csv: more than 5 rows have a different number of fields") as info:
        ingest(ws, [str(path)], "semi")
    assert "--delimiter" in info.value.hint
    assert catalog_count(ws) == 0


# ---------------------------------------------------------------- CR-only line endings (old spreadsheet exports)
def test_cr_only_line_endings_are_read(ws, src):
    path = src("mac.csv", b"id,name,amount\r1,ann,2.5\r2,bob,oops\r3,cy,4\r")
    from mlops_desktop.data.contract import contract_from_dict

    contract = contract_from_dict({"columns": {"amount": {"type": "float64"}}}, "c")
    result = ingest(ws, [str(path)], "mac", contract=contract)
    assert (result.rows_in, result.rows_stored, result.rows_rejected) == (3, 2, 1)
    assert lake.scan(ws, catalog.resolve(ws.db, "mac")).collect()["name"].to_list() == ["ann", "cy"]
    rej = _rejects(ws, "mac")
    assert rej["_source_line"].to_list() == [3] and rej["amount"].to_list() == ["oops"]


def test_cr_only_errors_name_the_right_line(ws, src):
    rows = b"".join(b"%d,abc\r" % i for i in range(100))
    path = src("mac.csv", b"a,b\r" + rows[:300] + b"x,caf\xe9\r" + rows[300:])
    line = 2 + rows[:300].count(b"\r")
    fails(ws, path, rf"line {line}, byte \d+: byte 0xe9 cannot be decoded as utf-8")
    ragged = src("mac2.csv", b"a,b,c\r1,2,3\r4,5\r6,7,8\r")
    fails(ws, ragged, r"line 3: 2 fields, fewer than the 3 columns", options=FAIL)
    result = ingest(ws, [str(ragged)], "mac2")
    assert (result.rows_stored, result.rows_rejected) == (2, 1)
    assert _rejects(ws, "mac2")["_source_line"].to_list() == [3]


# ---------------------------------------------------------------- no raw reader message reaches the user
READER_WORDS = ("new_columns", "Schema", "truncate_ragged_lines", "polars", "dtype", "ComputeError", "Consider",
                "in file)")


@pytest.mark.parametrize(("content", "options"), [
    (b"a,b,c\r" + b"1,2,3\r" * 50, SourceOptions(on_malformed="fail")),
    (b"a,b,c\n1,2,3\n4,5,6,7\n", SourceOptions(on_malformed="fail")),
    (b'a,b\n1,"x\n2,y\n', SourceOptions()),
    (b'a,b\n1,"ab"c\n', SourceOptions()),
    (b"a;b;c\n1;2;3\n", SourceOptions(csv=CsvOptions(quote_char="'"))),
    (b"a,b\n1,\xff\n", SourceOptions()),
])
def test_errors_name_file_and_line_and_never_the_readers_words(ws, src, content, options):
    path = src("x.csv", content)
    try:
        ingest(ws, [str(path)], "x", options=options)
    except MlopsError as exc:
        text = f"{exc} {exc.hint or ''}"
        assert str(path) in text and "line " in text, text
        assert not any(word in text for word in READER_WORDS), text
        assert exc.hint, "every error offers the option that helps"


def test_reader_failures_without_a_bad_line_are_worded():
    from mlops_desktop.data.writer import csv_failure

    piece = type("P", (), {"label": "f.csv", "csv_names": ["a"] * 96})()
    message, hint = csv_failure(piece, Exception("provided `new_columns` does not match number of columns in file "
                                                 "(96 != 202636 in file)"), CsvOptions())
    assert message.startswith("f.csv: line 1:") and "96" in message and "202636" not in message
    assert "--delimiter" in hint


# ---------------------------------------------------------------- identifiers with leading zeros stay text
def test_leading_zero_identifiers_are_kept_as_text(ws, src):
    path = src("z.csv", "account,zip,amount\n08123,01000,1\n00042,12345,2\n123,99999,3\n")
    result = ingest(ws, [str(path)], "z")
    version = catalog.resolve(ws.db, "z")
    assert version.schema == {"account": "string", "zip": "string", "amount": "int64"}
    stored = lake.scan(ws, version).collect()
    assert stored["account"].to_list() == ["08123", "00042", "123"]
    assert stored["zip"].to_list() == ["01000", "12345", "99999"]
    assert any("account" in n and "leading zeros" in n and "08123" in n for n in result.notes)
    # a contract that types the column decides: numbers, as asked
    from mlops_desktop.data.contract import contract_from_dict

    typed = ingest(ws, [str(path)], "z2", contract=contract_from_dict({"columns": {"zip": "int64"}}, "c"))
    assert catalog.resolve(ws.db, "z2").schema["zip"] == "int64" and not any("zip" in n for n in typed.notes)


def test_the_preview_suggests_text_for_leading_zero_identifiers(src):
    from mlops_desktop.data.preview import draft_contract, preview

    pv = preview([str(src("z.csv", "id,n\n007,1\n8,2\n"))])
    assert pv.types == {"id": "string", "n": "int64"}
    assert draft_contract(pv).columns["id"].type == "string"
