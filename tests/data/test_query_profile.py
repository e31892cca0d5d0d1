"""SQL over the lake (latest and pinned versions, paging, export) and cached column profiles."""

from __future__ import annotations

import polars as pl
import pytest

from mlops_desktop.data import catalog
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.profile import profile
from mlops_desktop.data.query import export, query
from mlops_desktop.errors import MlopsError, NotFoundError


@pytest.fixture
def lake_with_data(ws, src):
    ingest(ws, [str(src("a.csv", "id,v,k\n" + "".join(f"{i},{i * 1.5},{'ab'[i % 2]}\n" for i in range(1, 251))))], "a")
    ingest(ws, [str(src("a2.csv", "id,v,k\n1,100.0,a\n"))], "a")
    ingest(ws, [str(src("b.csv", "k,label\na,alpha\nb,beta\n"))], "b")
    return ws


def test_latest_version_pinned_version_and_join(lake_with_data):
    ws = lake_with_data
    assert query(ws, "SELECT count(*) AS n FROM a").rows == [(1,)]
    assert query(ws, "SELECT count(*) AS n FROM a@1").rows == [(250,)]
    page = query(ws, "SELECT b.label, count(*) AS n FROM a@1 AS x JOIN b ON x.k = b.k GROUP BY b.label "
                     "ORDER BY b.label")
    assert page.rows == [("alpha", 125), ("beta", 125)]
    assert page.tables == {"a__v1": "a@1", "b": "b@1"}


def test_paging(lake_with_data):
    ws = lake_with_data
    first = query(ws, "SELECT id FROM a@1 ORDER BY id", limit=100, offset=0)
    third = query(ws, "SELECT id FROM a@1 ORDER BY id", limit=100, offset=200)
    assert first.total == third.total == 250
    assert [r[0] for r in first.rows] == list(range(1, 101))
    assert [r[0] for r in third.rows] == list(range(201, 251))


def test_errors_are_plain(lake_with_data):
    ws = lake_with_data
    with pytest.raises(MlopsError, match="query failed: .*nope"):
        query(ws, "SELECT nope FROM a")
    with pytest.raises(NotFoundError, match="dataset a has no version 9; versions: 1, 2"):
        query(ws, "SELECT * FROM a@9")
    with pytest.raises(MlopsError, match="query failed"):
        query(ws, "SELEKT * FROM a")


def test_export_csv_and_parquet(lake_with_data, tmp_path):
    ws = lake_with_data
    out = export(ws, "SELECT id, v FROM a@1 WHERE k = 'a'", tmp_path / "out.parquet")
    assert out["rows"] == 125 and pl.read_parquet(tmp_path / "out.parquet").columns == ["id", "v"]
    out = export(ws, "SELECT id FROM a@1", tmp_path / "out.csv")
    assert pl.read_csv(tmp_path / "out.csv")["id"].to_list() == list(range(1, 251))
    with pytest.raises(MlopsError, match=r"use a .csv or .parquet"):
        export(ws, "SELECT 1", tmp_path / "out.xlsx")


def test_profile_is_exact_and_cached(lake_with_data):
    ws = lake_with_data
    p = profile(ws, "a@1")
    assert p["cached"] is False and p["rows"] == 250
    cols = {c["name"]: c for c in p["columns"]}
    assert cols["id"]["min"] == 1 and cols["id"]["max"] == 250 and cols["id"]["distinct"] == 250
    assert cols["id"]["mean"] == pytest.approx(125.5)
    assert sum(cols["v"]["histogram"]["counts"]) == 250 and len(cols["v"]["histogram"]["edges"]) == 21
    assert cols["k"]["top"] == [["a", 125], ["b", 125]] and cols["k"]["nulls"] == 0
    again = profile(ws, "a@1")
    assert again["cached"] is True and again["columns"] == p["columns"]
    version_id = catalog.resolve(ws.db, "a@1").id
    assert ws.db.query("SELECT count(*) FROM dataset_profiles WHERE version_id = ?", (version_id,))[0][0] == 1
    assert profile(ws, "a")["rows"] == 1  # latest is another version, profiled on its own


def test_profile_of_nulls_and_constant_column(ws, src):
    ingest(ws, [str(src("n.csv", "x,y\n1,\n1,\n1,\n"))], "n")
    cols = {c["name"]: c for c in profile(ws, "n")["columns"]}
    assert cols["x"]["histogram"]["counts"][0] == 3 and cols["x"]["std"] == 0
    assert cols["y"]["nulls"] == 3 and cols["y"]["null_fraction"] == 1.0


@pytest.mark.parametrize("sql,refs", [
    ("SELECT zone, count(*) AS trips FROM trip_features GROUP BY zone", ["trip_features"]),
    ("select * from a@1 as x join b on x.k = b.k where x.v > 1", ["a@1", "b"]),
    ("SELECT * FROM a, b AS bb, c WHERE a.k = bb.k", ["a", "b", "c"]),
    ("SELECT 'from z' AS s FROM q -- from e", ["q"]),
    ("SELECT * FROM (SELECT * FROM inner_t) s", ["inner_t"]),
])
def test_table_refs_only_name_tables(sql, refs):
    from mlops_desktop.data.query import table_refs

    assert table_refs(sql) == refs
