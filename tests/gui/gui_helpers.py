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
