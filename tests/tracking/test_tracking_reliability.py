"""Nothing is lost: concurrent writers, killed writers, corrupt files, read-only and full disks, schema versions."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from tracking_helpers import run_python

from mlops_desktop.errors import SchemaTooNewError, StoreCorruptError, StoreReadOnlyError
from mlops_desktop.schema import MIGRATIONS
from mlops_desktop.store.migrations import migrate, schema_snapshot
from mlops_desktop.workspace import Workspace

WRITER = """
import sys, mlops_desktop.tracking as mt
idx = int(sys.argv[1])
with mt.start_run(experiment='concurrent', name=f'writer-{idx}', flush_interval=0.02) as run:
    for i in range(100_000):
        mt.log_metric('x', float(i * 10 + idx), step=i)
        if i % 20_000 == 0:
            mt.log_metric('phase', float(i))
    print(run.uuid)
"""


@pytest.mark.slow
def test_eight_processes_log_100k_points_each_into_one_workspace(tmp_path):
    home = tmp_path / "ws"
    Workspace.open(home).close()
    env = dict(os.environ, MLOPS_DESKTOP_HOME=str(home))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err.lower() and "retry" not in err.lower(), err
    ws = Workspace.open(home)
    for i, (out, _) in enumerate(outs):
        hist = ws.tracking.metric_history(out.strip(), "x")
        assert len(hist) == 100_000
        np.testing.assert_array_equal(hist.steps, np.arange(100_000))
        np.testing.assert_array_equal(hist.values, np.arange(100_000) * 10.0 + i)
        assert ws.tracking.get_run(out.strip()).status == "finished"
    ws.close()


def test_sigkill_after_flush_keeps_flushed_points_and_run_becomes_lost(tmp_path):
    home = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-c", f"""
import time, mlops_desktop.tracking as mt
run = mt.start_run(experiment='exp', home={str(home)!r})
for i in range(5000):
    mt.log_metric('x', float(i), step=i)
mt.flush()
print(run.uuid, flush=True)
for i in range(5000, 10**9):
    mt.log_metric('x', float(i), step=i)
"""], stdout=subprocess.PIPE, text=True)
    run_uuid = proc.stdout.readline().strip()
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    ws = Workspace.open(home)
    assert ws.db.query("PRAGMA integrity_check")[0][0] == "ok"
    hist = ws.tracking.metric_history(run_uuid, "x")
    assert len(hist) >= 5000
    np.testing.assert_array_equal(hist.values[:5000], np.arange(5000.0))
    np.testing.assert_array_equal(hist.steps, np.arange(len(hist)))  # no gap, no duplicate
    assert ws.tracking.reap_lost_runs() == [run_uuid]
    assert ws.tracking.get_run(run_uuid).status == "lost"
    ws.close()


def test_corrupt_database_is_refused_in_words(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / "mlops.db").write_bytes(b"this is not a database, just text" * 200)
    with pytest.raises(StoreCorruptError, match="damaged or not a SQLite database"):
        Workspace.open(home)
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(home), "runs", "list"],
                          capture_output=True, text=True)
    assert proc.returncode == 4
    assert "damaged or not a SQLite database" in proc.stderr and "Traceback" not in proc.stderr


def test_truncated_database_page_damage_is_reported(tmp_path):
    home = tmp_path / "ws"
    ws = Workspace.open(home)
    exp = ws.tracking.get_or_create_experiment("e")
    for i in range(200):
        ws.tracking.create_run(exp.id, name=f"r{i}", params={f"p{j}": j for j in range(20)})
    ws.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = ws.db.query("SELECT rootpage FROM sqlite_master WHERE name = 'params'")[0][0]
    page_size = ws.db.query("PRAGMA page_size")[0][0]
    ws.close()
    db = home / "mlops.db"
    data = bytearray(db.read_bytes())
    start = (root - 1) * page_size
    data[start:start + page_size] = b"\xff" * page_size  # scribble over the params table's root page
    db.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(home), "runs", "list",
                           "--limit", "500"], capture_output=True, text=True)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr and "damaged" in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions; covered by the read-only mount test")
def test_read_only_workspace_permissions(tmp_path):  # pragma: no cover - CI runs as root
    home = tmp_path / "ws"
    Workspace.open(home).close()
    os.chmod(home, 0o555)
    try:
        with pytest.raises(StoreReadOnlyError):
            Workspace.open(home)
    finally:
        os.chmod(home, 0o755)


@pytest.fixture
def tmpfs(tmp_path):
    """A real, small tmpfs mount (root only): for read-only and full-disk cases that root cannot fake with chmod."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {proc.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_workspace_on_a_read_only_mount(tmpfs):
    home = tmpfs / "ws"
    ws = Workspace.open(home)
    exp = ws.tracking.get_or_create_experiment("e")
    run = ws.tracking.create_run(exp.id, params={"lr": 0.1})
    ws.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.close()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    with pytest.raises(StoreReadOnlyError, match="not writable|read-only"):
        Workspace.open(home)
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(home), "runs", "list"],
                          capture_output=True, text=True)
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    ws = Workspace.open(home)
    assert ws.tracking.get_run(run.uuid).params == {"lr": "0.1"}
    ws.close()


