"""Helpers shared by the desktop app tests."""

from __future__ import annotations

import time

import numpy as np


def wait_idle(qtbot, ctx, timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: not ctx.tasks.running(), timeout=timeout)


def make_runs(store, n: int, experiment: str = "exp", running: int = 0) -> list[str]:
    """n runs with params lr/batch and metrics acc/loss whose values are known from the index."""
    exp = store.get_or_create_experiment(experiment)
    uuids = []
    base = time.time() - n
    for i in range(n):
        run = store.create_run(exp.id, name=f"run-{i:04d}", params={"lr": 0.001 * (i % 10 + 1), "batch": 32 + i % 3},
                               tags={"parity": "even" if i % 2 == 0 else "odd"}, start_time=base + i)
        store.log_metric_arrays(run.uuid, "acc", np.array([0, 1], dtype=np.int64),
                                np.array([0, 1], dtype=np.int64) + int((base + i) * 1000),
                                np.array([0.5, i / n], dtype=np.float64))
        if i >= running:
            store.set_terminated(run.uuid, "finished" if i % 7 else "failed")
        uuids.append(run.uuid)
    return uuids


def bulk_runs(ws, n: int) -> None:
    """n finished runs with params lr/depth and metric summaries val_acc/loss, by bulk SQL (seconds for 100,000;
    the per-run API is exercised elsewhere)."""
    import uuid

    rng = np.random.default_rng(0)
    now = time.time()
    with ws.db.transaction() as conn:
        exp_id = conn.execute("INSERT INTO experiments(name, description, created_at) VALUES ('big', '', ?)",
                              (now,)).lastrowid
        conn.execute("INSERT OR IGNORE INTO metric_keys(name) VALUES ('val_acc'), ('loss')")
        acc_id = conn.execute("SELECT id FROM metric_keys WHERE name = 'val_acc'").fetchone()[0]
        loss_id = conn.execute("SELECT id FROM metric_keys WHERE name = 'loss'").fetchone()[0]
        base = conn.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]
        runs, params, series = [], [], []
        for i in range(n):
            rid = base + i + 1
            start = now - (n - i)
            runs.append((rid, uuid.uuid4().hex, exp_id, f"run-{i}", "failed" if i % 17 == 0 else "finished",
                         start, start + 30))
            lr = float(10 ** rng.uniform(-4, -1))
            params += [(rid, "lr", repr(lr), lr), (rid, "depth", str(i % 8), i % 8)]
            acc, loss = float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.01, 2.0))
            series += [(rid, acc_id, 100, acc, 99, 0, acc * 0.8, acc), (rid, loss_id, 100, loss, 99, 0, loss, loss)]
        conn.executemany("INSERT INTO runs(id, uuid, experiment_id, name, status, start_time, end_time) "
                         "VALUES (?,?,?,?,?,?,?)", runs)
        conn.executemany("INSERT INTO params(run_id, key, value, value_num) VALUES (?,?,?,?)", params)
        conn.executemany("INSERT INTO metric_series(run_id, key_id, count, last_value, last_step, last_ts, "
                         "min_value, max_value) VALUES (?,?,?,?,?,?,?,?)", series)
