"""Metric plots (pyqtgraph): one plot per metric overlaying runs, min/max-downsampled per pixel, re-queried on zoom.

``MetricPlot`` draws; plot_data.py (no Qt) loads what it asks for. Each series is fetched as min/max per bucket
with buckets = plot width in pixels over the visible x range widened by half a view on each side
(``store.metric_history_downsampled``, or the same downsampling over a cached full history, which a live run
extends with its new points only), so
a single spike in a million points stays visible at any zoom. Panning inside the fetched window needs no new
query; zooming in or out by more than ZOOM_REQUERY re-queries, in a worker, through the task runner.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
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
    SeriesSpec,
    export_csv,
    load_series,
    smooth_ema,
)
from mlops_desktop.gui.views.base import AppContext


@dataclass
class _SeriesState:
    spec: SeriesSpec
    curve: pg.PlotDataItem
    raw_curve: pg.PlotDataItem | None = None
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    window: tuple[float, float] | None = None   # x range fetched (None: everything)
    buckets: int = 0
    loaded_count: int = -1
    pending: bool = False


INPLOT_LEGEND_MAX = 3


class MetricPlot(QWidget):
    """One metric, N runs overlaid. Call ``set_series``; the plot fetches what its size and range need."""

    data_loaded = Signal()

    def __init__(self, ctx: AppContext, key: str, parent: QWidget | None = None,
                 cache: HistoryCache | None = None) -> None:
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self.ctx = ctx
        self.key = key
        self.cache = cache if cache is not None else HistoryCache()
        self.x_mode = "step"
        self.smoothing = 0.0
        self.log_y = False
        self.series: dict[str, _SeriesState] = {}
        self.hidden: set[str] = set()
        self.queries = 0
        self.last_draw_s = 0.0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot_widget = pg.PlotWidget(axisItems={"bottom": self._make_axis()})
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setTitle(key, size="10pt")
        self.plot_item.showGrid(x=True, y=True, alpha=0.15)
        self.plot_item.setMenuEnabled(False)
        legend_bg = (23, 24, 26, 170) if theme.current_mode() == "dark" else (255, 255, 255, 190)
        self.legend = self.plot_item.addLegend(offset=(-8, 8), labelTextSize="8pt", brush=pg.mkBrush(*legend_bg))
        self.plot_widget.setMinimumHeight(200)
        layout.addWidget(self.plot_widget)
        self.hover_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((128, 128, 128, 120)))
        self.hover_text = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(0, 0, 0, 150), color=(255, 255, 255))
        self.hover_line.setZValue(50)
        self.hover_text.setZValue(51)
        self.hover_line.hide()
        self.hover_text.hide()
        self.plot_item.addItem(self.hover_line, ignoreBounds=True)
        self.plot_item.addItem(self.hover_text, ignoreBounds=True)
        self._hover_proxy = pg.SignalProxy(self.plot_widget.scene().sigMouseMoved, rateLimit=30,
                                           slot=self._on_mouse_moved)
        self._range_timer = QTimer(self)
        self._range_timer.setSingleShot(True)
        # throttle, not debounce: during a long drag the detail still catches up every 120 ms
        self._range_timer.setInterval(120)
        self._range_timer.timeout.connect(self.request_data)
        self.plot_item.getViewBox().sigXRangeChanged.connect(self._on_range_changed)

    def _on_range_changed(self, *_args: Any) -> None:
        if not self._range_timer.isActive():
            self._range_timer.start()

    def _make_axis(self) -> pg.AxisItem:
        return pg.DateAxisItem(orientation="bottom") if self.x_mode == "wall" else pg.AxisItem(orientation="bottom")

    # -- configuration ---------------------------------------------------------------------------------------
    def set_series(self, specs: list[SeriesSpec]) -> None:
        wanted = {s.uuid: s for s in specs}
        for uuid in list(self.series):
            if uuid not in wanted:
                state = self.series.pop(uuid)
                self.plot_item.removeItem(state.curve)
                if state.raw_curve is not None:
                    self.plot_item.removeItem(state.raw_curve)
                self.legend.removeItem(state.curve)
        for uuid, spec in wanted.items():
            existing = self.series.get(uuid)
            if existing is None:
                # Qt draws 1 px (cosmetic) lines several times faster than wider ones: keep wide pens for short series
                width = 2 if spec.count < 2000 else 1
                curve = pg.PlotDataItem(pen=pg.mkPen(spec.color, width=width), name=spec.label, connect="finite")
                curve.setClipToView(False)   # clipping is done by the store query, with margins
                self.plot_item.addItem(curve)
                self.series[uuid] = _SeriesState(spec, curve)
                curve.setVisible(uuid not in self.hidden)
            else:
                if spec.count != existing.spec.count:
                    existing.loaded_count = -1
                existing.spec = spec
        # with many runs the in-plot legend would hide the curves: the panel's shared legend names them then
        self.legend.setVisible(len(self.series) <= INPLOT_LEGEND_MAX)
        self.request_data()

    def set_run_visible(self, uuid: str, visible: bool) -> None:
        """Show or hide one run's line (the shared legend's check boxes); hover skips hidden lines."""
        if visible:
            self.hidden.discard(uuid)
        else:
            self.hidden.add(uuid)
        state = self.series.get(uuid)
        if state is not None:
            state.curve.setVisible(visible)
            if state.raw_curve is not None:
                state.raw_curve.setVisible(visible)

    def set_x_mode(self, mode: str) -> None:
        if mode == self.x_mode:
            return
        self.x_mode = mode
        self.plot_item.setAxisItems({"bottom": self._make_axis()})
        self.plot_item.setLabel("bottom", {"step": "step", "relative": "time since start (s)", "wall": ""}[mode])
        for state in self.series.values():
            state.x, state.y, state.window, state.loaded_count = np.zeros(0), np.zeros(0), None, -1
        self.plot_item.enableAutoRange()
        self.request_data(force=True)

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = max(0.0, min(0.99, weight))
        for state in self.series.values():
            self._draw(state)

    def set_log_y(self, on: bool) -> None:
        self.log_y = on
        self.plot_item.setLogMode(y=on)

    def reset_zoom(self) -> None:
        self.plot_item.enableAutoRange()
        self.request_data(force=True)

    # -- data ------------------------------------------------------------------------------------------------
    def pixel_width(self) -> int:
        return max(100, int(self.plot_item.getViewBox().width()) or self.width())

    def visible_x(self) -> tuple[float, float] | None:
        """None while the view follows the data (auto range): then the whole series is asked for."""
        vb = self.plot_item.getViewBox()
        if vb.autoRangeEnabled()[0]:
            return None
        lo, hi = vb.viewRange()[0]
        return float(lo), float(hi)

    def _needs_query(self, state: _SeriesState, view: tuple[float, float] | None, buckets: int) -> bool:
        if state.pending:
            return False
        if state.loaded_count != state.spec.count or state.loaded_count < 0:
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
        view = self.visible_x()
        buckets = self.pixel_width()
        for uuid, state in self.series.items():
            if force and not state.pending:
                state.loaded_count = -2 if state.loaded_count == state.spec.count else state.loaded_count
            if not self._needs_query(state, view, buckets):
                continue
            if view is None:
                window = None
            else:
                span = view[1] - view[0]
                window = (view[0] - span / 2, view[1] + span / 2)
            want_buckets = buckets if window is None else buckets * 2
            state.pending = True
            count = state.spec.count
            self.queries += 1
            started = time.perf_counter()
            self.ctx.tasks.submit(
                load_series, self.ctx.workspace.tracking, uuid, self.key, want_buckets, self.x_mode,
                None if window is None else window[0], None if window is None else window[1],
                state.spec.start_time, self.cache, count, live=state.spec.live,
                title=f"Load {self.key}", key=f"_plot_{id(self)}_{uuid}", quiet=True, owner=self,
                on_done=lambda xy, u=uuid, w=window, b=buckets, c=count, m=self.x_mode, t=started:
                    self._on_loaded(u, xy, w, b, c, m, t),
                on_error=lambda _exc, u=uuid: self._on_failed(u))

    def _on_failed(self, uuid: str) -> None:
        state = self.series.get(uuid)
        if state is not None:
            state.pending = False
            state.loaded_count = state.spec.count  # do not retry in a loop; the error was posted

    def _on_loaded(self, uuid: str, xy: tuple[np.ndarray, np.ndarray], window: tuple[float, float] | None,
                   buckets: int, count: int, x_mode: str, started: float) -> None:
        state = self.series.get(uuid)
        if state is None:
            return
        state.pending = False
        if x_mode != self.x_mode:
            self.request_data()
            return
        state.x, state.y = xy
        state.window, state.buckets, state.loaded_count = window, buckets, count
        self._draw(state)
        self.last_draw_s = time.perf_counter() - started
        self.data_loaded.emit()
        if any(self._needs_query(s, self.visible_x(), self.pixel_width()) for s in self.series.values()):
            self._range_timer.start()

    def _draw(self, state: _SeriesState) -> None:
        x, y = state.x, state.y
        if self.smoothing > 0 and y.shape[0] > 1:
            if state.raw_curve is None:
                color = QColor(state.spec.color)
                color.setAlpha(70)
                state.raw_curve = pg.PlotDataItem(pen=pg.mkPen(color, width=1), connect="finite")
                self.plot_item.addItem(state.raw_curve)
                state.raw_curve.setZValue(-1)
            state.raw_curve.setData(x, y)
            state.curve.setData(x, smooth_ema(y, self.smoothing))
        else:
            if state.raw_curve is not None:
                self.plot_item.removeItem(state.raw_curve)
                state.raw_curve = None
            state.curve.setData(x, y)

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
        if not self.plot_item.sceneBoundingRect().contains(pos) or not self.series:
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
        self.hover_text.setPos(xv, vb.viewRange()[1][1])
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

    # -- export ----------------------------------------------------------------------------------------------
    def export_png(self, path: str) -> None:
        import pyqtgraph.exporters as exporters

        exporter = exporters.ImageExporter(self.plot_item)
        exporter.parameters()["width"] = max(800, self.plot_widget.width())
        exporter.export(path)

    def set_background(self, color: str, foreground: str) -> None:
        self.plot_widget.setBackground(color)
        for name in ("left", "bottom"):
            axis = self.plot_item.getAxis(name)
            axis.setPen(foreground)
            axis.setTextPen(foreground)
