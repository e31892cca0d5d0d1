"""Tracking benchmark: MLOps Desktop vs MLflow (SQLite backend) vs raw sqlite3, side by side in one run.

    python benchmarks/tracking.py            # full sizes
    python benchmarks/tracking.py --quick    # < 3 minutes on 2 cores

Prints a line per figure and, last, one JSON object with every figure (ours, mlflow_*, raw_sqlite_*).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlops_desktop.tracking as mt  # noqa: E402
from mlops_desktop.workspace import Workspace  # noqa: E402


def say(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name:<34} {value:>14,.2f} {unit:<10} {note}", flush=True)


def db_bytes(root: Path, name: str) -> int:
    return sum(p.stat().st_size for p in root.glob(name + "*") if p.is_file())


# ------------------------------------------------------------------------------------------------ ours
def ours_log_call(home: Path, calls: int) -> tuple[float, float]:
    """Median per-call cost on the caller's thread, and sustained end-to-end points/s (log + flush)."""
    batches = []
    with mt.start_run(experiment="bench", name="log-call", home=home, capture_git=False) as run:
        t_all = time.perf_counter()
        chunk = calls // 10
        for b in range(10):
            t = time.perf_counter()
            for i in range(b * chunk, (b + 1) * chunk):
                mt.log_metric("loss", i * 0.001, step=i)
            batches.append((time.perf_counter() - t) / chunk)
        run.flush()
        total_s = time.perf_counter() - t_all
    return statistics.median(batches) * 1e6, calls / total_s


def ours_fluent_calls(home: Path, calls: int) -> dict[str, float]:
    """Per-call cost of the MLflow-named fluent calls besides log_metric, on the caller's thread (µs)."""
    out: dict[str, float] = {}
    mt.set_tracking_uri(str(home))
    with mt.start_run(experiment="bench", run_name="fluent", capture_git=False) as run:
        ts = int(time.time() * 1000)
        t = time.perf_counter()
        for i in range(calls):
            mt.log_metric("loss_ts", i * 0.001, step=i, timestamp=ts + i)
        out["log_metric_with_timestamp_us"] = (time.perf_counter() - t) / calls * 1e6
        t = time.perf_counter()
        for _ in range(calls):
            mt.active_run().info.run_id  # noqa: B018 - the access is what is timed
        out["active_run_info_us"] = (time.perf_counter() - t) / calls * 1e6
        n = min(calls, 500)
        t = time.perf_counter()
        for i in range(n):
            mt.log_param(f"p{i}", i)
        out["log_param_us"] = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        for i in range(n):
            mt.set_tag(f"t{i}", i)
        out["set_tag_us"] = (time.perf_counter() - t) / n * 1e6
        run.flush()
    return out


