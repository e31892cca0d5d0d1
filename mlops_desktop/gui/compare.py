"""Compare runs: a param/metric table with best and worst marked, a parallel-coordinates plot and a scatter.

Each run keeps one colour (theme.run_color by selection order) in the table's column chips, the charts, the
parallel coordinates and the scatter. For metrics, whether lower or higher is better is guessed from the name
(loss, error, rmse... lower; accuracy, f1, auc, r2... higher) and can be set per metric (right-click a row);
the choice is kept in the settings.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.theme import current_mode, run_color
from mlops_desktop.textfmt import fmt_number
from mlops_desktop.tracking.entities import Run

LOWER_IS_BETTER = re.compile(r"loss|err|rmse|mse|mae|mape|perplexity|latency|wer|cer|nll|regret|time|cost|"
                             r"distance|diverg|drift|brier|logloss", re.IGNORECASE)
HIGHER_IS_BETTER = re.compile(r"acc|f1|auc|precision|recall|r2|score|map\b|iou|bleu|rouge|dice|ndcg|reward|"
                              r"return|throughput|kappa|mcc|sharpe|top\d|hit", re.IGNORECASE)
RUN_COLUMN_WIDTH = 112   # four runs fit beside the labels in a 1280 px window


def guess_direction(metric: str) -> str | None:
    """'min' (lower is better), 'max' (higher is better) or None (unknown) from a metric's name."""
    if LOWER_IS_BETTER.search(metric):
        return "min"
    if HIGHER_IS_BETTER.search(metric):
        return "max"
    return None


def diff_rows(runs: list[Run]) -> list[tuple[str, list[str], bool]]:
    """(label, value per run, differs) for every param, then the last value of every metric."""
    rows: list[tuple[str, list[str], bool]] = []
    for key in sorted({k for r in runs for k in r.params}):
        values = [r.params.get(key, "") for r in runs]
        rows.append((f"params.{key}", values, len(set(values)) > 1))
    for key in sorted({k for r in runs for k in r.metrics}):
        values = [fmt_number(r.metrics[key].last) if key in r.metrics else "" for r in runs]
        rows.append((f"metrics.{key}", values, len(set(values)) > 1))
    return rows


def best_and_worst(values: list[float | None], direction: str | None) -> tuple[int | None, int | None]:
    """Indices of the best and worst value (None where unknown, or all equal, or fewer than two values)."""
    present = [(v, i) for i, v in enumerate(values) if v is not None and v == v]
    if direction not in ("min", "max") or len(present) < 2 or len({v for v, _i in present}) < 2:
        return None, None
    lo, hi = min(present)[1], max(present)[1]
    return (lo, hi) if direction == "min" else (hi, lo)


def axis_values(runs: list[Run], label: str) -> tuple[np.ndarray, list[str] | None]:
    """Values of one axis for each run (NaN when missing); categorical axes return their category names."""
    kind, _, key = label.partition(".")
    raw: list[str | float | None] = []
    for r in runs:
        if kind == "params":
            raw.append(r.params.get(key))
        else:
            s = r.metrics.get(key)
            raw.append(None if s is None else s.last)
    numbers: list[float] = []
    categorical = False
    for v in raw:
        if v is None:
            numbers.append(float("nan"))
            continue
        try:
            numbers.append(float(v))
        except ValueError:
            categorical = True
            break
    if not categorical:
        return np.array(numbers, dtype=np.float64), None
    cats = sorted({str(v) for v in raw if v is not None})
    return np.array([cats.index(str(v)) if v is not None else np.nan for v in raw], dtype=np.float64), cats


