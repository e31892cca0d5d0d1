"""The numpy byte scan that finds short rows agrees with Python's csv module and with polars' record count."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_desktop.data import csvscan
from mlops_desktop.data.csvcheck import CsvOptions, diagnose
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.sources import SourceOptions
from mlops_desktop.errors import MlopsError

NAMES = ["a", "b", "c"]
FAIL = SourceOptions(on_malformed="fail")  # a short row refuses the file (the default rejects the row)
fields = st.text(alphabet='ab ,"\n', max_size=4)
records = st.lists(st.one_of(st.lists(fields, min_size=3, max_size=3), st.lists(fields, min_size=1, max_size=2)),
                   min_size=1, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=records, crlf=st.booleans(), trailing_newline=st.booleans(), chunk=st.sampled_from([1, 3, 7, 1 << 20]))
def test_scan_agrees_with_python_csv_and_polars(tmp_path, monkeypatch, rows, crlf, trailing_newline, chunk):
    monkeypatch.setattr(csvscan, "CHUNK", chunk)  # records and quotes cut across chunk borders
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n" if crlf else "\n").writerows([NAMES, *rows])
    text = buf.getvalue() if trailing_newline else buf.getvalue().rstrip("\r\n")
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8")
    found = csvscan.scan_structure(path, CsvOptions(), 3)
    expected = diagnose(path, CsvOptions(), NAMES)
    if expected is None:
        assert found.short_line is None
        assert found.records == pl.read_csv(path, infer_schema=False).height
    else:
        assert found.short_line is not None
        assert csvscan.short_row_message(path, found, NAMES) == expected


def test_short_row_among_rows_with_an_empty_last_field(ws, src):
    rows = "".join(f"{i},x,\n" if i % 2 else f"{i},x,{i}\n" for i in range(5000))
    path = src("r.csv", "a,b,c\n" + rows + "7,8\n" + rows)
    with pytest.raises(MlopsError, match=r"line 5002: 2 fields, fewer than the 3 columns"):
        ingest(ws, [str(path)], "r", options=FAIL)
    ok = src("ok.csv", "a,b,c\n" + rows)
    assert ingest(ws, [str(ok)], "ok").rows_stored == 5000


def test_short_row_after_a_record_spanning_lines(ws, src):
    path = src("m.csv", 'a,b,c\n1,"two\nlines, with a comma",\n2,"x"\n3,y,z\n')
    with pytest.raises(MlopsError, match=r"line 4: 2 fields, fewer than the 3 columns"):
        ingest(ws, [str(path)], "m", options=FAIL)


def test_short_row_in_a_latin1_file_is_found_by_the_python_pass(ws, src):
    path = src("l.csv", "a,b,c\n1,caf\xe9,\n2,x\n".encode("latin-1"))
    with pytest.raises(MlopsError, match=r"line 3: 2 fields, fewer than the 3 columns"):
        ingest(ws, [str(path)], "l", options=SourceOptions(csv=CsvOptions(encoding="latin-1"), on_malformed="fail"))


def test_scan_is_not_used_for_other_encodings_or_wide_separators():
    assert csvscan.usable(CsvOptions())
    assert not csvscan.usable(CsvOptions(encoding="latin-1"))
    assert not csvscan.usable(CsvOptions(separator="§"))


def test_empty_last_fields_do_not_cost_a_python_pass(ws, src, monkeypatch):
    from mlops_desktop.data import csvcheck

    def slow_pass(*args, **kwargs):
        raise AssertionError("the plain-Python pass ran for a file the byte scan can check")

    monkeypatch.setattr(csvcheck, "diagnose", slow_pass)
    rows = "".join(f'{i},"a, ""quoted"" one",\n' if i % 3 else f"{i},x,{i}\n" for i in range(20_000))
    result = ingest(ws, [str(src("e.csv", "a,b,c\n" + rows))], "e")
    assert result.rows_stored == 20_000


longer = st.lists(st.one_of(st.lists(fields, min_size=3, max_size=3), st.lists(fields, min_size=1, max_size=5)),
                  min_size=1, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=longer, crlf=st.booleans(), trailing_newline=st.booleans(), chunk=st.sampled_from([1, 3, 7, 1 << 20]))
def test_ragged_scan_finds_every_record_python_csv_finds(tmp_path, monkeypatch, rows, crlf, trailing_newline, chunk):
    monkeypatch.setattr(csvscan, "CHUNK", chunk)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n" if crlf else "\n").writerows([NAMES, *rows])
    text = buf.getvalue() if trailing_newline else buf.getvalue().rstrip("\r\n")
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8")
    found = csvscan.scan_ragged(path, CsvOptions(), 3)
    expected: list[tuple[int, int, int]] = []  # (record number, fields, start line) by Python's csv module
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        prev_end, number = 0, 0
        for i, record in enumerate(reader):
            start, prev_end = prev_end + 1, reader.line_num
            if i == 0:
                continue
            number += 1
            if record and len(record) != 3:
                expected.append((number, len(record), start))
    assert list(zip(found.numbers, found.fields, found.start_lines, strict=True)) == expected
    assert found.records == pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True).height
