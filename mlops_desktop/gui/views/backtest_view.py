"""The Back-tests area: the launch form, the list of back-tests, and for the one selected a per-window chart of a
metric for each version (and the walk-forward refit) with the table of windows; runs in a worker with progress and
cancel, the same core call as `backtest run`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.backtest_form import LaunchForm, form_choices
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.data_panels import pad_cells

MAIN_METRIC = {"classification": "accuracy", "regression": "rmse"}
LOWER_IS_BETTER = ("rmse", "mae")


def list_task(ws: Any, *, progress: Any) -> list[Any]:
    from mlops_desktop.backtest.api import list_backtests

    return list_backtests(ws)


def load_task(ws: Any, backtest_id: int, *, progress: Any) -> Any:
    from mlops_desktop.backtest.api import load_backtest

    return load_backtest(ws, backtest_id)


def run_task(ws: Any, spec: Any, *, progress: Any) -> Any:
    """Worker: the back-test itself (progress per window; Cancel stops after the window being scored)."""
    from mlops_desktop.backtest.api import run_backtest

    return run_backtest(ws, spec, progress=progress)


def fmt_bound(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class BacktestsModel(RowTableModel):
    columns = ("#", "Status", "Dataset", "Versions", "Test", "Stride", "Created")
    numeric_columns = frozenset({0})

    def set_items(self, items: list[Any]) -> None:
        self.beginResetModel()
        self.rows = items
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(index.column())
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        b = self.rows[index.row()]
        values = [b.id, b.status, b.dataset_version, ", ".join(b.labels), b.spec.get("test_window", ""),
                  b.spec.get("stride", ""), dt.datetime.fromtimestamp(b.created_at).strftime("%m-%d %H:%M")]
        return str(values[index.column()])


class WindowsModel(RowTableModel):
    """One row per window: bounds, rows, and each label's value of the chosen metric (the best in bold)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.metric_box = ""
        self.columns = ("Window", "Test start", "Test end", "Rows")
        self.bold = QFont()
        self.bold.setBold(True)

    def set_result(self, result: Any, metric: str) -> None:
        self.beginResetModel()
        self.labels = list(result.labels) if result is not None else []
        self.metric_box = metric
        self.rows = list(result.windows) if result is not None else []
        self.columns = ("Window", "Test start", "Test end", "Rows", *self.labels)
        self.numeric_columns = frozenset({0, 3, *range(4, 4 + len(self.labels))})
        self.endResetModel()

    def value(self, window: Any, label: str) -> float | None:
        return window.metrics.get(label, {}).get(self.metric_box)

    def best(self, window: Any) -> str | None:
        present = {lab: v for lab in self.labels if (v := self.value(window, lab)) is not None}
        if len(present) < 2:
            return None
        pick = min if self.metric_box in LOWER_IS_BETTER else max
        return pick(present, key=lambda k: present[k])

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        col = index.column()
        w = self.rows[index.row()]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(col)
        if role == Qt.ItemDataRole.FontRole and col >= 4 and self.best(w) == self.labels[col - 4]:
            return self.bold
        if role == Qt.ItemDataRole.ToolTipRole and col == 2 and w.ragged:
            return "the data ends inside this window"
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == 0:
            return str(w.index)
        if col == 1:
            return fmt_bound(w.test_start)
        if col == 2:
            return fmt_bound(w.test_end) + (" (ragged)" if w.ragged else "")
        if col == 3:
            return f"{w.rows:,}"
        v = self.value(w, self.labels[col - 4])
        return "–" if v is None else f"{v:.4f}"


