"""The labelling panel of a review: the live samples (disagreements first) with their inputs and both answers; the
keyboard labels them: 1/C the champion was right, 2/N the candidate was right, T types the right answer, J/K (or
the arrows) move; each label is saved at once and the next unlabelled sample is selected."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.theme import current_mode
from mlops_desktop.gui.views.approvals_evidence import BAD, fmt
from mlops_desktop.gui.views.data_panels import pad_cells

KEYS_HELP = "1 / C champion right · 2 / N candidate right · T type the answer · J / K next, previous · Ctrl+S save " \
            "to the lake"


class SamplesModel(RowTableModel):
    fixed = ("#", "Agree", "Champion", "Candidate", "Label", "By")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.inputs: list[str] = []
        self.columns = self.fixed

    def set_samples(self, samples: list[Any]) -> None:
        self.beginResetModel()
        self.rows = list(samples)
        names: list[str] = []
        for s in self.rows[:50]:
            names += [k for k in s.inputs if k not in names]
        self.inputs = names
        self.columns = self.fixed + tuple(names)
        self.numeric_columns = frozenset({0})
        self.endResetModel()

    def replace(self, sample: Any) -> int:
        for i, s in enumerate(self.rows):
            if s.sample == sample.sample:
                self.rows[i] = sample
                self.dataChanged.emit(self.index(i, 0), self.index(i, self.columnCount() - 1))
                return i
        return -1

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(s.sample)
            if col == 1:
                return "yes" if s.agree else "NO"
            if col == 2:
                return fmt(s.champion)
            if col == 3:
                return fmt(s.candidate)
            if col == 4:
                return "" if s.label is None else f"{fmt(s.label)}  ({s.picked})"
            if col == 5:
                return s.labelled_by or ""
            return fmt(s.inputs.get(self.inputs[col - len(self.fixed)]))
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(col)
        if role == Qt.ItemDataRole.ForegroundRole and col == 1 and not s.agree:
            return QColor(BAD[current_mode()])
        if role == Qt.ItemDataRole.ToolTipRole:
            return json.dumps(s.inputs)
        return None


class SamplesTable(QTableView):
    """A table that turns the labelling keys into signals (and leaves every other key to Qt)."""

    pick = Signal(str)          # "champion" | "candidate"
    type_label = Signal()
    save = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        key, mods = event.key(), event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier and key == Qt.Key.Key_S:
            self.save.emit()
            return
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            super().keyPressEvent(event)
            return
        if key in (Qt.Key.Key_1, Qt.Key.Key_C):
            self.pick.emit("champion")
        elif key in (Qt.Key.Key_2, Qt.Key.Key_N):
            self.pick.emit("candidate")
        elif key in (Qt.Key.Key_T, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.type_label.emit()
        elif key == Qt.Key.Key_J:
            self.move_by(1)
        elif key == Qt.Key.Key_K:
            self.move_by(-1)
        else:
            super().keyPressEvent(event)

    def move_by(self, step: int) -> None:
        rows = self.model().rowCount()
        if not rows:
            return
        row = self.currentIndex().row() if self.currentIndex().isValid() else -1
        self.selectRow(max(0, min(rows - 1, row + step)))


class LabelPanel(QWidget):
    """Emits `labelled(sample_number, value, typed)`; the view saves it in a worker and calls `labelled_ok`."""

    labelled = Signal(int, str, bool)
    save_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SamplesModel(self)
        self.table = SamplesTable()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        pad_cells(self.table)
        self.table.pick.connect(self._pick)
        self.table.type_label.connect(self._focus_typed)
        self.table.save.connect(self.save_requested.emit)
        self.counts = QLabel("")
        self.counts.setObjectName("heading")
        help_label = QLabel(KEYS_HELP)
        help_label.setObjectName("muted")
        self.typed = QLineEdit()
        self.typed.setPlaceholderText("the right answer, Enter to save (Esc: back to the table)")
        self.typed.returnPressed.connect(self._typed_entered)
        self.champion_button = QPushButton("Champion right (1)")
        self.champion_button.clicked.connect(lambda: self._pick("champion"))
        self.candidate_button = QPushButton("Candidate right (2)")
        self.candidate_button.clicked.connect(lambda: self._pick("candidate"))
        self.save_button = QPushButton("Save labels to the lake")
        self.save_button.clicked.connect(lambda: self.save_requested.emit())
        bar = QHBoxLayout()
        for w in (self.champion_button, self.candidate_button):
            bar.addWidget(w)
        bar.addWidget(self.typed, 1)
        bar.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(self.counts)
        top.addStretch(1)
        top.addWidget(help_label)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(bar)
        self.editable = False
        self.set_samples([], editable=False)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key.Key_Escape and self.typed.hasFocus():
            self.table.setFocus()
            return
        super().keyPressEvent(event)

    def set_samples(self, samples: list[Any], *, editable: bool) -> None:
        self.editable = editable
        self.model.set_samples(samples)
        for w in (self.champion_button, self.candidate_button, self.typed):
            w.setEnabled(editable and bool(samples))
        self._update_counts()
        if samples:
            first = next((i for i, s in enumerate(samples) if s.label is None), 0)
            self.table.selectRow(first)

    def _update_counts(self) -> None:
        rows = self.model.rows
        if not rows:
            self.counts.setText("No live samples: this review has no shadow evidence")
            return
        dis = sum(1 for s in rows if not s.agree)
        done = sum(1 for s in rows if s.label is not None)
        self.counts.setText(f"{len(rows)} live samples · {dis} disagreements · {done} labelled")

    def current(self) -> Any:
        index = self.table.currentIndex()
        return self.model.rows[index.row()] if index.isValid() and index.row() < len(self.model.rows) else None

    def _pick(self, which: str) -> None:
        sample = self.current()
        if sample is not None and self.editable:
            self.labelled.emit(sample.sample, which, False)

    def _focus_typed(self) -> None:
        if self.editable and self.current() is not None:
            self.typed.setFocus()
            self.typed.selectAll()

    def _typed_entered(self) -> None:
        sample = self.current()
        text = self.typed.text().strip()
        if sample is not None and text and self.editable:
            self.labelled.emit(sample.sample, text, True)
            self.typed.clear()
            self.table.setFocus()

    def labelled_ok(self, sample: Any) -> None:
        row = self.model.replace(sample)
        self._update_counts()
        if row < 0:
            return
        after = [i for i, s in enumerate(self.model.rows) if s.label is None and i > row]
        self.table.selectRow(after[0] if after else min(row + 1, len(self.model.rows) - 1))
