"""The Monitoring area's live dashboard: requests/s and error rate per arm, latency quantiles, in-flight and host
load, redrawn from the collector's in-memory ring within a fraction of a second of each scrape; plots keep every
spike (min/max downsampling per pixel column, tracking/downsample.py)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

from mlops_desktop.gui import theme
from mlops_desktop.tracking.downsample import minmax_indices

Source = Callable[[], dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]

# plot id -> (title, unit, [(series name, label filter or None for "every arm", legend)])
PANELS: dict[str, tuple[str, str, list[tuple[str, dict[str, str] | None, str]]]] = {
    "requests": ("Requests per second", "req/s", [("requests_per_s", {}, "all"), ("requests_per_s", None, "")]),
    "errors": ("Error rate (5xx share)", "", [("error_rate", {}, "all"), ("error_rate", None, "")]),
    "latency": ("Latency (s)", "s", [("p50_latency", {}, "p50"), ("p95_latency", {}, "p95"),
                                     ("p99_latency", {}, "p99")]),
    "load": ("In flight · targets down · host CPU/100", "", [("in_flight", {}, "in flight"),
                                                             ("targets_down", {}, "targets down"),
                                                             ("host.cpu_busy_pct", {"host": "local"}, "cpu/100")]),
}


class LivePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        theme.configure_pyqtgraph()
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[tuple[str, str, str], pg.PlotDataItem] = {}
        for i, (pid, (title, _unit, _specs)) in enumerate(PANELS.items()):
            w = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
            w.setTitle(title)
            w.setMenuEnabled(False)
            w.showGrid(x=True, y=True, alpha=0.15)
            w.getPlotItem().addLegend(offset=(-10, 10), labelTextSize="8pt")
            w.setMinimumHeight(150)
            w.getViewBox().setLimits(yMin=0)  # rates, shares, seconds and counts are never negative
            w.getAxis("left").enableAutoSIPrefix(False)
            theme.style_plot(w)
            self.plots[pid] = w
            grid.addWidget(w, i // 2, i % 2)
        self.source: Source | None = None
        self.version: Callable[[], int] | None = None
        self._drawn_version = -1
        self.last_drawn_ts = math.nan   # newest point on screen (the test measures scrape -> pixels with it)
        self.drawn_at = math.nan
        self.timer = QTimer(self)
        self.timer.setInterval(200)
        self.timer.timeout.connect(lambda: self.redraw())

    def set_source(self, source: Source | None, version: Callable[[], int] | None = None) -> None:
        """Draw from `source` (all series: {(name, labels json): (ts, values)}); `version` tells when it changed
        (None: a fixed snapshot, drawn once)."""
        self.source, self.version = source, version
        self._drawn_version = -1
        for c in self.curves.values():
            c.setData([], [])
        self.redraw(force=True)
        if version is not None:
            self.timer.start()
        else:
            self.timer.stop()

    def apply_theme(self) -> None:
        for w in self.plots.values():
            theme.style_plot(w)

    def redraw(self, force: bool = False) -> None:
        if self.source is None:
            return
        v = self.version() if self.version is not None else 0
        if not force and v == self._drawn_version:
            return
        self._drawn_version = v
        data = self.source()
        newest = -math.inf
        for pid, (_title, _unit, specs) in PANELS.items():
            plot = self.plots[pid]
            width = max(int(plot.width()), 200)
            color_i = 0
            for name, labels, legend in specs:
                for (sname, key), (ts, vals) in sorted(data.items()):
                    if sname != name:
                        continue
                    have = json.loads(key)
                    if labels is None:
                        if "arm" not in have or "target" in have:
                            continue
                        label = f"arm {have['arm']}" + (f" (version {have['version']})" if "version" in have and
                                                        have["version"] != have["arm"] else "")
                    elif have != labels:
                        continue
                    else:
                        label = legend
                    if name == "host.cpu_busy_pct":
                        vals = vals / 100.0
                    ck = (pid, name, key)
                    curve = self.curves.get(ck)
                    if curve is None:
                        color = theme.SERIES_COLORS[color_i % len(theme.SERIES_COLORS)]
                        curve = plot.plot([], [], pen=pg.mkPen(color, width=2), name=label, connect="finite")
                        self.curves[ck] = curve
                    color_i += 1
                    if len(ts) > 4 * width:
                        idx = minmax_indices(ts, vals, width)
                        ts, vals = ts[idx], vals[idx]
                    curve.setData(ts, vals, connect="finite")
                    if len(ts):
                        newest = max(newest, float(ts[-1]))
        if newest > -math.inf:
            self.last_drawn_ts = newest
            self.drawn_at = time.time()

    def stop(self) -> None:
        self.timer.stop()


def ring_source(ring: Any) -> Source:
    """A source over a collector's LiveRing."""
    def read() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        return {(name, key): ring.get(name, json.loads(key)) for name, key in ring.keys()}
    return read
