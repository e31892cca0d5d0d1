"""Grouped charts: runs grouped by a param or tag, one line per group (the mean across its runs) over a band
from the group's minimum to its maximum, as W&B's grouped charts. Loading and aggregation run in a worker."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from mlops_desktop.gui import theme
from mlops_desktop.gui.plot_data import HistoryCache, _full_history, _sorted_by, x_values
from mlops_desktop.gui.plot_items import GridLines, MetricAxis
from mlops_desktop.gui.series_math import group_band
from mlops_desktop.tracking.entities import Run

MAX_GROUPED_RUNS = 200
NONE_LABEL = "(not set)"

Member = tuple[str, int, float, bool]   # uuid, points, start time, live


def group_label(run: Run, group_by: str) -> str:
    """'lr=0.1' for group_by 'params.lr'; runs without it form one group."""
    kind, _, key = group_by.partition(".")
    source = run.params if kind == "params" else run.tags
    value = source.get(key)
    return f"{key}={value}" if value is not None else f"{key} {NONE_LABEL}"


def group_runs(runs: list[Run], group_by: str) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(group_label(run, group_by), []).append(run)
    return dict(sorted(groups.items(), key=lambda kv: _natural(kv[0])))


def _natural(label: str) -> tuple:
    value = label.split("=", 1)[-1]
    try:
        return (0, float(value), label)
    except ValueError:
        return (1, 0.0, label)


def load_bands(store: Any, cache: HistoryCache, key: str, groups: list[tuple[str, list[Member]]], x_mode: str,
               *, progress: Any = None) -> list[tuple[str, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Worker: (label, runs, x, mean, min, max) per group, each run's full series carried onto a common grid."""
    out = []
    axis = "step" if x_mode == "step" else "time"
    for label, members in groups:
        series = []
        for uuid, count, start, live in members:
            if progress is not None:
                progress.check()
            entry = _full_history(store, cache, uuid, key, count, live)
            hist = _sorted_by(entry.hist, axis)
            series.append((x_values(hist, x_mode, start), hist.values.astype(np.float64, copy=False)))
        grid, mean, lo, hi = group_band(series)
        out.append((label, len(members), grid, mean, lo, hi))
    return out


class BandPlot(QWidget):
    """One metric: per group a mean line and a min..max band."""

    def __init__(self, ctx: Any, key: str, cache: HistoryCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self.ctx, self.key, self.cache = ctx, key, cache
        self.groups: list[tuple[str, list[Member]]] = []
        self.x_mode = "step"
        self.pending = False
        self.dirty = False
        self.drawn: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot_widget = pg.PlotWidget(axisItems={"bottom": MetricAxis("bottom"), "left": MetricAxis("left")})
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()
        self.grid = GridLines(self.plot_item)
        self.plot_item.getViewBox().addItem(self.grid, ignoreBounds=True)
        self.plot_widget.setMinimumHeight(200)
        layout.addWidget(self.plot_widget)
        self.apply_theme()

    def set_groups(self, groups: list[tuple[str, list[Member]]], x_mode: str = "step") -> None:
        self.groups, self.x_mode = groups, x_mode
        self.reload()

    def reload(self) -> None:
        if self.pending:
            self.dirty = True
            return
        self.pending, self.dirty = True, False
        self.ctx.tasks.submit(load_bands, self.ctx.workspace.tracking, self.cache, self.key, list(self.groups),
                              self.x_mode, title=f"Group {self.key}", key=f"_bands_{id(self)}", quiet=True,
                              owner=self, on_done=self._draw, on_error=lambda _e: self._done())

    def _done(self) -> None:
        self.pending = False
        if self.dirty:
            self.reload()

    def _draw(self, bands: list) -> None:
        self.plot_item.clear()
        self.plot_item.getViewBox().addItem(self.grid, ignoreBounds=True)
        self.drawn = {}
        for i, (label, _n, x, mean, lo, hi) in enumerate(bands):
            if not x.shape[0]:
                continue
            color = QColor(theme.run_color(i))
            fill = QColor(color)
            fill.setAlpha(55)
            low = pg.PlotDataItem(x, lo, pen=pg.mkPen(fill, width=1))
            high = pg.PlotDataItem(x, hi, pen=pg.mkPen(fill, width=1))
            self.plot_item.addItem(low)
            self.plot_item.addItem(high)
            self.plot_item.addItem(pg.FillBetweenItem(low, high, brush=pg.mkBrush(fill)))
            line = pg.PlotDataItem(x, mean, pen=pg.mkPen(color, width=2), name=label)
            if x.shape[0] <= 30:
                line.setSymbol("o")
                line.setSymbolBrush(color)
                line.setSymbolSize(7)
            self.plot_item.addItem(line)
            self.drawn[label] = (x, mean, lo, hi)
        self._done()

    def idle(self) -> bool:
        return not self.pending

    def apply_theme(self) -> None:
        colors = theme.plot_colors()
        theme.style_plot(self.plot_widget)
        self.plot_item.setTitle(html.escape(self.key) + "  <span style='font-weight:normal'>(mean, min–max)</span>",
                                size="10pt", color=colors["foreground"])
        self.grid.set_colors(colors["background"], colors["foreground"])
