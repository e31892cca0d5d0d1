"""Plot benchmark: pan/zoom frames per second with 10 series x 1,000,000 points, offscreen.

    python benchmarks/gui_plot_fps.py [--series 10] [--points 1000000] [--frames 120]

Ours: MetricPlot (per-pixel min/max from the store, re-queried in workers on zoom). Baseline in the same run:
pyqtgraph handed every point (no downsampling), the naive way. Each frame changes the view range (zoom or pan)
and renders the plot (repaint). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui_common import big_series_workspace, emit  # noqa: E402


def frames_script(n_points: int, frames: int) -> list[tuple[float, float]]:
    """A zoom-in, pan, zoom-out path over the x range."""
    ranges = []
    lo, hi = 0.0, float(n_points)
    for i in range(frames):
        phase = i % 60
        span = hi - lo
        if phase < 20:
            lo, hi = lo + span * 0.08, hi - span * 0.08          # zoom in
        elif phase < 40:
            shift = span * 0.05
            lo, hi = lo + shift, hi + shift                     # pan
        else:
            lo, hi = lo - span * 0.1, hi + span * 0.1           # zoom out
        lo, hi = max(0.0, lo), min(float(n_points), hi)
        if hi - lo < 100:
            lo, hi = 0.0, float(n_points)
        ranges.append((lo, hi))
    return ranges


def run_frames(app, widget, view_box, ranges, budget_s: float) -> tuple[int, float]:
    started = time.perf_counter()
    done = 0
    for lo, hi in ranges:
        app.processEvents()   # deliver worker results and range timers, as the event loop would between frames
        view_box.setXRange(lo, hi, padding=0)
        widget.repaint()      # render the frame now (one paint per frame)
        done += 1
        if time.perf_counter() - started > budget_s:
            break
    return done, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    home, uuids = big_series_workspace(args.series, args.points)

    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context
    from mlops_desktop.gui.charts import MetricPlot, SeriesSpec
    from mlops_desktop.workspace import Workspace

    app = QApplication.instance() or QApplication([])
    theme.apply(app, "light")
    ws = Workspace.open(home)
    ctx = make_context(ws)
    plot = MetricPlot(ctx, "loss")
    plot.resize(1200, 500)
    plot.show()
    specs = [SeriesSpec(u, "loss", f"series-{i}", theme.SERIES_COLORS[i % 10], 0.0, args.points)
             for i, u in enumerate(uuids)]
    t0 = time.perf_counter()
    plot.set_series(specs)
    while not plot.idle() or any(s.x.shape[0] == 0 for s in plot.series.values()):
        app.processEvents()
        time.sleep(0.002)
    first_s = time.perf_counter() - t0
    vb = plot.plot_item.getViewBox()
    ranges = frames_script(args.points, args.frames)
    frames, took = run_frames(app, plot.plot_widget, vb, ranges, budget_s=60)
    ours_fps = frames / took
    queries = plot.queries
    ctx.tasks.shutdown(10_000)

    # baseline: every point handed to pyqtgraph
    base = pg.PlotWidget()
    base.resize(1200, 500)
    base.show()
    for i, u in enumerate(uuids):
        hist = ws.tracking.metric_history(u, "loss")
        base.plot(hist.steps.astype(np.float64), hist.values, pen=pg.mkPen(theme.SERIES_COLORS[i % 10]))
    base_frames, base_took = run_frames(app, base, base.getPlotItem().getViewBox(), ranges[:30], budget_s=30)
    base_fps = base_frames / base_took
    ws.close()
    print(f"ours: {ours_fps:.1f} fps over {frames} frames ({queries} store queries), first draw {first_s:.2f}s; "
          f"naive pyqtgraph: {base_fps:.2f} fps over {base_frames} frames")
    emit({"benchmark": "gui_plot_fps", "series": args.series, "points_per_series": args.points,
          "fps": round(ours_fps, 1), "baseline_all_points_fps": round(base_fps, 2),
          "ratio_vs_baseline": round(ours_fps / base_fps, 1), "goal_fps": 30, "meets_goal": ours_fps >= 30,
          "first_draw_s": round(first_s, 2), "store_queries": queries, "frames": frames})


if __name__ == "__main__":
    main()
