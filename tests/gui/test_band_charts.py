"""Issue 14: runs grouped by a param or tag, drawn as a mean line over a min..max band per group."""

from __future__ import annotations

import numpy as np
import pytest


def seeded_runs(store):
    exp = store.get_or_create_experiment("seeds")
    uuids = []
    for lr in (0.1, 0.01):
        for seed in range(3):
            run = store.create_run(exp.id, name=f"lr={lr} seed={seed}", params={"lr": lr, "seed": seed},
                                   tags={"opt": "adam"})
            values = np.full(10, lr * 10) + seed   # per group: seed 0, 1, 2 -> min, mean, max known
            store.log_metric_arrays(run.uuid, "loss", np.arange(10), np.arange(10), values)
            store.set_terminated(run.uuid, "finished")
            uuids.append(run.uuid)
    return uuids


def test_group_by_a_param_draws_mean_and_min_max_bands(ctx, qtbot):
    from mlops_desktop.gui.charts_panel import ChartsPanel

    store = ctx.workspace.tracking
    runs = store.get_runs(seeded_runs(store))
    panel = ChartsPanel(ctx)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    panel.set_runs(runs[:2], selected=6, all_runs=runs)   # only two are plotted one by one, all six grouped
    panel.set_group_by("params.lr")
    qtbot.waitUntil(lambda: "loss" in panel.band_plots and panel.idle()
                    and len(panel.band_plots["loss"].drawn) == 2, timeout=10_000)
    assert not panel.plots, "grouped: no per-run plots"
    drawn = panel.band_plots["loss"].drawn
    assert set(drawn) == {"lr=0.01", "lr=0.1"}
    x, mean, lo, hi = drawn["lr=0.1"]
    assert x.tolist() == list(range(10))
    assert mean.tolist() == pytest.approx([2.0] * 10) and lo.tolist() == [1.0] * 10 and hi.tolist() == [3.0] * 10
    x, mean, lo, hi = drawn["lr=0.01"]
    assert mean[0] == pytest.approx(1.1) and lo[0] == pytest.approx(0.1) and hi[0] == pytest.approx(2.1)
    labels = [w.text() for w in panel.legend_boxes.values()]
    assert labels == ["■ lr=0.01  (3 runs)", "■ lr=0.1  (3 runs)"]
    assert not panel.capped.isVisible()
    # grouping by a tag every run shares: one group; no grouping: one line per run again
    panel.set_group_by("tags.opt")
    qtbot.waitUntil(lambda: panel.idle() and set(panel.band_plots["loss"].drawn) == {"opt=adam"}, timeout=10_000)
    panel.set_group_by(None)
    qtbot.waitUntil(lambda: "loss" in panel.plots and panel.idle(), timeout=10_000)
    assert not panel.band_plots and set(panel.plots["loss"].series) == {r.uuid for r in runs[:2]}
