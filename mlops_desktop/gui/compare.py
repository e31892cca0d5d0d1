"""Compare runs: a param/metric diff table that highlights differences, and a parallel-coordinates plot."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.theme import current_mode
from mlops_desktop.textfmt import fmt_number
from mlops_desktop.tracking.entities import Run


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


class CompareView(QWidget):
    """Shows the selected runs side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: list[Run] = []
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
        self.parallel: Any = None   # parallel.ParallelCoordinates, built when two runs are first compared
        self.parallel_holder = QWidget()
        holder_layout = QVBoxLayout(self.parallel_holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        split.addWidget(self.table)
        split.addWidget(self.parallel_holder)
        split.setSizes([520, 480])
        self.splitter = split
        layout.addWidget(split, 1)

    def set_runs(self, runs: list[Run]) -> None:
        self.runs = runs
        if len(runs) < 2:
            self.summary.setText("Select two or more runs to compare them.")
        else:
            differing = sum(1 for _l, _v, d in diff_rows(runs) if d)
            self.summary.setText(f"{len(runs)} runs, {differing} fields differ")
        self._fill_table()
        rows = diff_rows(runs)
        varying = [label for label, _v, differs in rows if differs and label.startswith("params.")][:7]
        metrics = [label for label, _v, differs in rows if differs and label.startswith("metrics.")]
        axes = varying + metrics[: max(2, 8 - len(varying))]
        if self.parallel is None and len(runs) >= 2:
            from mlops_desktop.gui.parallel import ParallelCoordinates

            self.parallel = ParallelCoordinates()
            self.parallel_holder.layout().addWidget(self.parallel)
        if self.parallel is not None:
            self.parallel.set_data(runs if len(runs) >= 2 else [], axes, [r.name or r.uuid[:8] for r in runs])

    def _fill_table(self) -> None:
        runs = self.runs
        rows = diff_rows(runs) if len(runs) >= 2 else []
        if self.only_diff.isChecked():
            rows = [r for r in rows if r[2]]
        self.table.clear()
        if len(runs) < 2:
            self.table.setColumnCount(0)
            self.table.setRowCount(0)
            return
        self.table.setColumnCount(len(runs))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels([r.name or r.uuid[:8] for r in runs])
        self.table.setVerticalHeaderLabels([label for label, _v, _d in rows])
        highlight = QColor("#5a4a1a") if current_mode() == "dark" else QColor("#fff3c4")
        for i, (_label, values, differs) in enumerate(rows):
            for j, value in enumerate(values):
                item = QTableWidgetItem(value)
                if differs:
                    item.setBackground(highlight)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()

    def differing_labels(self) -> list[str]:
        return [label for label, _v, differs in diff_rows(self.runs) if differs]
