"""Issue 14 chart items: single-value metrics, markers, smoothing, linked zoom, legend, log ticks, theme, errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_desktop.gui.charts import MetricPlot, SeriesSpec


def one_value_runs(store, values, key="val_acc"):
    exp = store.get_or_create_experiment("sk")
    uuids = []
    for i, v in enumerate(values):
        run = store.create_run(exp.id, name=f"model-{i}")
        store.log_metric_arrays(run.uuid, key, np.array([5]), np.array([1000 + i]), np.array([v]))
        store.set_terminated(run.uuid, "finished")
        uuids.append(run.uuid)
    return uuids


def panel_with(ctx, qtbot, runs, width=1000):
    from mlops_desktop.gui.charts_panel import ChartsPanel

    panel = ChartsPanel(ctx)
    qtbot.addWidget(panel)
    panel.resize(width, 700)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_runs(runs)
    qtbot.waitUntil(lambda: bool(panel.plots) and panel.idle(), timeout=10_000)
    return panel


def test_metric_logged_once_per_run_is_a_bar_chart_across_runs(ctx, qtbot):
    store = ctx.workspace.tracking
    uuids = one_value_runs(store, [0.9712, 0.9333, 0.95])
    panel = panel_with(ctx, qtbot, store.get_runs(uuids))
    plot = panel.plots["val_acc"]
    qtbot.waitUntil(lambda: plot.bar_mode and len(plot._bars) == 4, timeout=5000)   # bars + 3 value labels
    bars = plot._bars[0]
    assert list(bars.opts["height"]) == [0.9712, 0.9333, 0.95]
    labels = [t.toPlainText() for t in plot._bars[1:]]
    assert labels == ["0.9712", "0.9333", "0.95"]
    ticks = plot.plot_item.getAxis("bottom")._tickLevels[0]
    assert [name for _x, name in ticks] == ["model-0", "model-1", "model-2"]
    (_x0, _x1), (y0, y1) = plot.plot_item.getViewBox().viewRange()
    assert y0 == pytest.approx(0.0, abs=1e-9) and 0.9712 < y1 < 1.3, "no -1000..1000 axis"
    # hiding a run in the legend drops its bar
    panel.legend_boxes[uuids[1]].setChecked(False)
    assert list(plot._bars[0].opts["height"]) == [0.9712, 0.95]


def test_short_series_get_markers_and_a_single_point_among_lines_is_visible(ctx, qtbot):
    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("mix")
    a = store.create_run(exp.id, name="long")
    store.log_metric_arrays(a.uuid, "loss", np.arange(100), np.arange(100), np.linspace(1, 0, 100))
    b = store.create_run(exp.id, name="one")
    store.log_metric_arrays(b.uuid, "loss", np.array([50]), np.array([50]), np.array([0.25]))
    panel = panel_with(ctx, qtbot, store.get_runs([a.uuid, b.uuid]))
    plot = panel.plots["loss"]
    assert not plot.bar_mode
    qtbot.waitUntil(lambda: plot.drawn_data(b.uuid)[0].shape[0] == 1, timeout=5000)
    one = plot.series[b.uuid].curve
    assert one.opts["symbol"] == "o" and one.opts["symbolSize"] >= 8
    assert plot.series[a.uuid].curve.opts["symbol"] is None


def test_smoothing_kind_and_value_are_shown_kept_and_end_at_the_last_point(ctx, qtbot):
    from mlops_desktop.gui.charts_panel import ChartsPanel

    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("smooth")
    run = store.create_run(exp.id, name="noisy")
    values = np.random.default_rng(0).normal(0, 1, 500)
    store.log_metric_arrays(run.uuid, "loss", np.arange(500), np.arange(500), values)
    panel = panel_with(ctx, qtbot, store.get_runs([run.uuid]))
    assert panel.smoothing_value.text() == "off"
    panel.smoothing.setValue(60)
    assert panel.smoothing_value.text() == "EMA 0.60"
    plot = panel.plots["loss"]
    qtbot.waitUntil(lambda: plot.idle() and plot.series[run.uuid].raw_curve is not None, timeout=5000)
    sx, sy = plot.drawn_data(run.uuid)
    rx, _ry = plot.series[run.uuid].raw_curve.getData()
    assert sx[-1] == rx[-1] == 499, "the smoothed line never reaches past the last true value"
    panel.smoothing_kind.set_current("mean")
    assert panel.smoothing_value.text().startswith("mean ") and panel.smoothing_value.text().endswith(" pts")
    qtbot.waitUntil(lambda: plot.idle() and plot.smoothing and plot.smoothing[0] == "mean", timeout=5000)
    window = int(plot.smoothing[1])
    qtbot.waitUntil(lambda: plot.idle(), timeout=5000)
    assert plot.drawn_data(run.uuid)[1][-1] == pytest.approx(values[-window:].mean())
    # a new panel (the next start) comes back with the same smoothing
    again = ChartsPanel(ctx)
    qtbot.addWidget(again)
    assert again.smoothing.value() == 60 and again.smoothing_kind.currentData() == "mean"
    assert again.smoothing_value.text() == panel.smoothing_value.text()


def test_zoom_is_linked_across_charts_and_reset_restores_them(ctx, qtbot):
    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("link")
    run = store.create_run(exp.id, name="r")
    for key in ("loss", "acc", "lr"):
        store.log_metric_arrays(run.uuid, key, np.arange(1000), np.arange(1000), np.random.default_rng(1).random(1000))
    panel = panel_with(ctx, qtbot, store.get_runs([run.uuid]))
    loss, acc = panel.plots["loss"], panel.plots["acc"]
    vb = loss.plot_item.getViewBox()
    vb.setXRange(200, 300, padding=0)
    vb.sigRangeChangedManually.emit([True, True])   # what a mouse drag or wheel emits
    for other in (acc, panel.plots["lr"]):
        lo, hi = other.plot_item.getViewBox().viewRange()[0]
        assert (round(lo), round(hi)) == (200, 300)
    panel.reset_zoom()
    assert all(p.plot_item.getViewBox().autoRangeEnabled()[0] for p in panel.plots.values())
    panel.link_x.setChecked(False)
    vb.setXRange(400, 450, padding=0)
    vb.sigRangeChangedManually.emit([True, True])
    assert acc.plot_item.getViewBox().autoRangeEnabled()[0]


def test_legend_is_outside_the_plot_and_hideable_and_no_auto_button(ctx, qtbot):
    store = ctx.workspace.tracking
    uuids = one_value_runs(store, [0.5])
    exp = store.get_or_create_experiment("sk")
    run = store.create_run(exp.id, name="curve")
    store.log_metric_arrays(run.uuid, "loss", np.arange(10), np.arange(10), np.ones(10))
    panel = panel_with(ctx, qtbot, store.get_runs([run.uuid] + uuids))
    plot = panel.plots["loss"]
    assert plot.plot_item.legend is None, "no legend drawn over the curves"
    assert panel.legend_host.isVisible() and set(panel.legend_boxes) == {run.uuid, *uuids}
    assert not plot.plot_item.autoBtn.isVisible()
    panel.show_legend.setChecked(False)
    assert not panel.legend_host.isVisible()


def test_log_axis_shows_decades_with_minor_ticks_in_one_format():
    from mlops_desktop.gui.plot_items import MetricAxis, fmt_tick

    axis = MetricAxis("left")
    axis.setLogMode(y=True)
    levels = axis.logTickValues(-4.2, 0.3, 400, [])
    major, minor = levels[0][1], levels[1][1]
    assert major == [-4.0, -3.0, -2.0, -1.0, 0.0]
    expected = [d + np.log10(m) for d in range(-5, 1) for m in range(2, 10) if -4.2 <= d + np.log10(m) <= 0.3]
    assert minor == pytest.approx(expected) and len(minor) == 3 + 8 * 4   # 2..9 times every power of ten
    assert axis.logTickStrings(major, 1.0, 1.0) == ["10⁻⁴", "10⁻³", "10⁻²", "10⁻¹", "10⁰"]
    assert axis.logTickStrings([-2.0, -1.0, 0.0, 1.0], 1.0, 1.0) == ["0.01", "0.1", "1", "10"]
    assert fmt_tick(2e-5, True) == "2·10⁻⁵"
    many = axis.logTickValues(-30, 30, 200, [])
    assert len(many[0][1]) <= 6 and not many[1][1], "crowded decades thin out, without minor ticks"


def test_every_plot_follows_a_theme_switch_at_once(ctx, qtbot, qapp):
    from mlops_desktop.gui import theme

    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("t")
    run = store.create_run(exp.id, name="r")
    store.log_metric_arrays(run.uuid, "loss", np.arange(10), np.arange(10), np.ones(10))
    plot = MetricPlot(ctx, "loss")
    qtbot.addWidget(plot)
    import pyqtgraph as pg

    other = pg.PlotWidget()   # a plot built elsewhere (e.g. a profile histogram)
    qtbot.addWidget(other)
    other.setTitle("histogram")
    try:
        theme.apply(qapp, "dark")
        for widget in (plot.plot_widget, other):
            assert widget.backgroundBrush().color().name() == "#17181a"
        assert "#c9d1d9" in plot.plot_item.titleLabel.text or plot.plot_item.titleLabel.opts["color"] == "#c9d1d9"
        assert other.getPlotItem().titleLabel.opts["color"] == "#c9d1d9"
        assert other.getPlotItem().getAxis("left").textPen().color().name() == "#c9d1d9"
        theme.apply(qapp, "light")
        assert plot.plot_widget.backgroundBrush().color().name() == "#ffffff"
        assert plot.plot_item.titleLabel.opts["color"] == "#444c56"
    finally:
        theme.apply(qapp, "light")


def test_a_series_that_cannot_be_read_says_so_in_the_plot_not_the_status_bar(ctx, qtbot):
    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("gone")
    run = store.create_run(exp.id, name="r")
    store.log_metric_arrays(run.uuid, "loss", np.arange(10), np.arange(10), np.ones(10))
    plot = MetricPlot(ctx, "loss")
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    plot.show()
    before = len(ctx.notifications.history)
    plot.set_series([SeriesSpec("0" * 32, "loss", "deleted run", "#4e79a7", 0.0, 10)])
    qtbot.waitUntil(lambda: plot.idle() and plot.problem_text.isVisible(), timeout=5000)
    assert "deleted run" in plot.problem_text.toPlainText() and "no run" in plot.problem_text.toPlainText()
    assert len(ctx.notifications.history) == before


def test_the_data_profile_histogram_follows_the_theme(ctx, qtbot, qapp):
    """Issue 14: the profile histogram was black on the light theme."""
    from mlops_desktop.gui import theme
    from mlops_desktop.gui.views.data_panels import ProfilePanel

    panel = ProfilePanel(ctx)
    qtbot.addWidget(panel)
    plot = panel._ensure_plot()
    assert plot.backgroundBrush().color().name() == "#ffffff"
    assert plot.getPlotItem().getAxis("left").textPen().color().name() == "#444c56"
    try:
        theme.apply(qapp, "dark")
        assert plot.backgroundBrush().color().name() == "#17181a"
    finally:
        theme.apply(qapp, "light")
