"""Every input format round-trips through the lake with the right rows, types and line numbers."""

from __future__ import annotations

import json
import sqlite3

import polars as pl
import pytest

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.contract import contract_from_dict
from mlops_desktop.data.csvcheck import CsvOptions
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.sources import SourceOptions


def read(ws, ref):
    return lake.open_dataset(ws, ref)


def test_csv_round_trip_infers_types(ws, src):
    path = src("a.csv", "id,price,name,when,ok\n1,2.5,x,2024-01-02,true\n2,3.0,\"y, z\",2024-01-03,false\n")
    result = ingest(ws, [str(path)], "a")
    assert (result.rows_in, result.rows_stored, result.rows_rejected, result.version) == (2, 2, 0, 1)
    df = read(ws, "a")
    assert df.schema == {"id": pl.Int64, "price": pl.Float64, "name": pl.String, "when": pl.Date, "ok": pl.Boolean}
    assert df.rows() == [(1, 2.5, "x", df["when"][0], True), (2, 3.0, "y, z", df["when"][1], False)]
    version = catalog.resolve(ws.db, "a@1")
    assert version.schema == {"id": "int64", "price": "float64", "name": "string", "when": "date", "ok": "bool"}
    assert version.row_count == 2 and len(version.content_hash) == 64 and version.bytes > 0


def test_tsv_custom_delimiter_and_no_header(ws, src):
    tsv = src("b.tsv", "k\tv\na\t1\nb\t2\n")
    assert ingest(ws, [str(tsv)], "b").rows_stored == 2
    assert read(ws, "b")["v"].to_list() == [1, 2]
    semi = src("c.txt", "1;x\n2;y\n3;z\n")
    opts = SourceOptions(format="csv", csv=CsvOptions(separator=";", has_header=False))
    assert ingest(ws, [str(semi)], "c", options=opts).rows_stored == 3
    assert read(ws, "c").columns == ["column_1", "column_2"]


def test_quoted_newlines_keep_exact_reject_lines(ws, src):
    from mlops_desktop.data.contract import contract_from_dict

    path = src("q.csv", 'id,note\n1,"two\nlines"\n2,ok\nx,"bad id"\n')
    contract = contract_from_dict({"columns": {"id": {"type": "int64"}}}, "test")
    result = ingest(ws, [str(path)], "q", contract=contract)
    assert (result.rows_stored, result.rows_rejected) == (2, 1)
    assert read(ws, "q")["note"].to_list() == ["two\nlines", "ok"]
    rejects = pl.read_parquet(lake.reject_files(ws, catalog.resolve(ws.db, "q"))[0])
    assert rejects["_source_line"].to_list() == [5]  # the record starts on line 5 (line 2 spans two lines)
    assert rejects["id"].to_list() == ["x"]


def test_bom_and_latin1(ws, src):
    bom = src("bom.csv", "name,n\nA,1\n".encode("utf-8-sig"))
    ingest(ws, [str(bom)], "bom")
    assert read(ws, "bom").columns == ["name", "n"]
    latin = src("l.csv", "name,city\nJosé,Montréal\n".encode("latin-1"))
    opts = SourceOptions(csv=CsvOptions(encoding="latin-1"))
    ingest(ws, [str(latin)], "latin", options=opts)
    assert read(ws, "latin").row(0) == ("José", "Montréal")


def test_ndjson_and_json_array(ws, src):
    nd = src("e.ndjson", '{"a": 1, "b": "x"}\n{"a": 2, "b": null}\n{"a": 3}\n')
    assert ingest(ws, [str(nd)], "nd").rows_stored == 3
    assert read(ws, "nd")["a"].to_list() == [1, 2, 3]
    arr = src("e.json", json.dumps([{"a": 1.5, "b": True}, {"a": 2.5, "b": False}]))
    assert ingest(ws, [str(arr)], "arr").rows_stored == 2
    assert read(ws, "arr").rows() == [(1.5, True), (2.5, False)]


def test_parquet_round_trip(ws, tmp_path):
    df = pl.DataFrame({"x": list(range(1000)), "y": [str(i) for i in range(1000)]})
    path = tmp_path / "p.parquet"
    df.write_parquet(path)
    ingest(ws, [str(path)], "p")
    assert read(ws, "p").equals(df)


