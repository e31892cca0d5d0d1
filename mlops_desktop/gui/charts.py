"""Metric plots (pyqtgraph): one plot per metric overlaying runs, min/max-downsampled per pixel, re-queried on zoom.

``MetricPlot`` draws; plot_data.py (no Qt) loads what it asks for. Each series is fetched as min/max per bucket
with buckets = plot width in pixels over the visible x range widened by half a view on each side (over a cached
full history and its min/max pyramid, which a live run extends with its new points only), so a single spike in a
million points stays visible at any zoom. Panning inside the fetched window needs no new query; zooming in or out
by more than ZOOM_REQUERY re-queries, in one worker task for all the plot's lines, through the task runner.

A metric that every run logged once (a scikit-learn ``val_acc``) is drawn as bars across the runs, as MLflow
does; a series of a few points gets a marker per point. Smoothing (EMA or a running mean) is computed over the
full-resolution series in the worker, so it is the same at any zoom and ends at the last logged point.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from mlops_desktop.gui import theme
from mlops_desktop.gui.plot_data import (  # noqa: F401 - re-exported for callers of the plot component
    X_MODES,
    ZOOM_REQUERY,
    HistoryCache,
    LoadProblem,
    SeriesData,
    SeriesRequest,
    SeriesSpec,
    export_csv,
    load_many,
    load_series,
)
from mlops_desktop.gui.plot_items import GridLines, MetricAxis, TimedPlotWidget
from mlops_desktop.gui.series_math import smooth_ema  # noqa: F401 - re-exported
from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.textfmt import fmt_number


def _load_timed(store: Any, cache: Any, requests: list[SeriesRequest], *, progress: Any = None
                ) -> tuple[list[SeriesData | LoadProblem], float]:
    """Worker: load_many, and the CPU it took (part of what a live refresh costs)."""
    started = time.thread_time()
    results = load_many(store, cache, requests, progress=progress)
    return results, time.thread_time() - started


MARKERS_UP_TO = 30      # a series with this few points gets a marker per point
THIN_FROM = 2000        # ... and one of at least this many a 1 px line (Qt draws it several times faster)


@dataclass
class _SeriesState:
    spec: SeriesSpec
    curve: pg.PlotDataItem
    raw_curve: pg.PlotDataItem | None = None
    x: np.ndarray = None  # type: ignore[assignment]
    y: np.ndarray = None  # type: ignore[assignment]
    window: tuple[float, float] | None = None   # x range fetched (None: everything)
    buckets: int = 0
    loaded_count: int = -1
    pending: bool = False
    drawn: int = -1            # points of the whole series behind what the curve shows
    drawn_for: tuple | None = None   # the request (window, buckets, x mode, smoothing) that was drawn
    styled: tuple | None = None      # _style_key when the pen and markers were last set
    again: bool = False        # new points arrived while a load was in flight: load again when it lands
    problem: str = ""

    def __post_init__(self) -> None:
        self.x = np.zeros(0)
        self.y = np.zeros(0)


class MetricPlot(QWidget):
    """One metric, N runs overlaid. Call ``set_series``; the plot fetches what its size and range need."""

    data_loaded = Signal()
    x_range_changed_by_user = Signal(float, float)   # the user panned or zoomed: linked plots follow

    def __init__(self, ctx: AppContext, key: str, parent: QWidget | None = None,
                 cache: HistoryCache | None = None) -> None:
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self.ctx = ctx
        self.key = key
        self.cache = cache if cache is not None else HistoryCache()
        self.x_mode = "step"
        self.smoothing: tuple[str, float] | None = None
        self.log_y = False
        self.series: dict[str, _SeriesState] = {}
        self.hidden: set[str] = set()
        self.queries = 0
        self.draws = 0          # curves given new data (each costs a repaint): live refreshes with no news skip it
        self.last_draw_s = 0.0
        self.bar_mode = False
        self._bars: list[Any] = []
        self._following = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.load_cpu_s = 0.0   # CPU of this plot's loads (worker) and draws (GUI thread); + paints: cpu_s
        self.plot_widget = TimedPlotWidget(axisItems={"bottom": self._make_axis(), "left": MetricAxis("left")})
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()   # pyqtgraph's own "A" (auto range): the panel's Reset zoom does that
        self.grid = GridLines(self.plot_item)
        self.plot_item.getViewBox().addItem(self.grid, ignoreBounds=True)
        self.plot_widget.setMinimumHeight(200)
        layout.addWidget(self.plot_widget)
        self.hover_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((128, 128, 128, 120)))
        self.hover_text = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(0, 0, 0, 170), color=(255, 255, 255))
        self.problem_text = pg.TextItem(anchor=(0.5, 0.5), color="#e5534b")
        self.hover_line.setZValue(50)
        self.hover_text.setZValue(51)
        self.problem_text.setZValue(52)
        for item in (self.hover_line, self.hover_text, self.problem_text):
            item.hide()
            self.plot_item.addItem(item, ignoreBounds=True)
        self._hover_proxy = pg.SignalProxy(self.plot_widget.scene().sigMouseMoved, rateLimit=30,
                                           slot=self._on_mouse_moved)
        self._range_timer = QTimer(self)
        self._range_timer.setSingleShot(True)
        # throttle, not debounce: during a long drag the detail still catches up every 120 ms
        self._range_timer.setInterval(120)
        self._range_timer.timeout.connect(self.request_data)
        vb = self.plot_item.getViewBox()
        vb.sigXRangeChanged.connect(self._on_range_changed)
        vb.sigRangeChangedManually.connect(self._on_user_range)
        self.apply_theme()

    def _on_range_changed(self, *_args: Any) -> None:
        if not self._range_timer.isActive():
            self._range_timer.start()

    def _on_user_range(self, *_args: Any) -> None:
        if self.bar_mode:
            return
        lo, hi = self.plot_item.getViewBox().viewRange()[0]
        self.x_range_changed_by_user.emit(float(lo), float(hi))

    def follow_x(self, lo: float | None, hi: float | None) -> None:
        """Show the x range another plot was zoomed to (None: follow the data again)."""
        if self.bar_mode:
            return
        if lo is None or hi is None:
            self.plot_item.enableAutoRange(x=True)
        else:
            self.plot_item.setXRange(lo, hi, padding=0)

    def _make_axis(self) -> pg.AxisItem:
        return pg.DateAxisItem(orientation="bottom") if self.x_mode == "wall" else MetricAxis("bottom")

    # -- configuration ---------------------------------------------------------------------------------------
    def set_series(self, specs: list[SeriesSpec]) -> None:
        wanted = {s.uuid: s for s in specs}
        for uuid in list(self.series):
            if uuid not in wanted:
                state = self.series.pop(uuid)
                self.plot_item.removeItem(state.curve)
                if state.raw_curve is not None:
                    self.plot_item.removeItem(state.raw_curve)
        for uuid, spec in wanted.items():
            existing = self.series.get(uuid)
            if existing is None:
                curve = pg.PlotDataItem(name=spec.label)
                curve.setClipToView(False)   # clipping is done by the query, with margins
                self.plot_item.addItem(curve)
                state = _SeriesState(spec, curve)
                self.series[uuid] = state
                self._style(state)
                curve.setVisible(uuid not in self.hidden)
            else:
                if existing.spec.live and not spec.live:
                    existing.loaded_count = -1   # the run ended: one last read of what it logged
                elif spec.count != existing.spec.count and not spec.live:
                    existing.loaded_count = -1
                # a live series is re-read by refresh_live (its tail, at the live cadence); a count the runs
                # table read meanwhile is no news to it and must not start a second load
                existing.spec = spec
                self._restyle(existing)
        self._set_bar_mode(bool(self.series) and all(s.spec.count == 1 for s in self.series.values()))
        self.request_data()

    def _restyle(self, state: _SeriesState) -> None:
        if _style_key(state) != state.styled:
            self._style(state)

    def _style(self, state: _SeriesState) -> None:
        """Qt draws 1 px (cosmetic) lines several times faster than wider ones: wide pens for short series only.
        The size is the larger of the summary's count and the points read, so a live series that grew since
        its summary was read loses its markers and wide pen at once (markers on 4,000 points cost 3x a frame)."""
        spec = state.spec
        state.styled = _style_key(state)
        count = max(spec.count, state.drawn)
        state.curve.setPen(pg.mkPen(spec.color, width=2 if count < THIN_FROM else 1))
        if count <= MARKERS_UP_TO:
            state.curve.setSymbol("o")
            state.curve.setSymbolSize(9 if count <= 1 else 6)
            state.curve.setSymbolBrush(spec.color)
            state.curve.setSymbolPen(pg.mkPen(spec.color))
        else:
            state.curve.setSymbol(None)

    def _set_bar_mode(self, on: bool) -> None:
        """Every run logged this metric once: bars across the runs, not lines of one point each."""
        if on == self.bar_mode:
            return
        self.bar_mode = on
        bottom = self.plot_item.getAxis("bottom")
        if not on:
            self._clear_bars()
            bottom.setTicks(None)
            self.plot_item.setMouseEnabled(x=True, y=True)
            self.plot_item.enableAutoRange()
        for state in self.series.values():
            state.curve.setVisible(not on and state.spec.uuid not in self.hidden)
        if on:
            self._draw_bars()   # with what is loaded already (a load that finds nothing new draws none)

    def _clear_bars(self) -> None:
        for item in self._bars:
            self.plot_item.removeItem(item)
        self._bars = []

    def _draw_bars(self) -> None:
        self._clear_bars()
        shown = [s for s in self.series.values() if s.spec.uuid not in self.hidden and s.y.shape[0]]
        if not shown:
            return
        values = np.array([float(s.y[-1]) for s in shown])
        xs = np.arange(len(shown), dtype=np.float64)
        bars = pg.BarGraphItem(x=xs, height=values, width=0.62, brushes=[QColor(s.spec.color) for s in shown],
                               pens=[pg.mkPen(s.spec.color) for s in shown])
        self.plot_item.addItem(bars)
        self._bars.append(bars)
        fg = theme.plot_colors()["foreground"]
        for x, value in zip(xs, values, strict=True):
            label = pg.TextItem(fmt_number(value), color=fg, anchor=(0.5, 1.0 if value >= 0 else 0.0))
            label.setPos(x, value)
            self.plot_item.addItem(label)
            self._bars.append(label)
        names = [(i, _elide(s.spec.label, 14)) for i, s in enumerate(shown)]
        self.plot_item.getAxis("bottom").setTicks([names, []])
        lo, hi = min(0.0, float(np.nanmin(values))), max(0.0, float(np.nanmax(values)))
        pad = (hi - lo) * 0.15 or 1.0
        self.plot_item.setMouseEnabled(x=False, y=True)
        self.plot_item.setXRange(-0.6, len(shown) - 0.4, padding=0)
        self.plot_item.setYRange(lo - (pad if lo < 0 else 0), hi + pad, padding=0)

    def set_run_visible(self, uuid: str, visible: bool) -> None:
        """Show or hide one run's line (the shared legend's check boxes); hover skips hidden lines."""
        if visible:
            self.hidden.discard(uuid)
        else:
            self.hidden.add(uuid)
        state = self.series.get(uuid)
        if state is not None:
            state.curve.setVisible(visible and not self.bar_mode)
            if state.raw_curve is not None:
                state.raw_curve.setVisible(visible and not self.bar_mode)
        if self.bar_mode:
            self._draw_bars()

    def set_x_mode(self, mode: str) -> None:
        if mode == self.x_mode:
            return
        self.x_mode = mode
        self.plot_item.setAxisItems({"bottom": self._make_axis()})
        self.plot_item.setLabel("bottom", {"step": "step", "relative": "time since start (s)", "wall": ""}[mode])
        self.apply_theme()
        for state in self.series.values():
            state.x, state.y, state.window, state.loaded_count = np.zeros(0), np.zeros(0), None, -1
            state.drawn, state.drawn_for = -1, None
        if not self.bar_mode:
            self.plot_item.enableAutoRange()
        self.request_data(force=True)

    def set_smoothing(self, smoothing: tuple[str, float] | float | None) -> None:
        """``("ema", weight)`` or ``("mean", points)``; a bare float is an EMA weight; None or 0 turns it off."""
        if isinstance(smoothing, int | float):
            smoothing = ("ema", min(0.99, float(smoothing))) if smoothing > 0 else None
        if smoothing is not None and smoothing[1] <= 0:
            smoothing = None
        if smoothing == self.smoothing:
            return
        self.smoothing = smoothing
        self.request_data(force=True)

    def set_log_y(self, on: bool) -> None:
        self.log_y = on
        self.plot_item.setLogMode(y=on)

    def reset_zoom(self) -> None:
        if self.bar_mode:
            self._draw_bars()
            return
        self.plot_item.enableAutoRange()
        self.request_data(force=True)

    # -- data ------------------------------------------------------------------------------------------------
    def pixel_width(self) -> int:
        return max(100, int(self.plot_item.getViewBox().width()) or self.width())

    def visible_x(self) -> tuple[float, float] | None:
        """None while the view follows the data (auto range): then the whole series is asked for."""
        vb = self.plot_item.getViewBox()
        if vb.autoRangeEnabled()[0] or self.bar_mode:
            return None
        lo, hi = vb.viewRange()[0]
        return float(lo), float(hi)

    def _needs_query(self, state: _SeriesState, view: tuple[float, float] | None, buckets: int) -> bool:
        if state.pending:
            return False
        if state.loaded_count < 0 or (state.loaded_count != state.spec.count and not state.spec.live):
            return True
        if view is None:
            return state.window is not None or abs(state.buckets - buckets) > buckets // 4
        if state.window is None:
            # everything is loaded; zooming in far enough makes the per-pixel buckets too coarse
            return state.spec.count > 4 * buckets and self._zoom_ratio(view, state) > ZOOM_REQUERY
        lo, hi = state.window
        if view[0] < lo or view[1] > hi:
            return True
        return self._zoom_ratio(view, state) > ZOOM_REQUERY

    def _zoom_ratio(self, view: tuple[float, float], state: _SeriesState) -> float:
        if state.x.shape[0] < 2:
            return 1.0
        fetched = (state.window[1] - state.window[0]) if state.window else float(state.x[-1] - state.x[0])
        span = max(view[1] - view[0], 1e-12)
        ratio = fetched / span / 2.0 if state.window else fetched / span
        return max(ratio, 1.0 / max(ratio, 1e-12))

    def request_data(self, force: bool = False) -> None:
        """Query, in one worker task, every line whose data no longer fits the view (or is stale)."""
        view = self.visible_x()
        buckets = self.pixel_width()
        window = None if view is None else (view[0] - (view[1] - view[0]) / 2, view[1] + (view[1] - view[0]) / 2)
        want_buckets = buckets if window is None else buckets * 2
        batch: list[tuple[str, SeriesRequest]] = []
        for uuid, state in self.series.items():
            if force and not state.pending:
                state.loaded_count = -2 if state.loaded_count == state.spec.count else state.loaded_count
            if not self._needs_query(state, view, buckets):
                continue
            spec = state.spec
            state.pending = True
            self.queries += 1
            same = state.drawn_for == (window, buckets, self.x_mode, self.smoothing) and not force
            batch.append((uuid, SeriesRequest(uuid, self.key, want_buckets, self.x_mode,
                                              None if window is None else window[0],
                                              None if window is None else window[1], spec.start_time, spec.count,
                                              spec.live, self.smoothing, state.drawn if same else -1)))
        if not batch:
            return
        started = time.perf_counter()
        x_mode, smoothing = self.x_mode, self.smoothing
        self.ctx.tasks.submit(
            _load_timed, self.ctx.workspace.tracking, self.cache, [r for _u, r in batch],
            title=f"Load {self.key}", key=f"_plot_{id(self)}_{started}", quiet=True, owner=self,
            on_done=lambda done: self._on_loaded(batch, done[0], window, buckets, x_mode, smoothing, started,
                                                 done[1]),
            on_error=lambda _exc: self._on_failed([u for u, _r in batch]))

    def refresh_live(self, uuids: set[str]) -> None:
        """New points may have arrived for these runs: re-read them now, or right after the load in flight."""
        touched = False
        for uuid, state in self.series.items():
            if uuid not in uuids:
                continue
            if state.pending:
                state.again = True
            else:
                state.loaded_count = -1
                touched = True
        if touched:
            self.request_data()

    def _on_failed(self, uuids: list[str]) -> None:
        for uuid in uuids:
            state = self.series.get(uuid)
            if state is not None:
                state.pending = False
                state.loaded_count = state.spec.count  # do not retry in a loop; the error was posted

    def _on_loaded(self, batch: list[tuple[str, SeriesRequest]], results: list[SeriesData | LoadProblem],
                   window: tuple[float, float] | None, buckets: int, x_mode: str,
                   smoothing: tuple[str, float] | None, started: float, load_cpu_s: float = 0.0) -> None:
        cpu0 = time.thread_time()
        try:
            self._draw_loaded(batch, results, window, buckets, x_mode, smoothing, started)
        finally:
            self.load_cpu_s += load_cpu_s + time.thread_time() - cpu0

    @property
    def cpu_s(self) -> float:
        """CPU this plot has cost so far: its loads, draws and paints (the live pace's measure)."""
        return self.load_cpu_s + self.plot_widget.paint_cpu_s

    def _draw_loaded(self, batch: list[tuple[str, SeriesRequest]], results: list[SeriesData | LoadProblem],
                     window: tuple[float, float] | None, buckets: int, x_mode: str,
                     smoothing: tuple[str, float] | None, started: float) -> None:
        stale = x_mode != self.x_mode or smoothing != self.smoothing
        drew = False
        for (uuid, req), result in zip(batch, results, strict=True):
            state = self.series.get(uuid)
            if state is None:
                continue
            state.pending = False
            if stale:
                state.loaded_count = -1
                continue
            if isinstance(result, LoadProblem):
                state.problem = result.message
                state.loaded_count = state.spec.count   # tried again when the series changes (a live update)
                continue
            state.problem = ""
            state.window, state.buckets, state.loaded_count = window, buckets, req.count
            if result.unchanged and state.drawn == result.total:
                continue   # a live refresh with no new points: what is drawn stays, nothing repaints
            state.x, state.y = result.x, result.y
            state.drawn, state.drawn_for = result.total, (window, buckets, x_mode, smoothing)
            self._restyle(state)
            self._draw(state, result.smoothed)
            drew = True
        self._show_problems()
        if self.bar_mode and drew:
            self._draw_bars()
        if drew:
            # fit the auto range to the new data now, not inside the paint: a range that changes while painting
            # asks for a second paint of the whole plot (measured: two paints per live refresh)
            self.plot_item.getViewBox().prepareForPaint()
        self.last_draw_s = time.perf_counter() - started
        self.data_loaded.emit()
        again = [s for s in self.series.values() if s.again and not s.pending]
        for state in again:
            state.again = False
            state.loaded_count = -1
        if again:
            self.request_data()
            return
        if stale or any(self._needs_query(s, self.visible_x(), self.pixel_width()) for s in self.series.values()):
            self._range_timer.start()

    def _draw(self, state: _SeriesState, smoothed: np.ndarray | None) -> None:
        self.draws += 1
        x, y = state.x, state.y
        visible = state.spec.uuid not in self.hidden and not self.bar_mode
        if smoothed is not None and y.shape[0] > 1:
            if state.raw_curve is None:
                color = QColor(state.spec.color)
                color.setAlpha(70)
                state.raw_curve = pg.PlotDataItem(pen=pg.mkPen(color, width=1))
                self.plot_item.addItem(state.raw_curve)
                state.raw_curve.setZValue(-1)
            state.raw_curve.setVisible(visible)
            state.raw_curve.setData(x, y)
            state.curve.setData(x, smoothed)
        else:
            if state.raw_curve is not None:
                self.plot_item.removeItem(state.raw_curve)
                state.raw_curve = None
            state.curve.setData(x, y)

    def _show_problems(self) -> None:
        problems = sorted({f"{s.spec.label}: {s.problem}" for s in self.series.values() if s.problem})
        if not problems:
            self.problem_text.hide()
            return
        self.problem_text.setText("\n".join(problems[:3]))
        (x0, x1), (y0, y1) = self.plot_item.getViewBox().viewRange()
        self.problem_text.setPos((x0 + x1) / 2, (y0 + y1) / 2)
        self.problem_text.show()

    def drawn_data(self, uuid: str) -> tuple[np.ndarray, np.ndarray]:
        """What the curve draws (after any pyqtgraph processing): tests check spikes survive."""
        x, y = self.series[uuid].curve.getData()
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))

    def idle(self) -> bool:
        return not any(s.pending for s in self.series.values())

    # -- hover -----------------------------------------------------------------------------------------------
    def _on_mouse_moved(self, event: tuple) -> None:
        pos = event[0]
        vb = self.plot_item.getViewBox()
        if not self.plot_item.sceneBoundingRect().contains(pos) or not self.series or self.bar_mode:
            self.hover_line.hide()
            self.hover_text.hide()
            return
        point = vb.mapSceneToView(pos)
        xv = point.x()
        lines = []
        for state in self.series.values():
            if state.x.shape[0] == 0 or not state.curve.isVisible():
                continue
            i = int(np.clip(np.searchsorted(state.x, xv), 0, state.x.shape[0] - 1))
            if i > 0 and abs(state.x[i - 1] - xv) < abs(state.x[i] - xv):
                i -= 1
            lines.append(f"<span style='color:{state.spec.color}'>■</span> {html.escape(state.spec.label)}: "
                         f"{state.y[i]:.6g} @ {self._fmt_x(state.x[i])}")
        if not lines:
            return
        self.hover_line.setPos(xv)
        self.hover_line.show()
        self.hover_text.setHtml("<br>".join(lines))
        (x0, x1), (_y0, y1) = vb.viewRange()
        # keep the box inside the plot: left of the cursor on the right half
        self.hover_text.setAnchor((1, 0) if xv > (x0 + x1) / 2 else (0, 0))
        self.hover_text.setPos(xv, y1)
        self.hover_text.show()

    def _fmt_x(self, x: float) -> str:
        if self.x_mode == "step":
            return f"step {int(x)}"
        if self.x_mode == "relative":
            return f"{x:.1f}s"
        return time.strftime("%H:%M:%S", time.localtime(x))

    def leaveEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.hover_line.hide()
        self.hover_text.hide()
        super().leaveEvent(event)

    # -- export and theme ------------------------------------------------------------------------------------
    def export_png(self, path: str) -> None:
        import pyqtgraph.exporters as exporters

        exporter = exporters.ImageExporter(self.plot_item)
        exporter.parameters()["width"] = max(800, self.plot_widget.width())
        exporter.export(path)

    def apply_theme(self) -> None:
        """Background, axes, title and grid in the current theme's colours (called at once on a switch)."""
        colors = theme.plot_colors()
        theme.style_plot(self.plot_widget)
        self.plot_item.setTitle(html.escape(self.key), size="10pt", color=colors["foreground"])
        self.grid.set_colors(colors["background"], colors["foreground"])
        if self.bar_mode:
            self._draw_bars()

    def set_background(self, color: str, foreground: str) -> None:  # kept for callers of the old interface
        self.apply_theme()


def _style_key(state: _SeriesState) -> tuple:
    """What the pen and markers of a line depend on: a series that grows past a bound is styled again."""
    count = max(state.spec.count, state.drawn)
    return state.spec.color, count <= MARKERS_UP_TO, count <= 1, count < THIN_FROM


def _elide(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
