"""The typed CSV fast path (numbers and booleans parsed by the reader, rejects fetched from the file afterwards)
must store and reject exactly what the text path does, and hand over to it when the reader cannot parse a value."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.contract import _convert, contract_from_dict
from mlops_desktop.data.csvlines import fetch_lines
from mlops_desktop.data.ingest import REJECT_LINE, REJECT_REASON, ingest
from mlops_desktop.data.writer import Writer
from mlops_desktop.errors import MlopsError
from mlops_desktop.workspace import Workspace

CONTRACT = contract_from_dict({"columns": {
    "id": {"type": "int64", "nullable": False, "unique": True},
    "price": {"type": "float64", "min": 0, "max": 1000},
    "qty": {"type": "int32", "min": 0},
    "flag": {"type": "bool"},
    "code": {"regex": "^[A-Z]{2}[0-9]{2}$"},
}}, "typed-test")


class Paths:
    """Which ingestion path ran for each file (spied on the Writer)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.typed: list[object] = []
        self.text = 0
        typed, text = Writer._write_typed, Writer._write_text

        def spy_typed(writer, *args, **kwargs):  # noqa: ANN001, ANN202
            result = typed(writer, *args, **kwargs)
            self.typed.append(result)
            return result

        def spy_text(writer, *args, **kwargs):  # noqa: ANN001, ANN202
            self.text += 1
            return text(writer, *args, **kwargs)

        monkeypatch.setattr(Writer, "_write_typed", spy_typed)
        monkeypatch.setattr(Writer, "_write_text", spy_text)


def _rejects(ws: Workspace, name: str) -> pl.DataFrame:
    files = lake.reject_files(ws, catalog.resolve(ws.db, name))
    return pl.concat([pl.read_parquet(f) for f in files]).sort(REJECT_LINE) if files else pl.DataFrame()


def _outcome(ws: Workspace, name: str) -> tuple[list[tuple], list[tuple]]:
    version = catalog.resolve(ws.db, name)
    stored = lake.scan(ws, version).collect()
    rejects = _rejects(ws, name)
    return ([tuple(r) for r in stored.rows()],
            [tuple(r) for r in rejects.drop("_source_file").rows()] if rejects.height else [])


def _ingest_both(ws: Workspace, path: Path, monkeypatch: pytest.MonkeyPatch, contract=CONTRACT):  # noqa: ANN001, ANN202
    fast = ingest(ws, [str(path)], "fast", contract=contract)
    with monkeypatch.context() as m:
        m.setattr(Writer, "_native_types", lambda self, piece: {})
        slow = ingest(ws, [str(path)], "slow", contract=contract)
    return fast, slow


def test_clean_numbers_take_the_typed_path_and_rejects_keep_the_raw_text(ws, src, monkeypatch):
    spy = Paths(monkeypatch)
    path = src("orders.csv", "id,price,qty,flag,code,note\n"
                             "1,10.50,3,true,AB12,fine\n"
                             "2,-0005.250,4,FALSE,AB12,below min\n"  # a range failure: raw text kept as written
                             "3,20,+7,True,ab12,regex\n"
                             "1,30,2,false,CD34,duplicate id\n"
                             "4,,1,,EF56,nulls are fine\n")
    result = ingest(ws, [str(path)], "orders", contract=CONTRACT)
    assert spy.text == 0 and spy.typed == [(2, 3)]
    assert (result.rows_in, result.rows_stored, result.rows_rejected) == (5, 2, 3)
    stored, _ = _outcome(ws, "orders")
    assert stored == [(1, 10.5, 3, True, "AB12", "fine"), (4, None, 1, None, "EF56", "nulls are fine")]
    rej = _rejects(ws, "orders")
    assert rej[REJECT_LINE].to_list() == [3, 4, 5]
    assert rej["price"].to_list() == ["-0005.250", "20", "30"]  # as the file wrote them, not as parsed
    assert rej["qty"].to_list() == ["4", "+7", "2"]
    assert rej[REJECT_REASON].to_list() == [
        "price: -0005.250 is below the minimum 0",
        "code: 'ab12' does not match /^[A-Z]{2}[0-9]{2}$/",
        "duplicate value of unique key (id)",
    ]


