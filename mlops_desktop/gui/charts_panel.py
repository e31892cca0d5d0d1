"""The charts tab: one MetricPlot per metric of the selected runs, with x mode, smoothing, log scale and export."""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.plot_data import X_MODES, HistoryCache, SeriesSpec, export_csv
from mlops_desktop.gui.theme import SERIES_COLORS, current_mode
from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.tracking.entities import Run

MAX_PLOTS = 36
# Set once mlops_desktop.gui.charts (and pyqtgraph, ~0.3 s) has been imported by a worker: the GUI thread never
# pays that import, it shows "Loading charts…" meanwhile.
_CHARTS_IMPORTED = threading.Event()


def import_charts(*, progress: Any = None) -> None:
    import mlops_desktop.gui.charts  # noqa: F401 - the import is the work

    _CHARTS_IMPORTED.set()


class ChartsPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.runs: list[Run] = []
        self.plots: dict[str, Any] = {}   # metric key -> charts.MetricPlot (pyqtgraph loads on the first plot)
        self.cache = HistoryCache()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("X axis"))
        self.x_mode = QComboBox()
        for mode, label in X_MODES.items():
            self.x_mode.addItem(label, mode)
        self.x_mode.currentIndexChanged.connect(lambda _i: self._apply_options())
        bar.addWidget(self.x_mode)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Smoothing"))
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setFixedWidth(110)
        self.smoothing.valueChanged.connect(lambda _v: self._apply_options())
        bar.addWidget(self.smoothing)
        self.log_y = QCheckBox("Log scale")
        self.log_y.toggled.connect(lambda _on: self._apply_options())
        bar.addWidget(self.log_y)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter metrics…")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMaximumWidth(200)
        self.filter.textChanged.connect(lambda _t: self._rebuild())
        bar.addWidget(self.filter)
        bar.addStretch(1)
        reset = QPushButton("Reset zoom")
        reset.clicked.connect(lambda: [p.reset_zoom() for p in self.plots.values()])
        bar.addWidget(reset)
        export = QToolButton()
        export.setText("Export")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(export)
        menu.addAction("Charts as PNG…", self.export_png)
        menu.addAction("Points as CSV…", self.export_csv)
        export.setMenu(menu)
        bar.addWidget(export)
        layout.addLayout(bar)
        # shared legend: one check box per run, in the run's line colour; unticking hides it in every plot
        self.legend_host = QWidget()
        self.legend_grid = QGridLayout(self.legend_host)
        self.legend_grid.setContentsMargins(0, 2, 0, 2)
        self.legend_grid.setHorizontalSpacing(14)
        self.legend_boxes: dict[str, QCheckBox] = {}
        self.hidden_runs: set[str] = set()
        layout.addWidget(self.legend_host)
        self.capped = QLabel("")
        self.capped.setObjectName("muted")
        self.capped.hide()
        layout.addWidget(self.capped)
        self.empty = QLabel(self._nothing_selected_text())
        self.empty.setWordWrap(True)
        self.empty.setObjectName("muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty, 1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.scroll_area.setWidget(self.grid_host)
        layout.addWidget(self.scroll_area, 1)
        self.scroll_area.hide()

    # -- content ---------------------------------------------------------------------------------------------
    def set_runs(self, runs: list[Run], selected: int | None = None) -> None:
        """Plot ``runs``; ``selected`` is how many the user picked (more than are plotted: say so)."""
        self.runs = list(runs)
        self._rebuild_legend()
        if selected is not None:
            self.capped.setText(f"Plotting the first {len(runs)} of {selected} selected runs."
                                if selected > len(runs) else "")
            self.capped.setVisible(selected > len(runs))
        self._rebuild()

    def _rebuild_legend(self) -> None:
        uuids = [r.uuid for r in self.runs]
        if list(self.legend_boxes) == uuids:
            return
        while self.legend_grid.count():
            item = self.legend_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.legend_boxes = {}
        self.hidden_runs &= set(uuids)
        columns = max(1, (self.width() or 900) // 190)
        for i, run in enumerate(self.runs if len(self.runs) > 1 else []):
            box = QCheckBox(run.name or run.uuid[:8])
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            box.setStyleSheet(f"QCheckBox {{ color: {color}; font-weight: 600; }}")
            box.setChecked(run.uuid not in self.hidden_runs)
            box.setToolTip(f"Show or hide {run.name or run.uuid} in every chart")
            box.toggled.connect(lambda on, u=run.uuid: self.set_run_visible(u, on))
            self.legend_grid.addWidget(box, i // columns, i % columns)
            self.legend_boxes[run.uuid] = box
        for c in range(self.legend_grid.columnCount()):
            self.legend_grid.setColumnStretch(c, 0)
        self.legend_grid.setColumnStretch(columns, 1)  # pack the boxes to the left
        self.legend_host.setVisible(bool(self.legend_boxes))

    def set_run_visible(self, uuid: str, visible: bool) -> None:
        if visible:
            self.hidden_runs.discard(uuid)
        else:
            self.hidden_runs.add(uuid)
        for plot in self.plots.values():
            plot.set_run_visible(uuid, visible)

    def metric_keys(self) -> list[str]:
        keys = sorted({k for r in self.runs for k in r.metrics})
        text = self.filter.text().strip().lower()
        return [k for k in keys if text in k.lower()][:MAX_PLOTS]

    def specs_for(self, key: str) -> list[SeriesSpec]:
        specs = []
        for i, run in enumerate(self.runs):
            summary = run.metrics.get(key)
            if summary is None:
                continue
            specs.append(SeriesSpec(run.uuid, key, run.name or run.uuid[:8], SERIES_COLORS[i % len(SERIES_COLORS)],
                                    run.start_time, summary.count, live=run.status == "running"))
        return specs

    def _rebuild(self) -> None:
        keys = self.metric_keys()
        if keys and not _CHARTS_IMPORTED.is_set():
            self.empty.setText("Loading charts…")
            self.empty.show()
            self.scroll_area.hide()
            self.ctx.tasks.submit(import_charts, title="Load plotting", key="_import_charts", quiet=True,
                                  owner=self, on_done=lambda _r: self._rebuild())
            return
        for key in list(self.plots):
            if key not in keys:
                plot = self.plots.pop(key)
                self.grid.removeWidget(plot)
                plot.deleteLater()
        columns = 3 if self.width() > 1500 else 2 if len(keys) > 1 else 1
        for i, key in enumerate(keys):
            plot = self.plots.get(key)
            if plot is None:
                from mlops_desktop.gui.charts import MetricPlot

                plot = MetricPlot(self.ctx, key, cache=self.cache)
                plot.hidden = set(self.hidden_runs)
                self._configure(plot)
                self.plots[key] = plot
            self.grid.addWidget(plot, i // columns, i % columns)
            plot.set_series(self.specs_for(key))
        self.empty.setVisible(not keys)
        self.scroll_area.setVisible(bool(keys))
        if not self.runs:
            self.empty.setText(self._nothing_selected_text())
        elif not keys:
            self.empty.setText("The selected runs have no metrics" + (" matching the filter." if self.filter.text()
                                                                      else " yet."))

    def _nothing_selected_text(self) -> str:
        if self.ctx.workspace.db.query("SELECT EXISTS (SELECT 1 FROM runs WHERE deleted_at IS NULL)")[0][0]:
            return "Select one or more runs to plot their metrics."
        return ("No runs in this workspace yet.\n\nLog one from Python:  import mlops_desktop.tracking as mt; "
                "mt.start_run(); mt.log_metric('loss', 0.5)\nor fill it with real demo runs: File ▸ Fill with "
                "demo data  (or `mlops-desktop demo`).")

    def _configure(self, plot: Any) -> None:
        plot.set_x_mode(self.x_mode.currentData())
        plot.set_smoothing(self.smoothing.value() / 100)
        plot.set_log_y(self.log_y.isChecked())
        dark = current_mode() == "dark"
        plot.set_background("#17181a" if dark else "#ffffff", "#c9d1d9" if dark else "#444c56")

    def _apply_options(self) -> None:
        for plot in self.plots.values():
            self._configure(plot)

    def invalidate_running(self) -> None:
        """New points may have arrived for running runs: re-query their series."""
        running = {r.uuid for r in self.runs if r.status == "running"}
        for plot in self.plots.values():
            touched = False
            for uuid, state in plot.series.items():
                if uuid in running and not state.pending:
                    state.loaded_count = -1
                    touched = True
            if touched:
                plot.request_data()

    def idle(self) -> bool:
        return all(p.idle() for p in self.plots.values())

    def on_theme_changed(self) -> None:
        self._apply_options()

    # -- export ----------------------------------------------------------------------------------------------
    def export_png(self) -> None:
        if not self.plots:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export charts as PNG into")
        if not folder:
            return
        for key, plot in self.plots.items():
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
            plot.export_png(f"{folder}/{safe}.png")
        self.ctx.notifications.success("Charts exported", f"{len(self.plots)} PNG files in {folder}")

    def export_csv(self) -> None:
        if not self.plots:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export points as CSV", "metrics.csv", "CSV (*.csv)")
        if not path:
            return
        series = [(s.uuid, s.label, key) for key in self.plots for s in self.specs_for(key)]
        self.ctx.tasks.submit(export_csv, self.ctx.workspace.tracking, series, path, title="Export CSV",
                              on_done=lambda n: self.ctx.notifications.success("CSV exported",
                                                                               f"{n} points in {path}"),
                              quiet=True)