def chip(color: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class CompareView(QWidget):
    """Shows the selected runs side by side."""

    def __init__(self, settings: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.runs: list[Run] = []
        self.directions: dict[str, str] = self._load_directions()
        self._row_keys: list[str | None] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.summary = QLabel("Select two or more runs to compare them.")
        self.summary.setObjectName("muted")
        self.only_diff = QCheckBox("Only differences")
        self.only_diff.setChecked(True)
        self.only_diff.toggled.connect(lambda _on: self._fill_table())
        top.addWidget(self.summary, 1)
        top.addWidget(self.only_diff)
        layout.addLayout(top)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.verticalHeader().customContextMenuRequested.connect(self._direction_menu)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(
            lambda pos: self._direction_menu(pos, self.table.rowAt(pos.y())))
        self.plots = QTabWidget()
        self.parallel: Any = None   # parallel.ParallelCoordinates, built when two runs are first compared
        self.scatter: Any = None    # parallel.ScatterPlot
        self.parallel_holder = QWidget()
        QVBoxLayout(self.parallel_holder).setContentsMargins(0, 0, 0, 0)
        self.scatter_holder = QWidget()
        QVBoxLayout(self.scatter_holder).setContentsMargins(0, 0, 0, 0)
        self.plots.addTab(self.parallel_holder, "Parallel coordinates")
        self.plots.addTab(self.scatter_holder, "Scatter")
        split.addWidget(self.table)
        split.addWidget(self.plots)
        split.setSizes([560, 440])
        self.splitter = split
        layout.addWidget(split, 1)

    # -- directions ------------------------------------------------------------------------------------------
    def _load_directions(self) -> dict[str, str]:
        if self.settings is None:
            return {}
        try:
            data = json.loads(str(self.settings.value("compare/directions", "{}")))
            return {str(k): str(v) for k, v in data.items() if v in ("min", "max", "none")}
        except (ValueError, TypeError, AttributeError):
            return {}

    def direction(self, metric: str) -> str | None:
        chosen = self.directions.get(metric)
        if chosen is not None:
            return None if chosen == "none" else chosen
        return guess_direction(metric)

    def set_direction(self, metric: str, direction: str | None) -> None:
        """'min', 'max', 'none' (not ranked) or None (back to the guess from the name)."""
        if direction is None:
            self.directions.pop(metric, None)
        else:
            self.directions[metric] = direction
        if self.settings is not None:
            self.settings.setValue("compare/directions", json.dumps(self.directions))
        self._fill_table()

    def _direction_menu(self, pos: Any, row: int | None = None) -> None:
        row = self.table.verticalHeader().logicalIndexAt(pos) if row is None else row
        key = self._row_keys[row] if 0 <= row < len(self._row_keys) else None
        if key is None or not key.startswith("metrics."):
            return
        metric = key.split(".", 1)[1]
        menu = QMenu(self)
        current = self.direction(metric)
        for label, value in (("Lower is better", "min"), ("Higher is better", "max"), ("Not ranked", "none")):
            action = menu.addAction(label, lambda v=value: self.set_direction(metric, v))
            action.setCheckable(True)
            action.setChecked((current or "none") == value)
        menu.addSeparator()
        menu.addAction(f"Guess from the name ({_direction_word(guess_direction(metric))})",
                       lambda: self.set_direction(metric, None))
        menu.popup(self.table.mapToGlobal(pos))
        self.direction_menu = menu

    # -- content ---------------------------------------------------------------------------------------------
    def set_runs(self, runs: list[Run]) -> None:
        self.runs = runs
        if len(runs) < 2:
            self.summary.setText("Select two or more runs to compare them.")
        else:
            differing = sum(1 for _l, _v, d in diff_rows(runs) if d)
            self.summary.setText(f"{len(runs)} runs, {differing} fields differ · right-click a metric to say "
                                 "whether lower or higher is better")
        self._fill_table()
        rows = diff_rows(runs)
        varying = [label for label, _v, differs in rows if differs and label.startswith("params.")][:7]
        metrics = [label for label, _v, differs in rows if differs and label.startswith("metrics.")]
        axes = varying + metrics[: max(2, 8 - len(varying))]
        if self.parallel is None and len(runs) >= 2:
            from mlops_desktop.gui.parallel import ParallelCoordinates, ScatterPlot

            self.parallel = ParallelCoordinates()
            self.parallel_holder.layout().addWidget(self.parallel)
            self.scatter = ScatterPlot()
            self.scatter_holder.layout().addWidget(self.scatter)
        if self.parallel is not None:
            shown = runs if len(runs) >= 2 else []
            labels = [r.name or r.uuid[:8] for r in runs]
            self.parallel.set_data(shown, axes, labels)
            params = [label for label, _v, _d in rows if label.startswith("params.")]
            all_metrics = [label for label, _v, _d in rows if label.startswith("metrics.")]
            self.scatter.set_data(shown, labels, varying or params, metrics or all_metrics)

    def _fill_table(self) -> None:
        runs = self.runs
        rows = diff_rows(runs) if len(runs) >= 2 else []
        if self.only_diff.isChecked():
            rows = [r for r in rows if r[2]]
        self.table.clear()
        self.table.clearSpans()
        self._row_keys = []
        if len(runs) < 2:
            self.table.setColumnCount(0)
            self.table.setRowCount(0)
            return
        params = [r for r in rows if r[0].startswith("params.")]
        metrics = [r for r in rows if r[0].startswith("metrics.")]
        layout: list[tuple[str, Any]] = []
        for title, group in (("Parameters", params), ("Metrics", metrics)):
            if group:
                layout.append(("group", title))
                layout += [("row", r) for r in group]
        self.table.setColumnCount(len(runs))
        self.table.setRowCount(len(layout))
        for j, run in enumerate(runs):
            head = QTableWidgetItem(chip(run_color(j)), _elide(run.name or run.uuid[:8], 16))
            head.setToolTip(f"{run.name}\n{run.uuid}")
            self.table.setHorizontalHeaderItem(j, head)
        dark = current_mode() == "dark"
        highlight = QColor("#2f2b1f") if dark else QColor("#fff8e1")
        good = QColor("#81c784") if dark else QColor("#1b7a2f")
        bad = QColor("#ef5350") if dark else QColor("#c62828")
        group_bg = QColor("#26282b") if dark else QColor("#eef0f2")
        labels: list[str] = []
        for i, (kind, entry) in enumerate(layout):
            if kind == "group":
                labels.append("")
                item = QTableWidgetItem(entry)
                font = item.font()
                font.setBold(True)
                item.setFont(font)
                item.setBackground(group_bg)
                self.table.setItem(i, 0, item)
                self.table.setSpan(i, 0, 1, len(runs))
                self._row_keys.append(None)
                continue
            label, values, differs = entry
            key = label.split(".", 1)[1]
            labels.append(key)
            self._row_keys.append(label)
            best = worst = None
            if label.startswith("metrics."):
                numbers = [r.metrics[key].last if key in r.metrics else None for r in runs]
                best, worst = best_and_worst(numbers, self.direction(key))
            for j, value in enumerate(values):
                text = value if value != "" else "—"
                if j == best:
                    text = f"▲ {text}"
                elif j == worst:
                    text = f"▼ {text}"
                item = QTableWidgetItem(text)
                item.setToolTip(value or "not logged by this run")
                if _is_number(value):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if differs:
                    item.setBackground(highlight)
                if j in (best, worst):
                    item.setForeground(QBrush(good if j == best else bad))
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                elif value == "":
                    item.setForeground(QBrush(QColor("#8c959f")))
                self.table.setItem(i, j, item)
        self.table.setVerticalHeaderLabels(labels)
        for i, key in enumerate(self._row_keys):
            header = self.table.verticalHeaderItem(i)
            if header is not None and key is not None:
                metric = key.split(".", 1)[1]
                word = _direction_word(self.direction(metric)) if key.startswith("metrics.") else "parameter"
                header.setToolTip(f"{key} ({word})")
        self.table.resizeColumnsToContents()
        for j in range(len(runs)):
            self.table.setColumnWidth(j, min(self.table.columnWidth(j), RUN_COLUMN_WIDTH))
        self.table.verticalHeader().setMaximumWidth(190)

    def differing_labels(self) -> list[str]:
        return [label for label, _v, differs in diff_rows(self.runs) if differs]

    def row_texts(self, label: str) -> list[str]:
        """What the table shows for a field (tests): the cells of its row."""
        row = self._row_keys.index(label)
        return [self.table.item(row, j).text() for j in range(self.table.columnCount())]

    def apply_theme(self) -> None:
        self._fill_table()


def _direction_word(direction: str | None) -> str:
    return {"min": "lower is better", "max": "higher is better"}.get(direction or "", "not ranked")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _elide(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
