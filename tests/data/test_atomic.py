"""Atomicity: a killed, cancelled or conflicting ingestion leaves no partial version, and is cleaned up later."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from data_helpers import catalog_count, lake_versions

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.catalog import ConcurrentChangeError
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.sources import SourceOptions
from mlops_desktop.errors import Cancelled
from mlops_desktop.progress import Progress
from mlops_desktop.workspace import Workspace

ROWS = 600_000  # six SQLite batches: the child is killed after the first part is written


def make_sqlite(path: Path, rows: int = ROWS) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER, name TEXT, score REAL)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", ((i, f"n{i}", i / 3) for i in range(rows)))
    conn.commit()
    conn.close()
    return path


def staged_parts(home: Path) -> list[Path]:
    return list((home / "lake" / ".staging").glob("*/data/*.parquet"))


def test_killed_ingestion_leaves_nothing_and_is_swept(tmp_path):
    home = tmp_path / "ws"
    Workspace.open(home).close()
    source = make_sqlite(tmp_path / "big.sqlite")
    code = ("import sys\nfrom mlops_desktop.workspace import Workspace\nfrom mlops_desktop.data.ingest import ingest\n"
            "from mlops_desktop.data.sources import SourceOptions\n"
            f"ws = Workspace.open({str(home)!r})\n"
            f"ingest(ws, [{str(source)!r}], 'big', options=SourceOptions(table='t'))\n"
            "print('FINISHED')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not staged_parts(home) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the ingestion finished before it could be killed: " + proc.stdout.read().decode()
    assert staged_parts(home), "no part was written within 60 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()
    with Workspace.open(home) as ws:
        assert catalog_count(ws) == 0
        assert catalog.list_datasets(ws.db) == []
        assert lake_versions(ws) == []
        leftovers = list((home / "lake" / ".staging").iterdir())
        assert leftovers, "the killed process left its staging directory (swept on the next ingestion)"
        small = make_sqlite(tmp_path / "small.sqlite", 10)
        result = ingest(ws, [str(small)], "big", options=SourceOptions(table="t"))
        assert (result.version, result.rows_stored) == (1, 10)
        assert not any(p.exists() for p in leftovers)
        assert lake.open_dataset(ws, "big").height == 10


def test_uncommitted_version_dir_of_dead_process_is_swept(ws, src):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = ws.paths.lake / "x" / f"{dead.pid}-deadbeef0000"
    (orphan / "data").mkdir(parents=True)
    (orphan / "data" / "00000-junk.parquet").write_bytes(b"junk")
    ingest(ws, [str(src("a.csv", "a\n1\n"))], "x")
    assert not orphan.exists()
    assert [v.name for v in lake_versions(ws)] != [orphan.name]


def test_cancel_stores_nothing(ws, src):
    path = src("a.csv", "a,b\n" + "".join(f"{i},{i}\n" for i in range(50_000)))
    progress = Progress(lambda f, m: progress.cancel())
    with pytest.raises(Cancelled):
        ingest(ws, [str(path)], "c", progress=progress)
    assert catalog_count(ws) == 0 and lake_versions(ws) == []
    assert ingest(ws, [str(path)], "c").rows_stored == 50_000


def test_concurrent_append_conflict_is_refused(ws, src, tmp_path):
    ingest(ws, [str(src("1.csv", "a\n1\n"))], "d")
    other = Workspace.open(ws.root)
    fired = threading.Event()

    def meanwhile(fraction: float, message: str) -> None:
        if not fired.is_set():
            fired.set()
            ingest(other, [str(src("2.csv", "a\n2\n"))], "d")  # another writer makes d@2

    with pytest.raises(ConcurrentChangeError, match="got a new version while appending"):
        ingest(ws, [str(src("3.csv", "a\n3\n"))], "d", mode="append", progress=Progress(meanwhile))
    other.close()
    assert [v.version for v in catalog.list_versions(ws.db, "d")] == [1, 2]
    assert len(lake_versions(ws)) == 2
    assert lake.open_dataset(ws, "d")["a"].to_list() == [2]


def test_committed_versions_are_read_only_snapshots(ws, src):
    ingest(ws, [str(src("1.csv", "a\n1\n"))], "d")
    ingest(ws, [str(src("2.csv", "a\n2\n"))], "d", mode="append")
    ingest(ws, [str(src("3.csv", "a\n3\n"))], "d", mode="replace")
    assert lake.open_dataset(ws, "d@1")["a"].to_list() == [1]
    assert sorted(lake.open_dataset(ws, "d@2")["a"].to_list()) == [1, 2]
    assert lake.open_dataset(ws, "d@3")["a"].to_list() == [3]


def test_cancel_mid_pass_stops_the_query(ws, src):
    path = src("big.csv", "a,b,c\n" + "".join(f"{i},{i * 2},text {i}\n" for i in range(600_000)))
    seen: list[str] = []

    def on_progress(fraction: float, message: str) -> None:
        seen.append(message)
        if "rows" in message:  # the polars pass has started reporting rows
            progress.cancel()

    progress = Progress(on_progress)
    with pytest.raises(Cancelled):
        ingest(ws, [str(path)], "c", progress=progress)
    assert any("rows" in m for m in seen)
    assert not [t for t in threading.enumerate() if t.name == "mlops-ingest"]
    assert catalog_count(ws) == 0 and lake_versions(ws) == []
    assert not list((ws.paths.lake / ".staging").iterdir())


def test_concurrent_ingestions_from_several_processes(tmp_path):
    """Four processes write versions of one dataset at once: every version is whole, none is lost or shared."""
    home = tmp_path / "ws"
    Workspace.open(home).close()
    procs = []
    for i in range(4):
        data = tmp_path / f"p{i}.csv"
        data.write_text("writer,n\n" + "".join(f"{i},{j}\n" for j in range(20_000)))
        procs.append(subprocess.Popen([sys.executable, "-m", "mlops_desktop", "--home", str(home), "data",
                                       "ingest", str(data), "-d", "shared", "--json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    with Workspace.open(home) as ws:
        versions = catalog.list_versions(ws.db, "shared")
        assert sorted(v.version for v in versions) == [1, 2, 3, 4]
        writers = set()
        for v in versions:
            df = lake.open_dataset(ws, v.ref)
            assert df.height == 20_000 and df["writer"].n_unique() == 1
            writers.add(df["writer"][0])
        assert writers == {0, 1, 2, 3}
        assert len(lake_versions(ws)) == 4


def test_killed_typed_csv_ingestion_leaves_nothing(tmp_path):
    """The typed CSV path (with a contract, partitioned) killed mid-write: no version, and the next ingestion
    sweeps what it left."""
    import polars as pl

    home = tmp_path / "ws"
    Workspace.open(home).close()
    source = tmp_path / "big.csv"
    n = 3_000_000
    pl.DataFrame({"id": range(n), "region": [("north", "south", "east")[i % 3] for i in range(n)],
                  "amount": [i * 0.5 for i in range(n)]}).write_csv(source)
    contract = tmp_path / "c.toml"
    contract.write_text('[columns.id]\ntype = "int64"\n[columns.amount]\ntype = "float64"\nmin = 0\n')
    code = ("from mlops_desktop.workspace import Workspace\nfrom mlops_desktop.data.ingest import ingest\n"
            "from mlops_desktop.data.contract import load_contract_file\n"
            f"ws = Workspace.open({str(home)!r})\n"
            f"ingest(ws, [{str(source)!r}], 'big', contract=load_contract_file({str(contract)!r}),"
            " partition_by=['region'])\n"
            "print('FINISHED')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = home / "lake" / ".staging"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not list(staging.glob("*/*/*.parquet")):
        time.sleep(0.005)
    assert proc.poll() is None, "the ingestion finished before it could be killed: " + proc.stdout.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()
    with Workspace.open(home) as ws:
        assert catalog_count(ws) == 0 and lake_versions(ws) == []
        leftovers = list(staging.iterdir())
        assert leftovers
        small = tmp_path / "small.csv"
        small.write_text("id,region,amount\n1,north,2\n")
        assert ingest(ws, [str(small)], "big", partition_by=["region"]).rows_stored == 1
        assert not any(p.exists() for p in leftovers)
