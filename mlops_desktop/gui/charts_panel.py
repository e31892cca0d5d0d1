"""The charts tab: one MetricPlot per metric of the selected runs, with x mode, smoothing, log scale and export.

The legend sits above the plots (outside them, one check box per run in its line colour, hideable); zooming or
panning one plot moves every other plot to the same x range (they share the x axis); the x mode, smoothing, log
scale, link and legend choices are kept across restarts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from PySide6.QtCore import QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
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

from mlops_desktop.gui.live import RefreshPace
from mlops_desktop.gui.plot_data import X_MODES, HistoryCache, SeriesSpec, export_csv
from mlops_desktop.gui.series_math import SMOOTHING_KINDS
from mlops_desktop.gui.theme import run_color
from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.tracking.entities import Run

MAX_PLOTS = 36
# Live plots are re-read at most every LIVE_MIN_MS, however often the database changes (five runs flushing ten
# times a second each commit ~50 times a second), and less often as a refresh costs more (live.RefreshPace): a
# refresh costs its new points plus one repaint of each plot that got some (~20 ms of CPU for two plots of five
# runs). The wait is the one that keeps live refreshing near LIVE_BUDGET of a core, within LIVE_MAX_MS. The first
# change after a quiet spell is shown at once; in a steady stream a point waits up to one wait more (measured in
# docs/benchmarks.md: one live run ~25 ms, log to pixels p50 < 100 ms with the writer's 100 ms flush; five runs at
# 100 points/s ~200 ms, ~10 % of a core; a fixed 100 ms cost those five ~21 %).
LIVE_MIN_MS = 25
LIVE_MAX_MS = 250
LIVE_BUDGET = 0.08


def smoothing_of(kind: str, slider: int) -> tuple[str, float] | None:
    """The slider (0..100) as a smoothing: EMA weight 0..0.99, or a running mean over 1..1000 points."""
    if slider <= 0:
        return None
    if kind == "mean":
        window = round(10 ** (3 * slider / 100))
        return ("mean", float(window)) if window > 1 else None
    return ("ema", min(0.99, slider / 100))


def smoothing_text(smoothing: tuple[str, float] | None) -> str:
    """What the slider is set to, kind and value: 'off', 'EMA 0.60', 'mean 25 pts'."""
    if smoothing is None:
        return "off"
    kind, amount = smoothing
    return f"EMA {amount:.2f}" if kind == "ema" else f"mean {int(amount)} pts"

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
        self.band_plots: dict[str, Any] = {}   # metric key -> band_charts.BandPlot, while grouping
        self.all_runs: list[Run] = []
        self.cache = HistoryCache()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        settings = ctx.settings
        bar = QHBoxLayout()
        self.x_mode = QComboBox()
        self.x_mode.setToolTip("The x axis of every chart: step, time since the run started, or wall time")
        for mode, label in X_MODES.items():
            self.x_mode.addItem(label, mode)
        self.x_mode.setCurrentIndex(max(0, self.x_mode.findData(str(settings.value("charts/x_mode", "step")))))
        self.x_mode.currentIndexChanged.connect(lambda _i: self._apply_options())
        bar.addWidget(self.x_mode)
        bar.addSpacing(10)
        bar.addWidget(QLabel("Smoothing"))
        self.smoothing_kind = _Choice(str(settings.value("charts/smoothing_kind", "ema")), SMOOTHING_KINDS)
        self.smoothing_kind.changed.connect(self._apply_options)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 100)
        self.smoothing.setFixedWidth(80)
        self.smoothing.setValue(_int(settings.value("charts/smoothing", 0)))
        self.smoothing.valueChanged.connect(lambda _v: self._apply_options())
        bar.addWidget(self.smoothing)
        self.smoothing_value = QLabel("off")
        self.smoothing_value.setMinimumWidth(70)
        self.smoothing_value.setObjectName("muted")
        bar.addWidget(self.smoothing_value)
        # less used switches in one menu, so the bar fits 1280 px beside the experiments list
        self.view_button = QToolButton()
        self.view_button.setText("View")
        self.view_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        view_menu = QMenu(self.view_button)
        view_menu.addSection("Smoothing")
        self.smoothing_kind.add_to(view_menu)
        view_menu.addSection("Charts")
        self.log_y = _Toggle(view_menu, "Logarithmic y axis", _bool(settings.value("charts/log_y", False)))
        self.log_y.toggled.connect(lambda _on: self._apply_options())
        self.link_x = _Toggle(view_menu, "Link zoom across charts", _bool(settings.value("charts/link_x", True)))
        self.link_x.toggled.connect(lambda on: settings.setValue("charts/link_x", on))
        self.show_legend = _Toggle(view_menu, "Show legend", _bool(settings.value("charts/legend", True)))
        self.show_legend.toggled.connect(self._on_legend_toggled)
        view_menu.addSection("Group runs")
        self.group_menu = view_menu.addMenu("Group by")
        self.group_menu.aboutToShow.connect(self._fill_group_menu)
        self.group_by: str | None = str(settings.value("charts/group_by", "") or "") or None
        self.view_button.setMenu(view_menu)
        bar.addWidget(self.view_button)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter metrics…")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMaximumWidth(180)
        self.filter.setMinimumWidth(80)
        self.filter.textChanged.connect(lambda _t: self._rebuild())
        bar.addWidget(self.filter, 1)
        reset = QPushButton("Reset zoom")
        reset.setToolTip("Fit every chart to its data again")
        reset.clicked.connect(self.reset_zoom)
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
        self.legend_boxes: dict[str, Any] = {}   # run -> its check box (group -> its label while grouping)
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
        self.scroll_area.verticalScrollBar().valueChanged.connect(lambda _v: self._refresh_dirty())
        self._dirty: set[str] = set()     # plots with live data not fetched while out of sight
        self.live_refreshes = 0
        self.live_pace = RefreshPace(LIVE_MIN_MS / 1000, LIVE_MAX_MS / 1000, LIVE_BUDGET, cpu=self.plots_cpu_s)
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.timeout.connect(self._refresh_live_now)
        self._linking = False
        self._update_smoothing_label()

    # -- content ---------------------------------------------------------------------------------------------
    def set_runs(self, runs: list[Run], selected: int | None = None, all_runs: list[Run] | None = None) -> None:
        """Plot ``runs``; ``selected`` is how many the user picked (more than are plotted: say so);
        ``all_runs``: the selection (up to MAX_GROUPED_RUNS) that grouped charts aggregate."""
        self.runs = list(runs)
        self.all_runs = list(all_runs) if all_runs is not None else list(runs)
        self.cache.forget({r.uuid for r in self.runs} | {r.uuid for r in self.all_runs})
        self._rebuild_legend()
        if selected is not None:
            self.capped.setText(f"Plotting the first {len(runs)} of {selected} selected runs."
                                if selected > len(runs) else "")
            self.capped.setVisible(selected > len(runs) and not self.group_by)
        self._rebuild()

    # -- grouping --------------------------------------------------------------------------------------------
    def _fill_group_menu(self) -> None:
        self.group_menu.clear()
        runs = self.all_runs or self.runs
        options = [None] + [f"params.{k}" for k in sorted({k for r in runs for k in r.params})] + [
            f"tags.{k}" for k in sorted({k for r in runs for k in r.tags if not k.startswith("mlops.")})]
        for option in options[:60]:
            text = "No grouping: one line per run" if option is None else (
                option.split(".", 1)[1] + ("  (tag)" if option.startswith("tags.") else ""))
            action = self.group_menu.addAction(text, lambda o=option: self.set_group_by(o))
            action.setCheckable(True)
            action.setChecked(option == self.group_by)

    def set_group_by(self, group_by: str | None) -> None:
        """Group runs by a param or tag ('params.lr', 'tags.model'): mean lines over min..max bands."""
        self.group_by = group_by
        self.ctx.settings.setValue("charts/group_by", group_by or "")
        self.legend_boxes = {"": None}   # force a new legend
        self._rebuild_legend()
        if group_by:
            self.capped.hide()
        self._rebuild()

    def groups(self) -> dict[str, list[Run]]:
        from mlops_desktop.gui.band_charts import group_runs

        return group_runs(self.all_runs or self.runs, self.group_by) if self.group_by else {}

    def _rebuild_bands(self, keys: list[str]) -> None:
        from mlops_desktop.gui.band_charts import BandPlot

        for key in list(self.plots):
            plot = self.plots.pop(key)
            self.grid.removeWidget(plot)
            plot.deleteLater()
        for key in list(self.band_plots):
            if key not in keys:
                plot = self.band_plots.pop(key)
                self.grid.removeWidget(plot)
                plot.deleteLater()
        groups = self.groups()
        columns = 3 if self.width() > 1500 else 2 if len(keys) > 1 else 1
        for i, key in enumerate(keys):
            plot = self.band_plots.get(key)
            if plot is None:
                plot = BandPlot(self.ctx, key, self.cache)
                self.band_plots[key] = plot
            self._place(plot, i // columns, i % columns)
            members = [(label, [(r.uuid, r.metrics[key].count, r.start_time, r.status == "running")
                                for r in runs if key in r.metrics]) for label, runs in groups.items()]
            plot.set_groups(members, self.x_mode.currentData())

    def _place(self, plot: QWidget, row: int, column: int) -> None:
        """Put a plot in the grid, unless it is there already (a re-add relays out and repaints every plot)."""
        index = self.grid.indexOf(plot)
        if index >= 0:
            position: Any = self.grid.getItemPosition(index)   # (row, column, rows, columns); stubs say object
            if tuple(position[:2]) == (row, column):
                return
        self.grid.addWidget(plot, row, column)

    def _rebuild_legend(self) -> None:
        uuids = [r.uuid for r in self.runs]
        if self.group_by:
            uuids = ["group:" + label for label in self.groups()]
        if list(self.legend_boxes) == uuids:
            return
        while self.legend_grid.count():
            item = self.legend_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.legend_boxes = {}
        self.hidden_runs &= set(uuids)
        columns = max(1, (self.width() or 900) // 190)
        if self.group_by:
            for i, (label, runs) in enumerate(self.groups().items()):
                chip_label = QLabel(f"■ {label}  ({len(runs)} run{'s' if len(runs) != 1 else ''})")
                chip_label.setStyleSheet(f"QLabel {{ color: {run_color(i)}; font-weight: 600; }}")
                self.legend_grid.addWidget(chip_label, i // columns, i % columns)
                self.legend_boxes["group:" + label] = chip_label
            for c in range(self.legend_grid.columnCount()):
                self.legend_grid.setColumnStretch(c, 0)
            self.legend_grid.setColumnStretch(columns, 1)
            self.legend_host.setVisible(bool(self.legend_boxes) and self.show_legend.isChecked())
            return
        for i, run in enumerate(self.runs):
            box = QCheckBox(run.name or run.uuid[:8])
            color = run_color(i)
            box.setStyleSheet(f"QCheckBox {{ color: {color}; font-weight: 600; }}")
            box.setChecked(run.uuid not in self.hidden_runs)
            box.setToolTip(f"Show or hide {run.name or run.uuid} in every chart")
            box.toggled.connect(lambda on, u=run.uuid: self.set_run_visible(u, on))
            self.legend_grid.addWidget(box, i // columns, i % columns)
            self.legend_boxes[run.uuid] = box
        for c in range(self.legend_grid.columnCount()):
            self.legend_grid.setColumnStretch(c, 0)
        self.legend_grid.setColumnStretch(columns, 1)  # pack the boxes to the left
        self.legend_host.setVisible(bool(self.legend_boxes) and self.show_legend.isChecked())

    def _on_legend_toggled(self, on: bool) -> None:
        self.ctx.settings.setValue("charts/legend", on)
        self.legend_host.setVisible(bool(self.legend_boxes) and on)

    def set_run_visible(self, uuid: str, visible: bool) -> None:
        if visible:
            self.hidden_runs.discard(uuid)
        else:
            self.hidden_runs.add(uuid)
        for plot in self.plots.values():
            plot.set_run_visible(uuid, visible)

    def metric_keys(self) -> list[str]:
        keys = sorted({k for r in (self.all_runs if self.group_by else self.runs) for k in r.metrics})
        text = self.filter.text().strip().lower()
        return [k for k in keys if text in k.lower()][:MAX_PLOTS]

    def specs_for(self, key: str) -> list[SeriesSpec]:
        specs = []
        for i, run in enumerate(self.runs):
            summary = run.metrics.get(key)
            if summary is None:
                continue
            specs.append(SeriesSpec(run.uuid, key, run.name or run.uuid[:8], run_color(i),
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
        if self.group_by:
            self._rebuild_bands(keys)
            self.empty.setVisible(not keys)
            self.scroll_area.setVisible(bool(keys))
            return
        for key in list(self.band_plots):
            plot = self.band_plots.pop(key)
            self.grid.removeWidget(plot)
            plot.deleteLater()
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
                plot.x_range_changed_by_user.connect(lambda lo, hi, src=plot: self._on_user_x(src, lo, hi))
                self.plots[key] = plot
            self._place(plot, i // columns, i % columns)
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

    def current_smoothing(self) -> tuple[str, float] | None:
        return smoothing_of(self.smoothing_kind.currentData(), self.smoothing.value())

    def _update_smoothing_label(self) -> None:
        self.smoothing_value.setText(smoothing_text(self.current_smoothing()))
        self.smoothing_value.setToolTip({"ema": "exponential moving average with this weight (View ▸ Smoothing "
                                                "chooses EMA or a running mean)",
                                         "mean": "running mean over this many points (View ▸ Smoothing chooses "
                                                 "EMA or a running mean)"}.get(self.smoothing_kind.currentData(), ""))

    def _configure(self, plot: Any) -> None:
        plot.set_x_mode(self.x_mode.currentData())
        plot.set_smoothing(self.current_smoothing())
        plot.set_log_y(self.log_y.isChecked())

    def _apply_options(self) -> None:
        s = self.ctx.settings
        s.setValue("charts/x_mode", self.x_mode.currentData())
        s.setValue("charts/smoothing_kind", self.smoothing_kind.currentData())
        s.setValue("charts/smoothing", self.smoothing.value())
        s.setValue("charts/log_y", self.log_y.isChecked())
        self._update_smoothing_label()
        for plot in self.plots.values():
            self._configure(plot)
        if self.group_by:
            self._rebuild()

    def _on_user_x(self, source: Any, lo: float, hi: float) -> None:
        """One plot was zoomed or panned by the user: the others show the same x range (same x axis)."""
        if self._linking or not self.link_x.isChecked():
            return
        self._linking = True
        try:
            for plot in self.plots.values():
                if plot is not source:
                    plot.follow_x(lo, hi)
        finally:
            self._linking = False

    def reset_zoom(self) -> None:
        for plot in self.plots.values():
            plot.reset_zoom()

    def _in_sight(self, plot: Any) -> bool:
        """The plot is on screen: this tab shown and the plot inside the scroll area's view (by geometry:
        visibleRegion() is empty until a widget has been painted once)."""
        if not self.isVisible() or not plot.isVisible():
            return False
        viewport = self.scroll_area.viewport()
        return QRect(plot.mapTo(viewport, QPoint(0, 0)), plot.size()).intersects(viewport.rect())

    def invalidate_running(self) -> None:
        """New points may have arrived for running runs: re-read them, at once when the last live refresh is
        the pace's wait old, else when it will be (every change in between is served by that one refresh)."""
        if self._live_timer.isActive():
            return
        wait = self.live_pace.wait(time.monotonic())
        if wait > 0:
            self._live_timer.start(max(1, round(wait * 1000)))
        else:
            self._refresh_live_now()

    def plots_cpu_s(self) -> float:
        """CPU the plots shown have cost so far (loads, draws, paints): what the live pace weighs."""
        return sum(p.cpu_s for p in self.plots.values())

    def _refresh_live_now(self) -> None:
        """Re-query the series of running runs in the plots on screen; plots out of sight (scrolled away,
        another tab) are marked and fetched when they come into view."""
        self.live_pace.refreshed()
        self.live_refreshes += 1
        running = {r.uuid for r in (self.all_runs if self.group_by else self.runs) if r.status == "running"}
        if not running:
            return
        for plot in self.band_plots.values():
            if any(m[0] in running for _label, members in plot.groups for m in members) and self._in_sight(plot):
                plot.reload()
        for key, plot in self.plots.items():
            if not any(uuid in running for uuid in plot.series):
                continue
            if not self._in_sight(plot):
                self._dirty.add(key)
                continue
            self._refresh_plot(plot, running)

    def _refresh_plot(self, plot: Any, running: set[str]) -> None:
        plot.refresh_live(running)

    def _refresh_dirty(self) -> None:
        if not self._dirty:
            return
        running = {r.uuid for r in self.runs if r.status == "running"}
        for key in list(self._dirty):
            plot = self.plots.get(key)
            if plot is None:
                self._dirty.discard(key)
            elif self._in_sight(plot):
                self._dirty.discard(key)
                self._refresh_plot(plot, running)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self._refresh_dirty()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._refresh_dirty()

    def idle(self) -> bool:
        return all(p.idle() for p in self.plots.values()) and all(p.idle() for p in self.band_plots.values())

    def on_theme_changed(self) -> None:
        for plot in [*self.plots.values(), *self.band_plots.values()]:
            plot.apply_theme()

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


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _bool(value: Any) -> bool:
    return value in (True, "true", "True", 1, "1")


