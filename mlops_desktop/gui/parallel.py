"""Compare plots (pyqtgraph): parallel coordinates (one axis per param or metric, one line per run) and a
param-vs-metric scatter. Runs keep their colour from the selection (theme.run_color); a run without a value on
an axis is still drawn, at the 'n/a' mark under that axis."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from mlops_desktop.gui import theme
from mlops_desktop.gui.compare import axis_values
from mlops_desktop.gui.theme import run_color
from mlops_desktop.textfmt import fmt_number
from mlops_desktop.tracking.entities import Run

MISSING_Y = -0.16       # where a run without a value crosses an axis (under the axis, labelled n/a)
AXIS_PX = 96            # room one axis needs for its labels


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
        self.missing: dict[str, list[str]] = {}   # axis -> runs drawn at n/a

    def set_data(self, runs: list[Run], axes: list[str], labels: list[str]) -> None:
        self._last = (runs, axes, labels)
        self.plot_item.clear()
        theme.style_plot(self)
        # an axis that no two runs have says nothing; each axis needs ~AXIS_PX for its labels
        axes = [a for a in axes if np.isfinite(axis_values(runs, a)[0]).sum() >= 2] if runs else []
        axes = axes[: max(2, self.width() // AXIS_PX)]
        self.lines, self.axes, self.missing = [], axes, {}
        if not runs or len(axes) < 2:
            return
        colors = theme.plot_colors()
        fg, muted = colors["foreground"], colors["muted"]
        columns = []
        limit = max(9, min(22, self.width() // max(1, len(axes)) // 7))
        for i, label in enumerate(axes):
            values, cats = axis_values(runs, label)
            finite = values[np.isfinite(values)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            scaled = (values - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(values), 0.5, np.nan)
            gone = ~np.isfinite(scaled)
            if gone.any():
                self.missing[label] = [labels[k] for k in np.flatnonzero(gone)]
            columns.append(np.where(gone, MISSING_Y, scaled))
            self.plot_item.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen(fg, width=1)))
            kind, name = label.split(".", 1)
            top = _elide(cats[-1] if cats else fmt_number(hi), 12)
            bottom = _elide(cats[0] if cats else fmt_number(lo), 12)
            title = pg.TextItem(html=f"<span style='color:{muted}'>{'param' if kind == 'params' else 'metric'}"
                                     f"</span><br><b>{html.escape(_elide(name, limit))}</b>",
                                anchor=(0.5, 1.0))
            title.setToolTip(label)
            title.setPos(i, 1.22 if i % 2 == 0 or len(axes) <= 4 else 1.36)
            self.plot_item.addItem(title)
            for text, y in ((top, 1.06), (bottom, -0.06)):
                item = pg.TextItem(text, color=fg, anchor=(0.5, 0.5))
                item.setPos(i, y)
                self.plot_item.addItem(item)
            if gone.any():
                na = pg.TextItem("n/a", color=muted, anchor=(0.5, 0.5))
                na.setPos(i + 0.18, MISSING_Y)
                self.plot_item.addItem(na)
        matrix = np.vstack(columns).T
        xs = np.arange(len(axes), dtype=np.float64)
        for row, (values, label) in enumerate(zip(matrix, labels, strict=True)):
            color = run_color(row)
            line = pg.PlotDataItem(xs, values, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                                   name=label)
            line.setSymbolBrush(color)
            line.setSymbolPen(pg.mkPen(color))
            self.plot_item.addItem(line)
            self.lines.append(line)
        self.plot_item.setXRange(-0.6, len(axes) - 0.4, padding=0)
        self.plot_item.setYRange(MISSING_Y - 0.08, 1.42, padding=0)

    def apply_theme(self) -> None:
        if self._last is not None:
            self.set_data(*self._last)
        else:
            theme.style_plot(self)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        fits = max(2, self.width() // AXIS_PX)
        last = self.__dict__.get("_last")  # resize events arrive while the base class is still being built
        if last is not None and fits != self._fits:
            self._fits = fits
            self.set_data(*last)


class ScatterPlot(QWidget):
    """One point per run: a param (or metric) across, a metric up; categorical params get one column each."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self.runs: list[Run] = []
        self.labels: list[str] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        bar = QHBoxLayout()
        self.x_choice = QComboBox()
        self.y_choice = QComboBox()
        for combo in (self.x_choice, self.y_choice):
            combo.setMinimumContentsLength(10)
            combo.currentIndexChanged.connect(lambda _i: self.redraw())
        bar.addWidget(QLabel("x"))
        bar.addWidget(self.x_choice, 1)
        bar.addWidget(QLabel("y"))
        bar.addWidget(self.y_choice, 1)
        layout.addLayout(bar)
        self.plot_widget = pg.PlotWidget()
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()
        self.plot_item.showGrid(x=True, y=True, alpha=0.15)
        layout.addWidget(self.plot_widget, 1)
        self.points: pg.ScatterPlotItem | None = None

    def set_data(self, runs: list[Run], labels: list[str], xs: list[str], ys: list[str]) -> None:
        self.runs, self.labels = runs, labels
        keep_x, keep_y = self.x_choice.currentData(), self.y_choice.currentData()
        for combo, options, keep in ((self.x_choice, xs + [y for y in ys if y not in xs], keep_x),
                                     (self.y_choice, ys, keep_y)):
            combo.blockSignals(True)
            combo.clear()
            for option in options:
                combo.addItem(option.split(".", 1)[1] + ("  (param)" if option.startswith("params.") else ""),
                              option)
            if keep in options:
                combo.setCurrentIndex(options.index(keep))
            combo.blockSignals(False)
        self.redraw()

    def redraw(self) -> None:
        self.plot_item.clear()
        theme.style_plot(self.plot_widget)
        x_label, y_label = self.x_choice.currentData(), self.y_choice.currentData()
        if not self.runs or not x_label or not y_label:
            return
        xv, cats = axis_values(self.runs, x_label)
        yv, _ = axis_values(self.runs, y_label)
        fg = theme.plot_colors()["foreground"]
        spots = []
        for i, (x, y) in enumerate(zip(xv, yv, strict=True)):
            if np.isfinite(x) and np.isfinite(y):
                spots.append({"pos": (x, y), "brush": pg.mkBrush(run_color(i)), "pen": pg.mkPen(run_color(i)),
                              "size": 11, "data": self.labels[i]})
                text = pg.TextItem(_elide(self.labels[i], 16), color=fg, anchor=(0, 1))
                text.setPos(x, y)
                self.plot_item.addItem(text)
        self.points = pg.ScatterPlotItem(spots=spots)
        self.plot_item.addItem(self.points)
        bottom = self.plot_item.getAxis("bottom")
        bottom.setTicks([list(enumerate(cats))] if cats else None)
        self.plot_item.setLabel("bottom", x_label.split(".", 1)[1], color=fg)
        self.plot_item.setLabel("left", y_label.split(".", 1)[1], color=fg)

    def apply_theme(self) -> None:
        self.redraw()


def _elide(text: str, limit: int = 12) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