def test_sqlite_table_with_mistyped_values_rejected(ws, tmp_path):
    db = tmp_path / "s.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER, price REAL, name TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, 1.5, "a"), (2, 2.5, "b"), ("oops", 3.5, "c")])
    conn.commit()
    conn.close()
    result = ingest(ws, [str(db)], "s", options=SourceOptions(table="t"))
    assert (result.rows_in, result.rows_stored, result.rows_rejected) == (3, 2, 1)
    assert read(ws, "s").schema == {"id": pl.Int64, "price": pl.Float64, "name": pl.String}
    rejects = pl.read_parquet(lake.reject_files(ws, catalog.resolve(ws.db, "s"))[0])
    assert rejects["_source_line"].to_list() == [3]
    assert "id: 'oops' is not a valid int64" in rejects["_reason"][0]


def test_sqlite_missing_table_lists_tables(ws, tmp_path):
    db = tmp_path / "s.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE real_one (a)").connection.close()
    with pytest.raises(Exception, match="(?s)no table named 'nope'.*real_one"):
        ingest(ws, [str(db)], "s", options=SourceOptions(table="nope"))


def test_glob_of_many_files_counts_per_file(ws, src):
    for i in range(5):
        src(f"parts/p{i}.csv", "a,b\n" + "".join(f"{i * 10 + j},{j}\n" for j in range(i + 1)))
    pattern = str(src("parts/p0.csv", "a,b\n0,0\n").parent / "*.csv")
    result = ingest(ws, [pattern], "g")
    assert [f["rows_in"] for f in result.files] == [1, 2, 3, 4, 5]
    assert sorted(read(ws, "g")["a"].to_list()) == sorted([i * 10 + j for i in range(5) for j in range(i + 1)])


def test_append_and_replace_versions(ws, src):
    one = src("1.csv", "a,b\n1,x\n2,y\n")
    two = src("2.csv", "a,b\n3,z\n")
    ingest(ws, [str(one)], "d")
    v2 = ingest(ws, [str(two)], "d", mode="append")
    assert (v2.version, v2.row_count, v2.rows_stored) == (2, 3, 1)
    assert sorted(read(ws, "d")["a"].to_list()) == [1, 2, 3]
    assert read(ws, "d@1")["a"].to_list() == [1, 2]  # older versions never change
    assert catalog.resolve(ws.db, "d@2").parents == ["d@1"]
    v3 = ingest(ws, [str(two)], "d", mode="replace")
    assert (v3.version, v3.row_count) == (3, 1)


def test_schema_drift_reported_and_append_refused(ws, src):
    ingest(ws, [str(src("1.csv", "a,b\n1,x\n"))], "d")
    other = src("2.csv", "a,c\nnot-a-number,1\n")
    with pytest.raises(Exception, match="cannot append to d@1: the schema differs"):
        ingest(ws, [str(other)], "d", mode="append")
    result = ingest(ws, [str(other)], "d")
    assert set(result.drift) == {"added column c (int64)", "removed column b (string)",
                                 "column a changed type int64 -> string"}
    assert catalog.resolve(ws.db, "d").drift == result.drift


def test_same_content_same_hash(ws, src):
    path = src("1.csv", "a\n1\n2\n")
    h1 = ingest(ws, [str(path)], "x").content_hash
    h2 = ingest(ws, [str(path)], "y").content_hash
    assert h1 == h2
    h3 = ingest(ws, [str(src("2.csv", "a\n1\n3\n"))], "z").content_hash
    assert h3 != h1


def test_open_dataset_pandas_and_run_lineage(ws, src):
    ingest(ws, [str(src("1.csv", "a\n1\n2\n"))], "x")
    exp = ws.tracking.get_or_create_experiment("e")
    run = ws.tracking.create_run(exp.id, name="train")
    df = lake.open_dataset(ws, "x@1", kind="pandas", run=run.uuid)
    assert list(df["a"]) == [1, 2]
    assert catalog.runs_that_read(ws.db, "x") == [{"run": run.uuid, "run_name": "train", "version": "1",
                                                   "context": "input"}]


