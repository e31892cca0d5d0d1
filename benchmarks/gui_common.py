"""Shared set-up for the GUI benchmarks: a cached 100,000-run workspace and a workspace of 10 x 1,000,000 points."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench-out"


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


def many_runs_workspace(n_runs: int = 100_000) -> Path:
    """A workspace with ``n_runs`` finished runs (3 params, 2 metric summaries each), built once and cached.

    Bulk SQL in one transaction: the store's per-run API would take minutes for 100,000 runs and its cost is
    measured by benchmarks/tracking.py, not here.
    """
    from mlops_desktop.workspace import Workspace

    home = CACHE / f"ws-{n_runs}-runs"
    marker = home / ".complete"
    if marker.exists():
        return home
    if home.exists():
        import shutil

        shutil.rmtree(home)
    started = time.perf_counter()
    with Workspace.open(home) as ws:
        rng = np.random.default_rng(0)
        now = time.time()
        with ws.db.transaction() as conn:
            exp_ids = []
            for i in range(10):
                cur = conn.execute("INSERT INTO experiments(name, description, created_at) VALUES (?, '', ?)",
                                   (f"experiment-{i}", now))
                exp_ids.append(cur.lastrowid)
            conn.execute("INSERT INTO metric_keys(name) VALUES ('val_acc'), ('loss')")
            runs, params, series = [], [], []
            for i in range(n_runs):
                rid = i + 1
                start = now - (n_runs - i) * 60
                status = "failed" if i % 17 == 0 else "finished"
                runs.append((rid, uuid.uuid4().hex, exp_ids[i % 10], f"run-{i}", status, "bench", "user", "train.py",
                             start, start + 30))
                lr, depth = float(10 ** rng.uniform(-4, -1)), int(rng.integers(2, 9))
                params += [(rid, "lr", repr(lr), lr), (rid, "depth", str(depth), depth),
                           (rid, "optimizer", ["adam", "sgd"][i % 2], None)]
                acc, loss = float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.01, 2.0))
                series += [(rid, 1, 100, acc, 99, 0, acc * 0.8, acc), (rid, 2, 100, loss, 99, 0, loss, loss * 3)]
            conn.executemany("INSERT INTO runs(id, uuid, experiment_id, name, status, host, user, command, "
                             "start_time, end_time) VALUES (?,?,?,?,?,?,?,?,?,?)", runs)
            conn.executemany("INSERT INTO params(run_id, key, value, value_num) VALUES (?,?,?,?)", params)
            conn.executemany("INSERT INTO metric_series(run_id, key_id, count, last_value, last_step, last_ts, "
                             "min_value, max_value) VALUES (?,?,?,?,?,?,?,?)", series)
        ws.db.execute("ANALYZE")
    marker.write_text(json.dumps({"runs": n_runs, "built_s": time.perf_counter() - started}))
    return home


def big_series_workspace(n_series: int = 10, n_points: int = 1_000_000) -> tuple[Path, list[str]]:
    """One run per series, each with ``n_points`` points of a noisy curve (through the store's batch API)."""
    from mlops_desktop.workspace import Workspace

    home = CACHE / f"ws-{n_series}x{n_points}"
    marker = home / ".complete"
    if marker.exists():
        return home, json.loads(marker.read_text())["uuids"]
    if home.exists():
        import shutil

        shutil.rmtree(home)
    uuids = []
    with Workspace.open(home) as ws:
        store = ws.tracking
        exp = store.get_or_create_experiment("big")
        steps = np.arange(n_points, dtype=np.int64)
        rng = np.random.default_rng(1)
        for i in range(n_series):
            run = store.create_run(exp.id, name=f"series-{i}")
            values = np.exp(-steps / (n_points / 5)) * (1 + i / 10) + rng.normal(0, 0.05, n_points)
            store.log_metric_arrays(run.uuid, "loss", steps, steps + 1_700_000_000_000, values)
            store.set_terminated(run.uuid, "finished")
            uuids.append(run.uuid)
    marker.write_text(json.dumps({"uuids": uuids}))
    return home, uuids