def test_full_tmpfs_is_reported_and_keeps_what_was_stored(tmpfs):
    home = tmpfs / "ws"
    proc = run_python("""
import os, numpy as np
import mlops_desktop.tracking as mt
from mlops_desktop.errors import StoreError
run = mt.start_run(experiment='exp', flush_interval=3600)
mt.log_metric('x', 1.0, step=0)
mt.flush()
print(run.uuid, flush=True)
try:
    for block in range(100):  # far more than the 16 MB disk holds
        for i in range(100_000):
            mt.log_metric('x', float(i), step=1 + block * 100_000 + i)
        mt.flush()
except StoreError as exc:
    print('ERROR', type(exc).__name__, exc, flush=True)
    os._exit(0)
print('NO ERROR')
""", home, check=False, timeout=300)
    assert any(line.startswith("ERROR StoreFullError") for line in proc.stdout.splitlines()), \
        proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    run_uuid = proc.stdout.splitlines()[0]
    ws = Workspace.open(home)
    assert ws.db.query("PRAGMA integrity_check")[0][0] == "ok"
    hist = ws.tracking.metric_history(run_uuid, "x")
    assert hist.values[0] == 1.0 and hist.steps[0] == 0
    ws.close()


def test_read_only_database_file_gives_a_clear_error_and_keeps_data(tmp_path):
    home = tmp_path / "ws"
    ws = Workspace.open(home)
    exp = ws.tracking.get_or_create_experiment("e")
    run = ws.tracking.create_run(exp.id)
    ws.close()
    # a read-only view of the workspace (as on a read-only mount): writes must fail in words
    ro = Workspace.open(home, readonly=True)
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        ro.tracking.set_tags(run.uuid, {"a": "b"})
    assert ro.tracking.get_run(run.uuid).uuid == run.uuid
    ro.close()


