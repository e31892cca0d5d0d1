"""The prediction log's router columns in the lake: segments written before the `shadow` column existed and after
it, in one log folder (a container restarted on a newer image), are committed one schema at a time, and both stay
readable with SQL."""

from __future__ import annotations

import polars as pl

from mlops_desktop.serving.lakesink import LakeCommitter


def test_old_and_new_segments_in_one_folder_are_committed_per_schema(ws, tmp_path):
    from mlops_desktop.data import catalog, lake, query

    folder = tmp_path / "m-v1"
    folder.mkdir()
    new = {"request_id": ["a", "b"], "arm": ["v1", "v2"], "shadow": [False, True], "x": [1.0, 2.0]}
    pl.DataFrame({k: v for k, v in new.items() if k != "shadow"}).write_parquet(folder / "0000000001.parquet")
    pl.DataFrame(new).write_parquet(folder / "0000000002.parquet")
    pl.DataFrame(new).write_parquet(folder / "0000000003.parquet")
    LakeCommitter(ws, folder, "predictions_m").commit_pending()
    names = sorted(d.name for d in catalog.list_datasets(ws.db))
    assert names[0] == "predictions_m" and names[1].startswith("predictions_m_") and len(names) == 2
    old = catalog.resolve(ws.db, "predictions_m")
    assert old.row_count == 2 and "shadow" not in old.schema
    assert lake.scan(ws, old).collect()["arm"].to_list() == ["v1", "v2"]
    newer = catalog.resolve(ws.db, names[1])
    assert newer.row_count == 4 and newer.schema["shadow"]
    page = query.query(ws, f"SELECT arm, count(*) AS n FROM {names[1]} WHERE NOT shadow GROUP BY arm")
    assert page.rows == [("v1", 2)]
    assert LakeCommitter(ws, folder, "predictions_m").commit_pending() is None  # nothing committed twice