class _Toggle:
    """A checkable menu action that reads like a check box (isChecked, setChecked, toggled)."""

    def __init__(self, menu: QMenu, text: str, checked: bool) -> None:
        self.action = menu.addAction(text)
        self.action.setCheckable(True)
        self.action.setChecked(checked)
        self.toggled = self.action.toggled

    def isChecked(self) -> bool:  # noqa: N802 - reads like the Qt widget it stands for
        return self.action.isChecked()

    def setChecked(self, on: bool) -> None:  # noqa: N802
        self.action.setChecked(on)


class _Choice(QObject):
    """One of a few exclusive options, shown as radio actions in a menu; ``currentData()`` like a combo box."""

    changed = Signal()

    def __init__(self, current: str, options: dict[str, str]) -> None:
        super().__init__()
        self.options = options
        self.current = current if current in options else next(iter(options))
        self.group = QActionGroup(self)
        self.actions: dict[str, QAction] = {}
        for value, label in options.items():
            action = QAction(label, self, checkable=True)
            action.setChecked(value == self.current)
            action.triggered.connect(lambda _c=False, v=value: self.set_current(v))
            self.group.addAction(action)
            self.actions[value] = action

    def add_to(self, menu: QMenu) -> None:
        for action in self.actions.values():
            menu.addAction(action)

    def currentData(self) -> str:  # noqa: N802 - reads like the combo box it stands for
        return self.current

    def set_current(self, value: str) -> None:
        if value in self.options and value != self.current:
            self.current = value
            self.actions[value].setChecked(True)
            self.changed.emit()