def test_disk_full_is_reported_and_stored_points_survive(tmp_path):
    home = tmp_path / "ws"
    proc = run_python("""
import resource, signal, os, sys
import mlops_desktop.tracking as mt
from mlops_desktop.errors import StoreError
run = mt.start_run(experiment='exp', flush_interval=3600)
for i in range(20_000):
    mt.log_metric('x', float(i), step=i)
mt.flush()
print(run.uuid, flush=True)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
home = os.environ['MLOPS_DESKTOP_HOME']
size = sum(os.path.getsize(os.path.join(home, f)) for f in os.listdir(home) if f.startswith('mlops.db'))
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64_000, size + 64_000))  # a nearly full disk
for i in range(20_000, 2_000_000):
    mt.log_metric('x', float(i), step=i)
try:
    mt.flush()
except StoreError as exc:
    print('ERROR', type(exc).__name__, exc, flush=True)
    os._exit(0)
print('NO ERROR')
""", home, check=False, timeout=180)
    lines = proc.stdout.splitlines()
    assert any(line.startswith("ERROR StoreFullError") for line in lines), proc.stdout + proc.stderr
    assert "NO ERROR" not in proc.stdout
    assert "Traceback" not in proc.stderr
    ws = Workspace.open(home)
    assert ws.db.query("PRAGMA integrity_check")[0][0] == "ok"
    hist = ws.tracking.metric_history(lines[0], "x")
    np.testing.assert_array_equal(hist.values[:20_000], np.arange(20_000.0))
    ws.close()


def test_fresh_schema_equals_one_migrated_step_by_step(tmp_path):
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    migrate(fresh, "fresh", MIGRATIONS)
    stepwise = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for n in range(1, len(MIGRATIONS) + 1):  # as if each release had opened it in turn
        migrate(stepwise, "old", MIGRATIONS[:n])
    assert schema_snapshot(fresh) == schema_snapshot(stepwise)
    assert [r[0] for r in stepwise.execute("SELECT name FROM schema_migrations ORDER BY id")] == \
        [m.name for m in MIGRATIONS]


def test_schema_matches_the_committed_snapshot(tmp_path):
    """An accidental schema change (edited migration) shows up here; a new migration updates the snapshot."""
    from pathlib import Path

    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    migrate(conn, "s", MIGRATIONS)
    snapshot = "\n".join(f"{t} {n}: {s}" for t, n, s in schema_snapshot(conn)) + "\n"
    path = Path(__file__).with_name("schema.snapshot.txt")
    if os.environ.get("MLOPS_UPDATE_SCHEMA_SNAPSHOT"):
        path.write_text(snapshot)
    assert path.read_text() == snapshot, "schema changed: set MLOPS_UPDATE_SCHEMA_SNAPSHOT=1 if intended"


def test_database_from_a_newer_version_is_refused(tmp_path):
    home = tmp_path / "ws"
    ws = Workspace.open(home)
    ws.db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    ws.db.execute("INSERT INTO schema_migrations(id, name, applied_at) VALUES (?, '9999_future', 0)",
                  (len(MIGRATIONS) + 1,))
    ws.close()
    with pytest.raises(SchemaTooNewError, match="newer version of MLOps Desktop.*9999_future"):
        Workspace.open(home)
    with pytest.raises(SchemaTooNewError):
        Workspace.open(home, readonly=True)
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(home), "workspace", "info"],
                          capture_output=True, text=True)
    assert proc.returncode == 5 and "newer version" in proc.stderr and "Traceback" not in proc.stderr


def test_migrations_are_matched_by_name_not_position(tmp_path):
    """A capability that shipped later (its migration listed earlier) is still applied to an existing database."""
    from mlops_desktop.store.migrations import Migration

    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    first, later = Migration("0001_a", "CREATE TABLE a(x);"), Migration("0003_c", "CREATE TABLE c(x);")
    migrate(conn, "m", [first, later])
    inserted = Migration("0002_b", "CREATE TABLE b(x);")
    assert migrate(conn, "m", [first, inserted, later]) == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('a', 'b', 'c')").fetchone()[0] == 3
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert migrate(conn, "m", [first, inserted, later]) == 0
    with pytest.raises(SchemaTooNewError, match="0002_b"):
        migrate(conn, "m", [first, later])


def test_failed_migration_rolls_back_completely(tmp_path):
    from mlops_desktop.store.migrations import Migration

    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    bad = MIGRATIONS + [Migration("9000_broken", "CREATE TABLE ok_table(x);\nCREATE TABLE broken(;")]
    migrate(conn, "m", MIGRATIONS)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, "m", bad)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ok_table'").fetchone()[0] == 0