def mlflow_fluent_calls(uri: str, calls: int, prefix: str) -> dict[str, float]:
    """The same fluent calls through the mlflow package, into ``uri`` (its SQLite store, or our plugin)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(f"fluent-{prefix}")
    out: dict[str, float] = {}
    with mlflow.start_run():
        for i in range(3):  # warm up
            mlflow.log_metric("warm", 0.1, step=i)
        t = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("loss", i * 0.001, step=i)
        out[f"{prefix}_log_metric_us"] = (time.perf_counter() - t) / calls * 1e6
        t = time.perf_counter()
        for i in range(calls):
            mlflow.log_param(f"p{i}", i)
        out[f"{prefix}_log_param_us"] = (time.perf_counter() - t) / calls * 1e6
        t = time.perf_counter()
        for i in range(calls):
            mlflow.set_tag(f"t{i}", i)
        out[f"{prefix}_set_tag_us"] = (time.perf_counter() - t) / calls * 1e6
    return out


def ours_bulk_write(ws: Workspace, points: int) -> tuple[str, float]:
    store = ws.tracking
    exp = store.get_or_create_experiment("bench")
    run = store.create_run(exp.id, name="bulk")
    rng = np.random.default_rng(0)
    batch = 100_000
    t = time.perf_counter()
    for start in range(0, points, batch):
        steps = np.arange(start, start + batch, dtype=np.int64)
        ts = 1_700_000_000_000 + steps // 100
        store.log_metric_arrays(run.uuid, "loss", steps, ts, rng.random(batch))
    return run.uuid, points / (time.perf_counter() - t)


def ours_read(ws: Workspace, run_uuid: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        hist = ws.tracking.metric_history(run_uuid, "loss")
        times.append(time.perf_counter() - t)
        assert len(hist) > 0
    return statistics.median(times) * 1000


def fill_runs_ours(ws: Workspace, n: int) -> None:
    """100k runs with 3 params and 2 metric summaries each, bulk-inserted in our schema (fixture, not timed)."""
    rng = np.random.default_rng(1)
    now = time.time()
    with ws.db.transaction() as conn:
        exp_id = ws.tracking.get_or_create_experiment("search").id
        conn.executemany("INSERT INTO runs(uuid, experiment_id, name, status, start_time, end_time) "
                         "VALUES (?,?,?,?,?,?)",
                         [(uuid.uuid4().hex, exp_id, f"run-{i}", "finished", now - i, now - i + 60)
                          for i in range(n)])
        ids = [r[0] for r in conn.execute("SELECT id FROM runs WHERE experiment_id = ? ORDER BY id", (exp_id,))]
        lrs = 10.0 ** -rng.integers(1, 6, n)
        conn.executemany("INSERT INTO params(run_id, key, value, value_num) VALUES (?,?,?,?)",
                         [(rid, "lr", repr(lr), lr) for rid, lr in zip(ids, lrs, strict=True)])
        conn.executemany("INSERT INTO params(run_id, key, value, value_num) VALUES (?,?,?,NULL)",
                         [(rid, "optimizer", ["adam", "sgd", "adamw"][i % 3]) for i, rid in enumerate(ids)])
        conn.executemany("INSERT INTO params(run_id, key, value, value_num) VALUES (?,?,?,?)",
                         [(rid, "batch", str(32 << (i % 4)), 32 << (i % 4)) for i, rid in enumerate(ids)])
        for key in ("acc", "loss"):
            conn.execute("INSERT OR IGNORE INTO metric_keys(name) VALUES (?)", (key,))
            key_id = conn.execute("SELECT id FROM metric_keys WHERE name = ?", (key,)).fetchone()[0]
            vals = rng.random(n)
            conn.executemany("INSERT INTO metric_series(run_id, key_id, count, last_value, last_step, last_ts, "
                             "min_value, max_value) VALUES (?,?,?,?,?,?,?,?)",
                             [(rid, key_id, 10, float(v), 9, 0, float(v) / 2, float(v)) for rid, v in
                              zip(ids, vals, strict=True)])
    ws.db.execute("ANALYZE")


# The same query for both (MLflow cannot compare params with '<'; ours can: params.lr < 0.001 works too).
SEARCH_FILTER = "params.optimizer = 'adam' and metrics.acc > 0.9"
MLFLOW_FILTER = SEARCH_FILTER


def ours_search(ws: Workspace, repeats: int = 5) -> tuple[float, int]:
    times, total = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        page = ws.tracking.search_runs(filter_string=SEARCH_FILTER, order_by=["metrics.acc DESC"], limit=100)
        times.append(time.perf_counter() - t)
        total = page.total
    return statistics.median(times) * 1000, total


# ------------------------------------------------------------------------------------------------ raw sqlite3
def raw_sqlite(root: Path, points: int) -> dict[str, float]:
    path = root / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE metrics(run_uuid TEXT, key TEXT, step INTEGER, timestamp INTEGER, value REAL, "
                 "PRIMARY KEY (run_uuid, key, step, timestamp))")
    run = uuid.uuid4().hex
    rng = np.random.default_rng(0)
    vals = rng.random(points).tolist()
    rows = [(run, "loss", i, 1_700_000_000_000 + i // 100, vals[i]) for i in range(points)]
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)", rows)
    conn.execute("COMMIT")
    write = points / (time.perf_counter() - t)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db_bytes(root, "raw.db")
    t = time.perf_counter()
    got = conn.execute("SELECT step, timestamp, value FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY step",
                       (run, "loss")).fetchall()
    np.array(got)
    read_ms = (time.perf_counter() - t) * 1000
    conn.close()
    return {"raw_sqlite_write_points_per_s": write, "raw_sqlite_read_1m_points_ms": read_ms * 1_000_000 / points,
            "raw_sqlite_bytes_per_point": size / points}


# ------------------------------------------------------------------------------------------------ mlflow
def run_mlflow(root: Path, calls: int, batch_points: int, read_points: int, search_runs: int) -> dict[str, float]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp_id = client.create_experiment("bench")
    out: dict[str, float] = {}
    run = client.create_run(exp_id)
    rid = run.info.run_id
    for i in range(5):  # warm up
        client.log_metric(rid, "warm", 0.1, step=i)
    t = time.perf_counter()
    for i in range(calls):
        client.log_metric(rid, "loss", i * 0.001, step=i)
    out["mlflow_log_call_us"] = (time.perf_counter() - t) / calls * 1e6
    before = db_bytes(root, "mlflow.db")
    ts = int(time.time() * 1000)
    run2 = client.create_run(exp_id).info.run_id
    t = time.perf_counter()
    for start in range(0, batch_points, 1000):  # log_batch takes at most 1000 metrics per call
        client.log_batch(run2, metrics=[Metric("loss", float(i) * 0.5, ts, i) for i in range(start, start + 1000)])
    out["mlflow_write_points_per_s"] = batch_points / (time.perf_counter() - t)
    conn = sqlite3.connect(root / "mlflow.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    out["mlflow_bytes_per_point"] = (db_bytes(root, "mlflow.db") - before) / batch_points
    t = time.perf_counter()
    hist = client.get_metric_history(run2, "loss")
    read_ms = (time.perf_counter() - t) * 1000
    assert len(hist) == batch_points
    out["mlflow_read_points"] = float(batch_points)
    out["mlflow_read_ms"] = read_ms
    out["mlflow_read_1m_points_ms"] = read_ms * 1_000_000 / batch_points  # linear extrapolation, noted
    out.update(mlflow_search(root, client, search_runs))
    return out


def mlflow_search(root: Path, client, n: int) -> dict[str, float]:  # noqa: ANN001
    """Bulk-insert n runs into MLflow's own tables (its API would take hours), then time its search_runs."""
    exp_id = client.create_experiment("search")
    conn = sqlite3.connect(root / "mlflow.db", isolation_level=None)
    rng = np.random.default_rng(1)
    now = int(time.time() * 1000)
    ids = [uuid.uuid4().hex for _ in range(n)]
    lrs = 10.0 ** -rng.integers(1, 6, n)
    accs = rng.random(n)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO runs(run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                     "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                     "VALUES (?,?,'LOCAL','','', 'bench','FINISHED',?,?,'','active','',?)",
                     [(u, f"run-{i}", now - i, now - i + 60_000, int(exp_id)) for i, u in enumerate(ids)])
    conn.executemany("INSERT INTO params(key, value, run_uuid) VALUES ('lr', ?, ?)",
                     [(repr(lr), u) for u, lr in zip(ids, lrs, strict=True)])
    conn.executemany("INSERT INTO params(key, value, run_uuid) VALUES ('optimizer', ?, ?)",
                     [(["adam", "sgd", "adamw"][i % 3], u) for i, u in enumerate(ids)])
    conn.executemany("INSERT INTO latest_metrics(key, value, timestamp, step, is_nan, run_uuid) "
                     "VALUES ('acc', ?, 0, 9, 0, ?)", [(float(a), u) for u, a in zip(ids, accs, strict=True)])
    conn.execute("COMMIT")
    conn.close()
    times = []
    total = 0
    for _ in range(3):
        t = time.perf_counter()
        page = client.search_runs([exp_id], MLFLOW_FILTER, order_by=["metrics.acc DESC"], max_results=100)
        times.append(time.perf_counter() - t)
        total = len(page)
    assert total == 100, total
    return {"mlflow_search_100k_runs_ms": statistics.median(times) * 1000, "mlflow_search_runs": float(n),
            "mlflow_search_page": float(total)}