def test_typed_and_text_paths_agree_on_a_messy_file(ws, src, monkeypatch):
    lines = ["id,price,qty,flag,code,note"]
    for i in range(1, 400):
        price = "-1" if i % 37 == 0 else ("2000" if i % 41 == 0 else f"{i * 1.25:.2f}")
        code = "zz99" if i % 29 == 0 else "AB12"
        ident = "7" if i % 53 == 0 else str(i)
        note = '"two\nlines"' if i % 97 == 0 else "n"
        lines.append(f"{ident},{price},{i % 9},true,{code},{note}")
    path = src("messy.csv", "\n".join(lines) + "\n")
    spy = Paths(monkeypatch)
    fast, slow = _ingest_both(ws, path, monkeypatch)
    assert spy.typed and spy.typed[0] is not None  # the fast path ran to the end
    assert (fast.rows_in, fast.rows_stored, fast.rows_rejected) == (slow.rows_in, slow.rows_stored, slow.rows_rejected)
    assert fast.rows_rejected > 20
    assert _outcome(ws, "fast") == _outcome(ws, "slow")
    # a record spanning two lines shifts the lines after it: the rejects still name the real line
    rej = _rejects(ws, "fast")
    text = path.read_text().split("\n")
    for line, ident in zip(rej[REJECT_LINE].to_list(), rej["id"].to_list(), strict=True):
        assert text[line - 1].startswith(ident + ","), (line, ident)


def test_an_unparsable_value_hands_the_file_to_the_text_path(ws, src, monkeypatch):
    spy = Paths(monkeypatch)
    body = "".join(f"{i},{i % 100}.5,{i % 5},true,AB12,x\n" for i in range(1, 3000))
    path = src("late.csv", "id,price,qty,flag,code,note\n" + body + "3000,12,many,true,AB12,late bad qty\n")
    result = ingest(ws, [str(path)], "late", contract=CONTRACT)
    assert spy.typed == [None] and spy.text == 1
    assert (result.rows_in, result.rows_stored, result.rows_rejected) == (3000, 2999, 1)
    rej = _rejects(ws, "late")
    assert rej["qty"].to_list() == ["many"] and rej[REJECT_LINE].to_list() == [3001]
    assert "qty: 'many' is not a valid int32" in rej[REJECT_REASON][0]
    # the unique keys seen by the abandoned typed pass were not kept: no row counted as its own duplicate
    assert "duplicate" not in " ".join(rej[REJECT_REASON].to_list())


def test_boolean_words_the_reader_does_not_know_fall_back(ws, src, monkeypatch):
    spy = Paths(monkeypatch)
    path = src("yes.csv", "id,price,qty,flag,code\n1,1,1,yes,AB12\n2,1,1,no,AB12\n3,1,1,maybe,AB12\n")
    result = ingest(ws, [str(path)], "yes", contract=CONTRACT)
    assert spy.typed == [None] and spy.text == 1
    assert (result.rows_stored, result.rows_rejected) == (2, 1)
    assert lake.scan(ws, catalog.resolve(ws.db, "yes")).collect()["flag"].to_list() == [True, False]


def test_more_rejects_than_one_file_holds_use_the_text_path(ws, src, monkeypatch):
    from mlops_desktop.data import writer

    monkeypatch.setattr(writer._Rejects, "FLUSH_ROWS", 10)
    spy = Paths(monkeypatch)
    path = src("bad.csv", "id,price,qty,flag,code\n" + "".join(f"{i},-1,1,true,AB12\n" for i in range(1, 60)))
    result = ingest(ws, [str(path)], "bad", contract=CONTRACT)
    assert spy.typed == [None] and spy.text == 1
    assert (result.rows_stored, result.rows_rejected) == (0, 59)


def test_cancel_during_the_typed_path_stores_nothing(ws, src):
    from mlops_desktop.errors import Cancelled
    from mlops_desktop.progress import Progress

    path = src("big.csv", "id,price,qty,flag,code\n" + "".join(f"{i},1,1,true,AB12\n" for i in range(1, 200_000)))
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        ingest(ws, [str(path)], "big", contract=CONTRACT, progress=progress)
    assert catalog.latest(ws.db, "big") is None


# --- the reader and the text conversion agree on every value the reader accepts --------------------------------

