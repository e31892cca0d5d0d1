"""Metric plots: min/max downsampling keeps a single spike among 1,000,000 points; zoom re-queries; live updates."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mlops_desktop.gui.charts import MetricPlot, SeriesSpec, smooth_ema

N = 1_000_000


@pytest.fixture
def spiky_run(ws):
    store = ws.tracking
    exp = store.get_or_create_experiment("spikes")
    run = store.create_run(exp.id, name="spiky")
    steps = np.arange(N, dtype=np.int64)
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 1.0, N)
    spike_at = 612_345
    values[spike_at] = 1000.0
    values[100_001] = -500.0
    store.log_metric_arrays(run.uuid, "loss", steps, steps + 1_700_000_000_000, values)
    return run.uuid, spike_at


def make_plot(ctx, qtbot, uuid, count, width=800, live=False):
    plot = MetricPlot(ctx, "loss")
    qtbot.addWidget(plot)
    plot.resize(width, 300)
    plot.show()
    qtbot.waitExposed(plot)
    plot.set_series([SeriesSpec(uuid, "loss", "spiky", "#4e79a7", 0.0, count, live=live)])
    qtbot.waitUntil(lambda: plot.idle() and plot.drawn_data(uuid)[0].shape[0] > 0, timeout=20_000)
    return plot


@pytest.mark.parametrize("live", [False, True], ids=["cached-history", "store-downsampled"])
def test_spike_in_a_million_points_is_drawn_at_full_zoom_out(ctx, qtbot, spiky_run, live):
    uuid, spike_at = spiky_run
    plot = make_plot(ctx, qtbot, uuid, N, live=live)
    x, y = plot.drawn_data(uuid)
    assert x.shape[0] < 8 * plot.pixel_width() + 16, "the plot must draw per-pixel extremes, not every point"
    assert y.max() == 1000.0 and int(x[np.argmax(y)]) == spike_at
    assert y.min() == -500.0
    # the view range includes the spike, i.e. it is on screen, not clipped away
    (_x0, _x1), (y0, y1) = plot.plot_item.getViewBox().viewRange()
    assert y0 <= -500.0 and y1 >= 1000.0


def test_zoom_requeries_with_finer_detail(ctx, qtbot, spiky_run):
    uuid, spike_at = spiky_run
    plot = make_plot(ctx, qtbot, uuid, N)
    queries = plot.queries
    plot.plot_item.setXRange(spike_at - 500, spike_at + 500, padding=0)
    qtbot.waitUntil(lambda: plot.queries > queries and plot.idle(), timeout=20_000)
    x, y = plot.drawn_data(uuid)
    inside = (x >= spike_at - 500) & (x <= spike_at + 500)
    # 1001 points in view and >= 1600 buckets fetched: every single point is drawn
    assert inside.sum() == 1001
    assert 1000.0 in y[inside]


def test_live_update_reaches_the_plot(ctx, qtbot, ws, tmp_path):
    from mlops_desktop.gui.live import ChangeWatcher
    from mlops_desktop.workspace import Workspace

    store = ws.tracking
    exp = store.get_or_create_experiment("live")
    run = store.create_run(exp.id, name="training")
    store.log_metric_arrays(run.uuid, "loss", np.arange(10, dtype=np.int64), np.arange(10, dtype=np.int64),
                            np.ones(10))
    plot = make_plot(ctx, qtbot, run.uuid, 10, live=True)
    watcher = ChangeWatcher(ctx)
    watcher.set_live(True)

    def on_change():
        for state in plot.series.values():
            state.loaded_count = -1
        plot.request_data()

    watcher.changed.connect(on_change)
    other = Workspace.open(ws.root)  # another connection, as a training process would have
    try:
        started = time.perf_counter()
        other.tracking.log_metric_arrays(run.uuid, "loss", np.array([10], dtype=np.int64),
                                         np.array([10], dtype=np.int64), np.array([42.0]))
        qtbot.waitUntil(lambda: 42.0 in plot.drawn_data(run.uuid)[1], timeout=5000)
        latency = time.perf_counter() - started
    finally:
        other.close()
        watcher.stop()
    assert latency < 0.25 + 0.25  # goal 250 ms; slack for a loaded CI machine


def test_idle_watcher_does_not_fire_without_changes(ctx, qtbot):
    from mlops_desktop.gui.live import ChangeWatcher

    watcher = ChangeWatcher(ctx)
    watcher.set_live(True)
    fired = []
    watcher.changed.connect(lambda: fired.append(1))
    qtbot.wait(350)
    watcher.stop()
    assert watcher.checks >= 2 and fired == []


def test_smoothing_is_debiased_and_keeps_nan():
    values = np.array([1.0, 1.0, np.nan, 1.0])
    out = smooth_ema(values, 0.9)
    assert np.isnan(out[2]) and np.allclose(out[[0, 1, 3]], 1.0)
    assert smooth_ema(values, 0.0) is values
