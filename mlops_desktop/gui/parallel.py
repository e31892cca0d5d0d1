"""Parallel-coordinates plot (pyqtgraph): one vertical axis per param or metric, one polyline per run."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QWidget

from mlops_desktop.gui import theme
from mlops_desktop.gui.compare import axis_values
from mlops_desktop.gui.runs_model import fmt_number
from mlops_desktop.gui.theme import SERIES_COLORS, current_mode
from mlops_desktop.tracking.entities import Run


class ParallelCoordinates(pg.PlotWidget):
    """One vertical axis per param/metric, one polyline per run; each axis scaled to its own min..max."""

    def __init__(self, parent: QWidget | None = None) -> None:
        theme.configure_pyqtgraph()
        super().__init__(parent)
        self.plot_item = self.getPlotItem()
        self.plot_item.hideAxis("left")
        self.plot_item.hideAxis("bottom")
        self.plot_item.setMouseEnabled(x=False, y=False)
        self.plot_item.setMenuEnabled(False)
        self.hideButtons()
        self.lines: list[pg.PlotDataItem] = []
        self._last: tuple[list[Run], list[str], list[str]] | None = None
        self._fits = 0
        self.axes: list[str] = []

    def set_data(self, runs: list[Run], axes: list[str], labels: list[str]) -> None:
        self._last = (runs, axes, labels)
        self.plot_item.clear()
        # an axis only one run has says nothing; and each axis needs ~90 px for its labels
        axes = [a for a in axes if np.isfinite(axis_values(runs, a)[0]).sum() >= 2] if runs else []
        axes = axes[: max(2, self.width() // 90)]
        self.lines, self.axes = [], axes
        if not runs or len(axes) < 2:
            return
        fg = "#c9d1d9" if current_mode() == "dark" else "#444c56"
        columns = []
        for i, label in enumerate(axes):
            values, cats = axis_values(runs, label)
            finite = values[np.isfinite(values)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            span = hi - lo if hi > lo else 1.0
            columns.append((values - lo) / span if hi > lo else np.where(np.isfinite(values), 0.5, np.nan))
            self.plot_item.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen(fg, width=1)))
            name = _elide(label.split(".", 1)[1])
            top = _elide(cats[-1] if cats else fmt_number(hi))
            bottom = _elide(cats[0] if cats else fmt_number(lo))
            name_y = 1.12 if i % 2 == 0 or len(axes) <= 4 else 1.19   # stagger names of neighbouring axes
            for text, y, anchor in ((name, name_y, (0.5, 0.5)), (top, 1.04, (0.5, 0.5)),
                                    (bottom, -0.05, (0.5, 0.5))):
                item = pg.TextItem(text, color=fg, anchor=anchor)
                item.setPos(i, y)
                self.plot_item.addItem(item)
        matrix = np.vstack(columns).T
        xs = np.arange(len(axes), dtype=np.float64)
        for row, (values, label) in enumerate(zip(matrix, labels, strict=True)):
            if not np.isfinite(values).any():
                continue  # this run has none of the compared fields
            line = pg.PlotDataItem(xs, values, pen=pg.mkPen(SERIES_COLORS[row % len(SERIES_COLORS)], width=2),
                                   symbol="o", symbolSize=5, connect="finite", name=label)
            line.setSymbolBrush(SERIES_COLORS[row % len(SERIES_COLORS)])
            self.plot_item.addItem(line)
            self.lines.append(line)
        self.plot_item.setXRange(-0.65, len(axes) - 0.35, padding=0)
        self.plot_item.setYRange(-0.12, 1.25, padding=0)


    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        fits = max(2, self.width() // 90)
        last = self.__dict__.get("_last")  # resize events arrive while the base class is still being built
        if last is not None and fits != self._fits:
            self._fits = fits
            self.set_data(*last)


def _elide(text: str, limit: int = 12) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