numberish = st.text(alphabet="0123456789+-.eE _xabinfINF\t", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(value=numberish, dtype=st.sampled_from([pl.Int64, pl.Int32, pl.UInt8, pl.Float64]))
def test_reader_accepts_only_what_the_text_conversion_reads_the_same(value, dtype):
    from mlops_desktop.data.contract import ColumnRule, dtype_name

    data = f"x\n\"{value}\"\n".encode()
    try:
        native = pl.read_csv(data, schema={"x": dtype})["x"][0]
    except Exception:  # noqa: BLE001 - the reader refused: the text path decides, nothing to compare
        return
    text = pl.read_csv(data, schema={"x": pl.String})
    converted = text.select(_convert(pl.col("x"), pl.String, ColumnRule("x", type=dtype_name(dtype))))["x"][0]
    if native is None:
        assert converted is None
    else:
        assert converted == native or (native != native and converted != converted), (value, native, converted)


def test_padded_numbers_are_numbers_on_both_paths(ws, src, monkeypatch):
    path = src("pad.csv", "id,price,qty,flag,code\n 1, 2.5 ,3 ,true,AB12\n")
    fast, slow = _ingest_both(ws, path, monkeypatch)
    assert fast.rows_stored == slow.rows_stored == 1
    assert _outcome(ws, "fast") == _outcome(ws, "slow")


# --- fetch_lines ------------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(alphabet="ab,\r\"é", max_size=6), max_size=30), trailing=st.booleans(),
       crlf=st.booleans(), bom=st.booleans())
def test_fetch_lines_returns_each_line_and_the_line_count(lines, trailing, crlf, bom):
    tmp = Path(tempfile.mkdtemp())
    try:
        end = "\r\n" if crlf else "\n"
        text = end.join(lines) + (end if trailing and lines else "")
        data = (b"\xef\xbb\xbf" if bom and text else b"") + text.encode()
        path = tmp / "f.txt"
        path.write_bytes(data)
        expected = text.encode().split(b"\n")
        if expected[-1] == b"":
            expected.pop()  # a final newline ends the last line; an empty file has no line
        got = fetch_lines(path, list(range(0, len(expected) + 3)))
        assert got.total == len(expected)
        assert got.text == {i + 1: (raw[:-1] if raw.endswith(b"\r") else raw) for i, raw in enumerate(expected)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_rows_in_equals_stored_plus_rejected_for_generated_typed_csvs(monkeypatch):
    """The fast path, like the text path, never loses a row (a short version of the messy-CSV property)."""
    cells = st.one_of(st.integers(-5, 2000).map(str), st.sampled_from(["", "x", " 7", "1e2", "-0"]))

    @settings(max_examples=25, deadline=None)
    @given(rows=st.lists(st.tuples(cells, cells), min_size=1, max_size=30))
    def check(rows):
        tmp = Path(tempfile.mkdtemp())
        try:
            buf = io.StringIO()
            out = csv.writer(buf, lineterminator="\n")
            out.writerow(["id", "qty"])
            out.writerows(rows)
            path = tmp / "g.csv"
            path.write_text(buf.getvalue(), encoding="utf-8")
            contract = contract_from_dict({"columns": {"id": {"type": "int64"}, "qty": {"type": "int32", "min": 0}}},
                                          "gen")
            with Workspace.open(tmp / "ws") as ws:
                try:
                    fast, slow = _ingest_both(ws, path, monkeypatch, contract)
                except MlopsError:
                    return
                assert fast.rows_in == fast.rows_stored + fast.rows_rejected == len(rows)
                assert _outcome(ws, "fast") == _outcome(ws, "slow")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    check()


@pytest.mark.parametrize("body", [
    "id,price,qty,flag,code\n1,1,1,true,AB12\n\n2,-1,1,true,AB12\n\n\n3,2,-5,false,AB12\n",  # blank lines
    "id,price,qty,flag,code\r\n1,1,1,true,AB12\r\n2,-1,1,true,AB12\r\n3,2,-5,false,AB12",  # CRLF, no final newline
    "\ufeffid,price,qty,flag,code\n1,1,1,true,AB12\n2,-1,1,true,AB12\n3,2,-5,false,AB12\n\n\n",  # BOM, trailing blanks
])
def test_rejects_name_the_real_line_whatever_the_line_layout(ws, src, monkeypatch, body):
    path = src("layout.csv", body.encode())
    spy = Paths(monkeypatch)
    fast, slow = _ingest_both(ws, path, monkeypatch)
    assert spy.typed[0] is not None
    assert (fast.rows_stored, fast.rows_rejected) == (slow.rows_stored, slow.rows_rejected) == (1, 2)
    assert _outcome(ws, "fast") == _outcome(ws, "slow")
    lines = body.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    rej = _rejects(ws, "fast")
    assert [lines[n - 1] for n in rej[REJECT_LINE].to_list()] == ["2,-1,1,true,AB12", "3,2,-5,false,AB12"]


def test_blank_lines_are_not_rows_and_empty_rows_are_rejected(ws, src, monkeypatch):
    body = "id,price,qty,flag,code\n1,1,1,true,AB12\n\n,,,,\n2,3,4,false,CD34\n\r\n\n"
    path = src("blank.csv", body.encode())
    fast, slow = _ingest_both(ws, path, monkeypatch)
    for result in (fast, slow):
        assert (result.rows_in, result.rows_stored, result.rows_rejected) == (3, 2, 1)
        assert result.files[0]["blank_lines"] == 3
    assert _outcome(ws, "fast") == _outcome(ws, "slow")
    rej = _rejects(ws, "fast")
    assert rej[REJECT_LINE].to_list() == [4] and rej[REJECT_REASON].to_list() == ["empty row: every field is empty"]
    # without a contract a blank line used to be stored as a row of nulls
    plain = ingest(ws, [str(path)], "plain")
    assert (plain.rows_stored, plain.rows_rejected) == (2, 1)
    assert lake.scan(ws, catalog.resolve(ws.db, "plain")).collect()["id"].to_list() == [1, 2]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(0, 9000), min_size=1, max_size=40), seed=st.integers(0, 2**16),
       trailing=st.booleans())