# ------------------------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller MLflow sizes; finishes in under 3 minutes")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    calls = 1_000_000
    bulk_points = 5_000_000 if not args.quick else 2_000_000
    read_points = 1_000_000
    runs = 100_000
    mlflow_calls = 300 if args.quick else 2000
    mlflow_batch = 20_000 if args.quick else 100_000
    result: dict[str, float | str] = {"machine_cpus": os.cpu_count() or 0, "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        root = Path(tmp)
        us, sustained = ours_log_call(root / "ws-log", calls)
        say("ours log_metric per call", us, "µs", "(caller's thread, writer running)")
        say("ours log+flush end to end", sustained, "points/s", f"({calls:,} log_metric calls)")
        fluent = ours_fluent_calls(root / "ws-fluent", calls // 10)
        say("ours log_metric(timestamp=ms)", fluent["log_metric_with_timestamp_us"], "µs")
        say("ours active_run().info.run_id", fluent["active_run_info_us"], "µs")
        say("ours log_param per call", fluent["log_param_us"], "µs", "(synchronous, one transaction)")
        say("ours set_tag per call", fluent["set_tag_us"], "µs", "(synchronous, one transaction)")
        result.update(fluent)
        ws = Workspace.open(root / "ws")
        run_uuid, bulk = ours_bulk_write(ws, bulk_points)
        say("ours bulk ingestion", bulk, "points/s", f"({bulk_points:,} points, log_metric_arrays)")
        ws.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        bpp = db_bytes(root / "ws", "mlops.db") / bulk_points
        say("ours bytes per point", bpp, "B")
        ws.close()
        # the read figure: a fresh 1M-point series
        ws = Workspace.open(root / "ws-read")
        read_uuid, _ = ours_bulk_write(ws, read_points)
        read_ms = ours_read(ws, read_uuid)
        say("ours read 1M-point series", read_ms, "ms")
        fill_runs_ours(ws, runs)
        search_ms, matched = ours_search(ws)
        say("ours search 100k runs", search_ms, "ms", f"({matched} match '{SEARCH_FILTER}')")
        ws.close()
        # write_points_per_s is the store's ingestion rate (the counterpart of MLflow's log_batch figure);
        # log_flush_points_per_s is the one-Python-call-per-point path, bounded by the caller's own loop.
        result.update({"log_call_us": us, "write_points_per_s": bulk,
                       "log_flush_points_per_s": sustained, "bulk_write_points_per_s": bulk,
                       "read_1m_points_ms": read_ms, "search_100k_runs_ms": search_ms, "bytes_per_point": bpp})
        raw = raw_sqlite(root, read_points)
        say("raw sqlite3 row-per-point insert", raw["raw_sqlite_write_points_per_s"], "points/s")
        say("raw sqlite3 read 1M rows", raw["raw_sqlite_read_1m_points_ms"], "ms")
        say("raw sqlite3 bytes per point", raw["raw_sqlite_bytes_per_point"], "B")
        result.update(raw)
        if not args.no_mlflow:
            try:
                ml = run_mlflow(root, mlflow_calls, mlflow_batch, mlflow_batch, runs)
            except ImportError:
                print("mlflow is not installed: skipping its figures (pip install -e '.[bench]')")
            else:
                say("mlflow log_metric per call", ml["mlflow_log_call_us"], "µs", f"({mlflow_calls} calls)")
                say("mlflow log_batch ingestion", ml["mlflow_write_points_per_s"], "points/s",
                    f"({mlflow_batch:,} points)")
                say("mlflow read history", ml["mlflow_read_ms"], "ms", f"({mlflow_batch:,} points; "
                    f"{ml['mlflow_read_1m_points_ms']:,.0f} ms per 1M extrapolated)")
                say("mlflow bytes per point", ml["mlflow_bytes_per_point"], "B")
                say("mlflow search 100k runs", ml["mlflow_search_100k_runs_ms"], "ms")
                result.update(ml)
                # the fluent calls through the mlflow package: into its SQLite store, and into our plugin
                for prefix, uri in (("mlflow_sqlite", f"sqlite:///{root}/mlflow.db"),
                                    ("mlflow_plugin", f"mlops-desktop://{root}/ws-plugin")):
                    fl = mlflow_fluent_calls(uri, mlflow_calls, prefix)
                    for name in ("log_metric", "log_param", "set_tag"):
                        say(f"{prefix} {name} per call", fl[f"{prefix}_{name}_us"], "µs", "(mlflow fluent API)")
                    result.update(fl)
                result["ratio_mlflow_log_param_over_ours"] = result["mlflow_sqlite_log_param_us"] / fluent["log_param_us"]
                result["ratio_mlflow_set_tag_over_ours"] = result["mlflow_sqlite_set_tag_us"] / fluent["set_tag_us"]
                result["ratio_mlflow_fluent_log_metric_over_ours"] = result["mlflow_sqlite_log_metric_us"] / us
                result["ratio_plugin_log_metric_over_mlflow_sqlite"] = (result["mlflow_plugin_log_metric_us"]
                                                                         / result["mlflow_sqlite_log_metric_us"])
                result["ratio_log_call_mlflow_over_ours"] = ml["mlflow_log_call_us"] / us
                result["ratio_write_ours_over_mlflow"] = result["write_points_per_s"] / ml["mlflow_write_points_per_s"]
                result["ratio_read_mlflow_over_ours"] = ml["mlflow_read_1m_points_ms"] / read_ms
                result["ratio_search_mlflow_over_ours"] = ml["mlflow_search_100k_runs_ms"] / search_ms
        result["ratio_write_ours_over_raw_sqlite"] = result["write_points_per_s"] / raw["raw_sqlite_write_points_per_s"]
        result["ratio_read_raw_sqlite_over_ours"] = raw["raw_sqlite_read_1m_points_ms"] / read_ms
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