def test_open_dataset_inside_a_tracked_run_records_the_input(ws, src):
    import mlops_desktop.tracking as mt

    ingest(ws, [str(src("1.csv", "a\n1\n"))], "x")
    ingest(ws, [str(src("2.csv", "a\n2\n"))], "x")
    with mt.start_run(experiment="e", name="fit", home=ws.root) as run:
        assert lake.open_dataset(ws, "x@1")["a"].to_list() == [1]
        lake.open_dataset(ws, "x", kind="lazy")
    reads = catalog.runs_that_read(ws.db, "x")
    assert sorted((r["run"], r["version"]) for r in reads) == [(run.uuid, "1"), (run.uuid, "2")]


def test_ndjson_rejects_name_the_line_even_after_blank_lines(ws, src):
    from mlops_desktop.data.contract import contract_from_dict

    path = src("b.ndjson", '{"a": 1}\n\n{"a": -2}\n   \n{"a": 3}\n{"a": -4}\n')
    result = ingest(ws, [str(path)], "nd", contract=contract_from_dict({"columns": {"a": {"min": 0}}}, "c"))
    assert (result.rows_in, result.rows_stored, result.rows_rejected) == (4, 2, 2)
    bad = pl.read_parquet(lake.reject_files(ws, catalog.resolve(ws.db, "nd"))[0])
    assert bad["_source_line"].to_list() == [3, 6]


def test_excel_sheet_with_contract_rejects_by_sheet_row(ws, tmp_path):
    pytest.importorskip("fastexcel")
    from data_helpers import write_xlsx

    from mlops_desktop.data.contract import contract_from_dict

    path = write_xlsx(tmp_path / "book.xlsx", [["id", "price", "name"], [1, 2.5, "a"], [2, "oops", "b"], [3, 4, "c"]],
                      sheet="Prices")
    result = ingest(ws, [str(path)], "xl", contract=contract_from_dict({"columns": {"price": {"type": "float64"}}},
                                                                       "c"))
    assert (result.rows_in, result.rows_stored, result.rows_rejected) == (3, 2, 1)
    df = read(ws, "xl")
    assert df.schema["price"] == pl.Float64 and df["name"].to_list() == ["a", "c"]
    bad = pl.read_parquet(lake.reject_files(ws, catalog.resolve(ws.db, "xl"))[0])
    assert bad["_source_line"].to_list() == [3] and bad["_source_file"][0].endswith("book.xlsx[Prices]")
    with pytest.raises(Exception, match="(?s)no sheet named 'Other'.*Prices"):
        ingest(ws, [str(path)], "xl", options=SourceOptions(sheet="Other"))


def test_untyped_columns_that_start_like_dates_are_inferred(ws, src):
    path = src("d.csv", "id,at,day,compact,code,note\n1,2024-01-31 10:00:00,31.01.2024,20240131T101010,AB-12,n/a\n"
                        "2,2024-02-01 11:30:00,01.02.2024,20240201T000000,CD-34,1/2 done\n")
    ingest(ws, [str(path)], "d")
    df = lake.open_dataset(ws, "d")
    assert df.schema["at"] == pl.Datetime("us") and df.schema["day"] == pl.Date
    assert df.schema["compact"] == pl.Datetime("us")
    assert df.schema["code"] == pl.String and df.schema["note"] == pl.String


def test_exact_lines_of_rejects_spread_over_several_files(ws, src, monkeypatch):
    from mlops_desktop.data import writer

    monkeypatch.setattr(writer._Rejects, "FLUSH_ROWS", 3)  # several reject files without a huge input
    body = "".join(f'{i},"note\nof {i}"\n' if i % 2 else f"x{i},one line\n" for i in range(10))
    path = src("w.csv", "id,note\n" + body)
    contract = contract_from_dict({"columns": {"id": {"type": "int64"}}}, "c")
    result = ingest(ws, [str(path)], "w", contract=contract)
    assert (result.rows_stored, result.rows_rejected) == (5, 5)
    files = lake.reject_files(ws, catalog.resolve(ws.db, "w"))
    rejects = pl.concat([pl.read_parquet(f) for f in files])
    # record i (0-based) starts on line 2 + i + (number of odd records before it, each one line longer)
    assert rejects["_source_line"].to_list() == [2 + i + i // 2 for i in range(0, 10, 2)]
    assert rejects["id"].to_list() == [f"x{i}" for i in range(0, 10, 2)]