def test_fetch_lines_across_many_windows(monkeypatch, lengths, seed, trailing):
    """Lines longer than a window, lines ending exactly at a window edge, empty lines: all exact (4 KiB windows)."""
    import random

    from mlops_desktop.data import csvlines

    monkeypatch.setattr(csvlines, "CHUNK", 4096)
    rng = random.Random(seed)
    lines = [bytes(rng.choice(b"abc,;") for _ in range(n)) for n in lengths]
    data = b"\n".join(lines) + (b"\n" if trailing else b"")
    tmp = Path(tempfile.mkdtemp())
    try:
        path = tmp / "w.txt"
        path.write_bytes(data)
        expected = data.split(b"\n")
        if expected[-1] == b"":
            expected.pop()
        wanted = sorted(rng.sample(range(1, len(expected) + 2), k=min(len(expected) + 1, 7)))
        got = fetch_lines(path, wanted)
        assert got.total == len(expected)
        assert got.text == {n: expected[n - 1] for n in wanted if n <= len(expected)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_tsv_without_header_with_null_words_agrees_with_the_text_path(ws, src, monkeypatch):
    from mlops_desktop.data.csvcheck import CsvOptions
    from mlops_desktop.data.sources import SourceOptions

    path = src("n.tsv", "1\t2.5\tNA\n2\t-1\tx\nNA\t3\t\"q\tq\"\n4\tNA\tz\n")
    options = SourceOptions(csv=CsvOptions(has_header=False, null_values=("NA",)))
    contract = contract_from_dict({"columns": {"column_1": {"type": "int64", "nullable": False},
                                               "column_2": {"type": "float64", "min": 0}}}, "tsv")
    spy = Paths(monkeypatch)
    fast = ingest(ws, [str(path)], "fast", contract=contract, options=options)
    assert spy.typed and spy.typed[0] is not None
    with monkeypatch.context() as m:
        m.setattr(Writer, "_native_types", lambda self, piece: {})
        slow = ingest(ws, [str(path)], "slow", contract=contract, options=options)
    assert (fast.rows_stored, fast.rows_rejected) == (slow.rows_stored, slow.rows_rejected) == (2, 2)
    assert _outcome(ws, "fast") == _outcome(ws, "slow")
    rej = _rejects(ws, "fast")
    assert rej[REJECT_LINE].to_list() == [2, 3] and rej["column_3"].to_list() == ["x", "q\tq"]


def test_ragged_rows_keep_the_typed_path_and_agree_with_the_text_path(ws, src, monkeypatch):
    body = "".join(f"{i},{i % 500}.5,{i % 7},{'true' if i % 2 else 'false'},AB{i % 90 + 10}\n" for i in range(1, 3000))
    lines = body.splitlines(keepends=True)
    lines[100] = lines[100].rstrip("\n") + ",extra\n"  # a field too many
    lines[200] = lines[200].rsplit(",", 1)[0] + "\n"  # a field too few
    lines[300] = "301,-1,1,true,AB12\n"  # and an ordinary bad row
    path = src("ragged.csv", "id,price,qty,flag,code\n" + "".join(lines))
    spy = Paths(monkeypatch)
    fast, slow = _ingest_both(ws, path, monkeypatch)
    assert spy.typed and spy.typed[-1] is not None  # the read that stored the version was the typed one
    assert (fast.rows_stored, fast.rows_rejected) == (slow.rows_stored, slow.rows_rejected) == (2996, 3)
    assert _outcome(ws, "fast") == _outcome(ws, "slow")
    rej = _rejects(ws, "fast")
    assert rej[REJECT_LINE].to_list() == [102, 202, 302]
    assert rej["_raw_line"].to_list() == [lines[100].rstrip("\n"), lines[200].rstrip("\n"), None]