class WindowChart(QWidget):
    """A metric per window, one line per label; x is the window, ticks show the test windows' starts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        from mlops_desktop.gui.theme import configure_pyqtgraph

        configure_pyqtgraph()
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # accuracy 0.87, not 870 (x0.001)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.curves: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.apply_theme()

    def apply_theme(self) -> None:
        from mlops_desktop.gui.theme import plot_colors, style_plot

        style_plot(self.plot)
        colors = plot_colors()
        self.legend.setLabelTextColor(colors["foreground"])

    def show_result(self, result: Any, metric: str) -> None:
        import pyqtgraph as pg

        from mlops_desktop.gui.theme import run_color

        self.plot.clear()
        self.legend.clear()
        self.curves.clear()
        if result is None or not result.windows:
            return
        for i, label in enumerate(result.labels):
            xs, ys = [], []
            for w in result.windows:
                v = w.metrics.get(label, {}).get(metric)
                if v is not None:
                    xs.append(w.index)
                    ys.append(v)
            color = run_color(i)
            curve = self.plot.plot(xs, ys, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                                   symbolBrush=color, symbolPen=color, name=label)
            self.curves[label] = curve
        n = len(result.windows)
        every = max(1, -(-n // 7))  # at most 7 dated ticks: they must not run into each other
        ticks = [(w.index, fmt_bound(w.test_start).split(" ")[0]) for w in result.windows[::every]]
        self.plot.getAxis("bottom").setTicks([ticks, []])
        self.plot.setLabel("left", metric)
        self.plot.setLabel("bottom", "test window start")
        self.apply_theme()


class BacktestView(AreaView):
    area_id = "backtests"
    title = "Back-tests"
    icon_name = "backtests"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.form = LaunchForm()
        self.form.run_requested.connect(self.run)
        self.form.cancel_requested.connect(lambda: self.cancel())
        box = QGroupBox("New back-test")
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.form)
        self.list_model = BacktestsModel(self)
        self.list = QTableView()
        self.list.setModel(self.list_model)
        self.list.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setAlternatingRowColors(True)
        self.list.setShowGrid(False)
        self.list.verticalHeader().hide()
        pad_cells(self.list)
        self.list.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.list.horizontalHeader().setStretchLastSection(True)
        self.list.selectionModel().currentRowChanged.connect(lambda *_: self._selected())
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(box)
        left.addWidget(self.list)
        left.setStretchFactor(1, 1)
        self.header = QLabel("Run a back-test, or pick one from the list.")
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setWordWrap(True)
        self.metric_box = QComboBox()
        self.metric_box.currentTextChanged.connect(lambda _m: self._show_result())
        self.chart = WindowChart()
        self.windows_model = WindowsModel(self)
        self.windows = QTableView()
        self.windows.setModel(self.windows_model)
        self.windows.setAlternatingRowColors(True)
        self.windows.setShowGrid(False)
        self.windows.verticalHeader().hide()
        pad_cells(self.windows)
        self.windows.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.windows.selectionModel().currentRowChanged.connect(lambda *_: self._window_selected())
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(QLabel("Metric"))
        top.addWidget(self.metric_box)
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.chart)
        right_split.addWidget(self.windows)
        right_split.setSizes([420, 300])
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(top)
        right_layout.addWidget(right_split, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([440, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self.result: Any = None
        self.task: Any = None
        self._select_after: int | None = None
        ctx.add_action("Back-tests: run the back-test in the form", lambda: (ctx.navigate("backtests"),
                                                                             self.form.request_run()))
        self.refresh()

    # ------------------------------------------------------------------------------------------------ data
    def refresh(self) -> None:
        ws = self.ctx.workspace
        self.ctx.tasks.submit(list_task, ws, title="Load back-tests", key=f"backtests-list-{id(self)}", quiet=True,
                              owner=self, on_done=self._set_list)
        self.ctx.tasks.submit(form_choices, ws, title="Load datasets and versions", key=f"backtests-form-{id(self)}",
                              quiet=True, owner=self, on_done=self.form.set_choices)

    def on_workspace_changed(self) -> None:
        self.result = None
        self._show_result()
        self.refresh()

    def on_theme_changed(self) -> None:
        self.chart.apply_theme()

    def _set_list(self, items: list[Any]) -> None:
        keep = self._select_after if self._select_after is not None else (self.result.id if self.result else None)
        self._select_after = None
        self.list_model.set_items(items)
        row = next((i for i, b in enumerate(items) if b.id == keep), 0 if items else None)
        if row is not None:
            self.list.selectRow(row)

    def _selected(self) -> None:
        index = self.list.currentIndex()
        if not index.isValid():
            return
        item = self.list_model.rows[index.row()]
        if self.result is not None and self.result.id == item.id and self.result.status == item.status:
            return
        self.ctx.tasks.submit(load_task, self.ctx.workspace, item.id, title=f"Load back-test {item.id}",
                              key=f"backtests-load-{id(self)}", quiet=True, owner=self, on_done=self.set_result)

    def set_result(self, result: Any) -> None:
        self.result = result
        metric = self.metric_box.currentText()
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        names = result.metric_names if result is not None else []
        self.metric_box.addItems(names)
        if metric not in names:
            metric = MAIN_METRIC.get(result.task if result else "", names[0] if names else "")
        self.metric_box.setCurrentText(metric)
        self.metric_box.blockSignals(False)
        self._show_result()

    def _show_result(self) -> None:
        result, metric = self.result, self.metric_box.currentText()
        self.chart.show_result(result, metric)
        self.windows_model.set_result(result, metric)
        if result is None:
            self.header.setText("Run a back-test, or pick one from the list.")
            return
        agg = ", ".join(f"{lab} {v:.4f}" for lab in result.labels
                        if (v := result.aggregate.get(lab, {}).get(metric)) is not None)
        spec = result.spec
        train = f"sliding {spec['train_window']}" if spec.get("train_window") else "expanding"
        gap = f", gap {spec['gap']}" if spec.get("gap") else ""
        refit = f", refit every {spec['refit_every']} ({spec['recipe']})" if spec.get("recipe") else ""
        self.header.setText(f"Back-test {result.id} · {result.status} · {result.dataset_version} by "
                            f"{spec.get('time_col')} · {len(result.windows)} windows of {spec.get('test_window')} "
                            f"(stride {spec.get('stride')}, train {train}{gap}{refit}) · target {result.target}\n"
                            f"{metric} over all windows: {agg or '–'}" + (f"\n{result.error}" if result.error else ""))

    def _window_selected(self) -> None:
        index = self.windows.currentIndex()
        if index.isValid() and self.result is not None:
            w = self.windows_model.rows[index.row()]
            self.chart.plot.getPlotItem().setTitle(f"window {w.index}: {fmt_bound(w.test_start)} – "
                                                   f"{fmt_bound(w.test_end)}, {w.rows:,} rows")
            self.chart.apply_theme()

    # ------------------------------------------------------------------------------------------------ running
    def run(self, spec: Any) -> None:
        if self.task is not None and self.task.running:
            return
        self.form.set_running(True)
        task = self.ctx.tasks.submit(run_task, self.ctx.workspace, spec, title=f"Back-test {spec.dataset}",
                                     key=f"backtests-run-{id(self)}", owner=self, on_done=self._finished,
                                     on_error=lambda exc: self._ended(f"failed: {exc}"))
        task.progressed.connect(self.form.show_progress)
        task.was_cancelled.connect(lambda: self._ended("cancelled; the windows scored so far are kept"))
        self.task = task

    def cancel(self) -> None:
        if self.task is not None and self.task.running:
            self.task.cancel()

    def _finished(self, result: Any) -> None:
        self._ended(f"back-test {result.id}: {len(result.windows)} windows")
        self._select_after = result.id
        self.set_result(result)
        self.refresh()

    def _ended(self, message: str) -> None:
        self.form.set_running(False)
        self.form.message.setText(message)
        self.task = None
        if "cancelled" in message or "failed" in message:
            self.refresh()


AREA = BacktestView
