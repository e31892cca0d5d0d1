"""pyqtgraph pieces the metric plots share: a cheap grid, readable log-scale ticks, and one number format.

pyqtgraph draws its grid as part of each axis, with translucent lines replayed from a QPicture on every frame;
with 10 curves that was about half the frame time of a pan or zoom (profiled: 7-9 ms of 15 ms CPU per frame).
``GridLines`` draws the same major and minor lines as opaque cosmetic pens in one ``drawLines`` call each
(~0.6 ms), in colours blended for the theme. It asks the axis for the ticks the axis itself draws (the same
lines, computed once per view range: ``MetricAxis`` remembers its last answer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def blend(background: str, foreground: str, amount: float) -> QColor:
    """``amount`` of the foreground over the background, as an opaque colour (cheap to draw, same look)."""
    bg, fg = QColor(background), QColor(foreground)
    return QColor(round(bg.red() + (fg.red() - bg.red()) * amount),
                  round(bg.green() + (fg.green() - bg.green()) * amount),
                  round(bg.blue() + (fg.blue() - bg.blue()) * amount))


def fmt_tick(value: float, exponent: bool) -> str:
    """One format per axis: plain decimals, or powers of ten ('10⁻³', '2·10⁻³') when the range needs them."""
    if value == 0:
        return "0"
    if not exponent:
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    power = math.floor(math.log10(abs(value)) + 1e-9)
    mantissa = value / 10 ** power
    lead = f"{mantissa:.3g}"
    head = "" if lead == "1" else ("−" if lead == "-1" else f"{lead}·")
    return f"{head}10{str(power).translate(SUPERSCRIPT)}"


class MetricAxis(pg.AxisItem):
    """An axis whose log mode shows decades as labelled ticks with unlabelled 2..9 minor ticks, and whose
    labels use one number format (plain, or powers of ten for very small or large values)."""

    _memo: tuple[tuple, list] | None = None
    drawn_size = 0.0   # the axis's length in pixels the last time it asked for its ticks
    _drawing = False

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802, N803 - pyqtgraph API
        """The ticks, computed once per range and length (the grid asks for the same ones on every frame)."""
        if self._drawing:
            self.drawn_size = size
        key = (minVal, maxVal, size, self.logMode, self.scale, self._tickSpacing, self._tickDensity)
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1]
        ticks = super().tickValues(minVal, maxVal, size)
        self._memo = (key, ticks)
        return ticks

    def grid_ticks(self, lo: float, hi: float, size: float) -> list:
        """The ticks the axis draws over [lo, hi] (at its own length, once it has drawn), for the grid."""
        return self.tickValues(lo, hi, self.drawn_size or size)

    def generateDrawSpecs(self, p: Any) -> Any:  # noqa: N802 - pyqtgraph API
        self._drawing = True
        try:
            return super().generateDrawSpecs(p)
        finally:
            self._drawing = False

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: Any) -> list:  # noqa: N802
        lo, hi = sorted((minVal, maxVal))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return []
        first, last = math.floor(lo), math.ceil(hi)
        decades = last - first
        if decades <= 1 and hi - lo < 0.7:
            # less than a decade in view: label 1..9 times the power of ten (a few of them when crowded)
            step = 1 if size > 240 else 2
            values = [d + math.log10(m) for d in range(first - 1, last + 1) for m in range(1, 10, step)]
            return [(None, [v for v in values if lo <= v <= hi])]
        every = max(1, math.ceil(decades / max(2.0, size / 45)))
        major = [float(d) for d in range(first, last + 1) if d % every == 0 and lo <= d <= hi]
        minor: list[float] = []
        if every == 1 and size / max(1, decades) > 40:
            minor = [d + math.log10(m) for d in range(first, last) for m in range(2, 10)]
            minor = [v for v in minor if lo <= v <= hi]
        return [(None, major), (None, minor)]

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        real = [10 ** v * scale for v in values]
        exponent = any(abs(r) >= 1e4 or abs(r) < 1e-3 for r in real if r)
        return [fmt_tick(r, exponent) for r in real]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        if self.logMode:
            return self.logTickStrings(values, scale, spacing)
        real = [v * scale for v in values]
        big = any(abs(r) >= 1e6 or (r and abs(r) < 1e-4) for r in real)
        if big:
            return [fmt_tick(r, True) for r in real]
        places = max(0, math.ceil(-math.log10(spacing * scale))) if spacing > 0 else 0
        return [f"{r:.{places}f}" if places else f"{r:.0f}" for r in real]


class GridLines(pg.GraphicsObject):
    """Major and minor grid lines at the axes' ticks, drawn with opaque 1 px pens under the curves."""

    def __init__(self, plot_item: pg.PlotItem) -> None:
        super().__init__()
        self.plot_item = plot_item
        self.major = QPen(QColor("#e0e0e0"))
        self.minor = QPen(QColor("#f0f0f0"))
        for pen in (self.major, self.minor):
            pen.setCosmetic(True)
            pen.setWidth(0)
        self.setZValue(-1000)
        plot_item.getViewBox().sigRangeChanged.connect(self._on_range)

    def set_colors(self, background: str, foreground: str) -> None:
        self.major.setColor(blend(background, foreground, 0.16))
        self.minor.setColor(blend(background, foreground, 0.07))
        self.update()

    def _on_range(self, *_args: Any) -> None:
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        (x0, x1), (y0, y1) = self.plot_item.getViewBox().viewRange()
        return QRectF(x0, y0, x1 - x0, y1 - y0)

    def paint(self, painter: QPainter, *_args: Any) -> None:
        vb = self.plot_item.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        width, height = max(1.0, vb.width()), max(1.0, vb.height())
        bottom, left = self.plot_item.getAxis("bottom"), self.plot_item.getAxis("left")
        xticks = _levels(_ticks(bottom, x0, x1, width)) if bottom.isVisible() else []
        yticks = _levels(_ticks(left, y0, y1, height)) if left.isVisible() else []
        for level, pen in ((1, self.minor), (0, self.major)):
            lines = []
            if len(xticks) > level:
                lines += [QLineF(v, y0, v, y1) for v in xticks[level]]
            if len(yticks) > level:
                lines += [QLineF(x0, v, x1, v) for v in yticks[level]]
            if lines:
                painter.setPen(pen)
                painter.drawLines(lines)


def _ticks(axis: pg.AxisItem, lo: float, hi: float, size: float) -> list:
    if isinstance(axis, MetricAxis):
        return axis.grid_ticks(lo, hi, size)
    if isinstance(axis, pg.DateAxisItem) and not hasattr(axis, "fontMetrics"):
        return []   # a date axis measures its labels with the font it is first painted with: no grid before
    return axis.tickValues(lo, hi, size)


def _levels(ticks: list) -> list[list[float]]:
    """The first two tick levels as plain lists (pyqtgraph gives (spacing, values) per level)."""
    out = [list(np.asarray(values, dtype=np.float64)) for _spacing, values in ticks[:2]]
    if len(ticks) > 2:  # pyqtgraph's third level joins the minor lines
        out[1] += list(np.asarray(ticks[2][1], dtype=np.float64))
    return out


class TimedPlotWidget(pg.PlotWidget):
    """A PlotWidget that adds up the GUI thread's CPU its paints take (`paint_cpu_s`): a live refresh's cost is
    mostly the repaint it causes, and the live pace (live.RefreshPace) needs that cost to choose its wait."""

    paint_cpu_s = 0.0

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        import time

        started = time.thread_time()
        try:
            super().paintEvent(event)
        finally:
            self.paint_cpu_s += time.thread_time() - started
