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
    # the view range (auto range, applied lazily by pyqtgraph) includes the spike: it is on screen
    vb = plot.plot_item.getViewBox()
    qtbot.waitUntil(lambda: vb.viewRange()[1][0] <= -500.0 and vb.viewRange()[1][1] >= 1000.0, timeout=5000)


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


def test_x_modes_hover_and_exports(ctx, qtbot, ws, tmp_path):
    from PySide6.QtCore import QPointF

    from mlops_desktop.gui.charts import export_csv
    from mlops_desktop.progress import Progress

    store = ws.tracking
    exp = store.get_or_create_experiment("x")
    run = store.create_run(exp.id, name="timed", start_time=1_700_000_000.0)
    steps = np.arange(100, dtype=np.int64)
    ts = 1_700_000_000_000 + steps * 500  # a point every half second
    store.log_metric_arrays(run.uuid, "loss", steps, ts, np.linspace(1.0, 0.0, 100))
    plot = make_plot(ctx, qtbot, run.uuid, 100)
    plot.series[run.uuid].spec.start_time = 1_700_000_000.0
    assert plot.drawn_data(run.uuid)[0][-1] == 99
    plot.set_x_mode("relative")
    qtbot.waitUntil(lambda: plot.idle() and plot.drawn_data(run.uuid)[0][-1] == 49.5, timeout=5000)
    plot.set_x_mode("wall")
    qtbot.waitUntil(lambda: plot.idle() and plot.drawn_data(run.uuid)[0][0] == 1_700_000_000.0, timeout=5000)
    plot.set_x_mode("step")
    qtbot.waitUntil(lambda: plot.idle() and plot.drawn_data(run.uuid)[0][-1] == 99, timeout=5000)
    # hover: the label names the run and the value at the nearest step
    vb = plot.plot_item.getViewBox()
    qtbot.waitUntil(lambda: vb.viewRange()[0][0] <= 50 <= vb.viewRange()[0][1] <= 200
                    and vb.viewRange()[1][0] <= 0.5 <= vb.viewRange()[1][1], timeout=5000)
    scene_pos = vb.mapViewToScene(QPointF(50, 0.5))
    plot._on_mouse_moved((scene_pos,))
    assert plot.hover_text.isVisible() and "spiky" in plot.hover_text.toPlainText()  # make_plot labels it
    assert "step 50" in plot.hover_text.toPlainText()
    # smoothing draws a smoothed line over a faint raw one; log scale switches the axis
    plot.set_smoothing(0.9)   # computed over the full series in a worker
    qtbot.waitUntil(lambda: plot.idle() and plot.series[run.uuid].raw_curve is not None, timeout=5000)
    plot.set_log_y(True)
    assert plot.plot_item.getAxis("left").logMode
    png = tmp_path / "loss.png"
    plot.export_png(str(png))
    assert png.stat().st_size > 1000
    csv_path = tmp_path / "loss.csv"
    rows = export_csv(store, [(run.uuid, "timed", "loss")], str(csv_path), progress=Progress())
    lines = csv_path.read_text().splitlines()
    assert rows == 100 and len(lines) == 101 and lines[1].split(",")[3:5] == ["0", "1700000000000"]


def test_charts_panel_overlays_runs_and_legend_toggles(ctx, qtbot, ws):
    from mlops_desktop.gui.charts_panel import ChartsPanel

    store = ws.tracking
    exp = store.get_or_create_experiment("overlay")
    uuids = []
    for i in range(2):
        run = store.create_run(exp.id, name=f"r{i}")
        store.log_metric_arrays(run.uuid, "loss", np.arange(50, dtype=np.int64), np.arange(50, dtype=np.int64),
                                np.linspace(1, 0, 50) + i)
        store.log_metric_arrays(run.uuid, f"only_r{i}", np.arange(3, dtype=np.int64), np.arange(3, dtype=np.int64),
                                np.ones(3))
        store.set_terminated(run.uuid, "finished")
        uuids.append(run.uuid)
    panel = ChartsPanel(ctx)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    panel.set_runs(store.get_runs(uuids))
    qtbot.waitUntil(lambda: set(panel.plots) == {"loss", "only_r0", "only_r1"} and panel.idle(), timeout=10_000)
    loss = panel.plots["loss"]
    qtbot.waitUntil(lambda: all(loss.drawn_data(u)[0].shape[0] == 50 for u in uuids), timeout=5000)
    assert set(panel.plots["only_r1"].series) == {uuids[1]}
    panel.legend_boxes[uuids[0]].setChecked(False)
    assert not loss.series[uuids[0]].curve.isVisible() and loss.series[uuids[1]].curve.isVisible()
    panel.filter.setText("only")
    assert set(panel.plots) == {"only_r0", "only_r1"}
    ctx.tasks.shutdown(3000)
