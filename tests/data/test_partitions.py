"""Partitioned versions: one folder per key value, every row kept, appends keep the layout, limits enforced."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from data_helpers import catalog_count, lake_versions

from mlops_desktop.cli.main import main
from mlops_desktop.data import catalog, lake
from mlops_desktop.data.contract import contract_from_dict
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.writer import MAX_PARTITIONS, Writer, partition_segment
from mlops_desktop.errors import UsageError

CONTRACT = contract_from_dict({"columns": {"id": {"type": "int64"}, "amount": {"type": "float64", "min": 0}}},
                              "partitions")


def _folders(ws, name: str) -> list[str]:
    version = catalog.resolve(ws.db, name)
    root = lake.version_dir(ws, version) / "data"
    return sorted(p.relative_to(root).parent.as_posix() for p in lake.data_files(ws, version))


def _csv(src, rows: int = 300) -> Path:
    regions = ["north", "south", "east/west", ""]
    body = "".join(f"{i},{regions[i % 4]},{-1 if i % 50 == 0 else i * 0.5}\n" for i in range(1, rows + 1))
    return src("sales.csv", "id,region,amount\n" + body)


@pytest.mark.parametrize(("typed", "keys_per_pass"), [(True, 32), (False, 32), (True, 1)])
def test_partitioned_version_keeps_every_row_in_one_folder_per_value(ws, src, monkeypatch, typed, keys_per_pass):
    from mlops_desktop.data import writer

    monkeypatch.setattr(writer._Output, "SPLIT_KEYS", keys_per_pass)  # 1: a pass per key, null key included
    if not typed:
        monkeypatch.setattr(Writer, "_native_types", lambda self, piece: {})
    path = _csv(src)
    result = ingest(ws, [str(path)], "sales", contract=CONTRACT, partition_by=["region"])
    flat = ingest(ws, [str(path)], "flat", contract=CONTRACT)
    assert (result.rows_stored, result.rows_rejected) == (flat.rows_stored, flat.rows_rejected) == (294, 6)
    # the empty region is its own value (read as null by the CSV reader), "/" is escaped
    assert _folders(ws, "sales") == ["region=__null__", "region=east%2Fwest", "region=north", "region=south"]
    stored = lake.scan(ws, catalog.resolve(ws.db, "sales")).collect().sort("id")
    assert stored.equals(lake.scan(ws, catalog.resolve(ws.db, "flat")).collect().sort("id"))
    version = catalog.resolve(ws.db, "sales")
    assert version.source["partition_by"] == ["region"] and version.row_count == 294
    # each file holds one key and reads on its own (the key column is in the file)
    for file in lake.data_files(ws, version):
        part = pl.read_parquet(file)
        assert part["region"].n_unique() == 1
        assert part["id"].is_sorted()  # rows keep the file's order within a partition
    per_region = (lake.scan(ws, version).filter(pl.col("region") == "north").select(pl.len()).collect().item())
    assert per_region == stored.filter(pl.col("region") == "north").height


def test_partition_folder_names_are_one_to_one(ws, src):
    values = ["a/b", "a%2Fb", "__null__", "x~y", "long" * 60, "long" * 60 + "!", "..", "=", "ünï", " "]
    assert len({partition_segment(v) for v in values} | {partition_segment(None)}) == len(values) + 1
    assert all("/" not in partition_segment(v) and len(partition_segment(v)) <= 120 for v in values)
    body = "".join(f'{i},"{v}"\n' for i, v in enumerate(values * 3))
    path = src("odd.csv", "id,key\n" + body)
    result = ingest(ws, [str(path)], "odd", partition_by=["key"])
    assert result.rows_stored == len(values) * 3
    stored = lake.scan(ws, catalog.resolve(ws.db, "odd")).collect()
    assert sorted(stored["key"].to_list()) == sorted(values * 3)  # nothing overwritten by a name collision


def test_append_keeps_the_partitioning_and_refuses_another(ws, src):
    path = _csv(src, 40)
    ingest(ws, [str(path)], "sales", partition_by=["region"])
    more = src("more.csv", "id,region,amount\n1000,north,5\n1001,mars,6\n")
    result = ingest(ws, [str(more)], "sales", mode="append")
    assert result.row_count == 42
    assert "region=mars" in _folders(ws, "sales")
    assert catalog.resolve(ws.db, "sales").source["partition_by"] == ["region"]
    with pytest.raises(UsageError, match="partitioned by region, the new rows would be partitioned by id"):
        ingest(ws, [str(more)], "sales", mode="append", partition_by=["id"])
    with pytest.raises(UsageError, match="not partitioned"):
        ingest(ws, [str(more)], "sales", mode="append", partition_by=[])


def test_too_many_partitions_stops_early_and_stores_nothing(ws, src):
    path = src("ids.csv", "id,v\n" + "".join(f"{i},{i}\n" for i in range(MAX_PARTITIONS + 50)))
    before = catalog_count(ws)
    with pytest.raises(UsageError, match=f"more than {MAX_PARTITIONS:,} partitions"):
        ingest(ws, [str(path)], "ids", partition_by=["id"])
    assert catalog_count(ws) == before and not lake_versions(ws)
    assert not any((ws.paths.lake / ".staging").iterdir())


def test_partition_column_must_exist_and_be_a_key_type(ws, src):
    path = _csv(src, 10)
    with pytest.raises(UsageError, match="cannot partition by 'nope': no such column"):
        ingest(ws, [str(path)], "s", partition_by=["nope"])
    with pytest.raises(UsageError, match="cannot partition by 'amount': it is float64"):
        ingest(ws, [str(path)], "s", contract=CONTRACT, partition_by=["amount"])
    assert catalog.latest(ws.db, "s") is None


def test_cli_partition_by_and_project_setting(tmp_path, capsys, monkeypatch):
    home = str(tmp_path / "ws")
    data = tmp_path / "t.csv"
    data.write_text("day,city,n\n2024-01-01,Oslo,1\n2024-01-01,Rome,2\n2024-01-02,Oslo,3\n")
    assert main(["--home", home, "data", "ingest", str(data), "-d", "t", "--partition-by", "day,city",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_stored"] == 3
    assert main(["--home", home, "data", "show", "t", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"]["partition_by"] == ["day", "city"]
    assert main(["--home", home, "data", "show", "t"]) == 0
    assert "partitioned by  day, city" in capsys.readouterr().out
    # a project can say it once for a dataset ([datasets.NAME] partition_by)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "mlops.toml").write_text('[datasets.u]\npartition_by = "city"\n')
    monkeypatch.chdir(proj)
    assert main(["--home", home, "data", "ingest", str(data), "-d", "u", "--json"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "data", "show", "u", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"]["partition_by"] == ["city"]
