"""A watched folder ingests each new or changed file once, appends, and sets bad files aside until they change."""

from __future__ import annotations

import os
import threading
import time

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.watch import watch, watch_round
from mlops_desktop.errors import Cancelled
from mlops_desktop.progress import Progress


def test_new_files_are_appended_once(ws, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.csv").write_text("id,v\n1,x\n2,y\n")
    (folder / "b.csv").write_text("id,v\n3,z\n")
    first = watch_round(ws, folder, "events", min_age_s=0)
    assert [r.version for r in first.ingested] == [1, 2] and first.failed == []
    assert watch_round(ws, folder, "events", min_age_s=0).ingested == []  # nothing new
    (folder / "c.csv").write_text("id,v\n4,w\n")
    third = watch_round(ws, folder, "events", min_age_s=0)
    assert [(r.version, r.rows_stored, r.row_count) for r in third.ingested] == [(3, 1, 4)]
    assert sorted(lake.open_dataset(ws, "events")["id"].to_list()) == [1, 2, 3, 4]
    assert catalog.resolve(ws.db, "events@3").mode == "append"


def test_changed_file_is_taken_again_and_fresh_files_wait(ws, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    path = folder / "a.csv"
    path.write_text("id\n1\n")
    assert watch_round(ws, folder, "e", min_age_s=60).ingested == []  # too fresh: may still be written
    old = time.time() - 120
    os.utime(path, (old, old))
    assert len(watch_round(ws, folder, "e", min_age_s=60).ingested) == 1
    path.write_text("id\n1\n2\n")
    os.utime(path, (old + 1, old + 1))
    again = watch_round(ws, folder, "e", min_age_s=60)
    assert [r.rows_stored for r in again.ingested] == [2]


def test_bad_file_is_reported_and_not_retried_until_it_changes(ws, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "good.csv").write_text("id\n1\n")
    (folder / "bad.csv").write_bytes(b"id\n1\n2\xff\n")  # not UTF-8: the file is refused
    failed: set = set()
    outcome = watch_round(ws, folder, "e", min_age_s=0, failed=failed)
    assert len(outcome.ingested) == 1
    assert len(outcome.failed) == 1 and "bad.csv: line 3" in outcome.failed[0][1]
    assert watch_round(ws, folder, "e", min_age_s=0, failed=failed).failed == []


def test_watch_loop_stops_on_cancel(ws, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.csv").write_text("id\n1\n")
    rounds = []
    progress = Progress()
    threading.Timer(0.5, progress.cancel).start()
    started = time.monotonic()
    try:
        watch(ws, folder, "e", interval_s=0.1, min_age_s=0, on_round=rounds.append, progress=progress)
    except Cancelled:
        pass
    assert time.monotonic() - started < 5
    assert len(rounds) == 1 and rounds[0].ingested[0].rows_stored == 1
