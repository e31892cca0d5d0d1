"""The Models area's version detail: what the bundle is (signature, files with sizes and hashes, environment),
which path serves it and why, and its lineage graph back to the datasets and the run."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.data_panels import pad_cells
from mlops_desktop.gui.views.models_data import VersionDetail
from mlops_desktop.gui.views.models_widgets import LineageGraph, good_color, warn_color


def fmt_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.verticalHeader().setDefaultSectionSize(22)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.Stretch)  # elided there, full in tooltips
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    pad_cells(table)
    return table


def _fill(table: QTableWidget, rows: list[list[str]], right: frozenset[int] = frozenset()) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if c in right:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)


def _group(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addWidget(widget)
    return box


class VersionDetailPanel(QWidget):
    """One version's bundle and lineage; ``run_clicked(uuid)`` when the user opens the run from the graph."""

    run_clicked = Signal(str)
    dataset_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.detail: VersionDetail | None = None
        self.title = QLabel("")
        self.title.setObjectName("heading")
        self.title.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        self.summary.setMinimumWidth(220)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.serving = QLabel("")
        self.serving.setTextFormat(Qt.TextFormat.RichText)
        self.serving.setWordWrap(True)
        self.problem = QLabel("")
        self.problem.setObjectName("error")
        self.problem.setWordWrap(True)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        self.problem.hide()
        self.graph = LineageGraph()
        self.graph.run_clicked.connect(self.run_clicked)
        self.graph.dataset_clicked.connect(self.dataset_clicked)
        self.signature = _table(["Input", "Type", "Nulls"])
        self.files = _table(["File", "Size", "SHA-256"])
        self.environment = _table(["Package", "Version"])
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        top = QVBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.summary)
        top.addWidget(self.serving)
        top.addWidget(self.problem)
        top.addStretch(1)
        grid.addLayout(top, 0, 0)
        grid.addWidget(_group("Lineage (click the run to open it)", self.graph), 0, 1, 1, 2)
        grid.addWidget(_group("Signature", self.signature), 1, 0)
        grid.addWidget(_group("Files", self.files), 1, 1)
        grid.addWidget(_group("Environment", self.environment), 1, 2)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 5)
        grid.setColumnStretch(2, 3)
        grid.setRowStretch(0, 2)
        grid.setRowStretch(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(grid)
        self.show_detail(None)

    def show_detail(self, detail: VersionDetail | None) -> None:
        self.detail = detail
        if detail is None:
            self.title.setText("No version selected")
            for widget in (self.summary, self.serving):
                widget.setText("")
            self.problem.hide()
            self.graph.set_lineage(None)
            for table in (self.signature, self.files, self.environment):
                table.setRowCount(0)
            return
        mv = detail.version
        self.title.setText(f"{mv.name}  v{mv.version}" + (f"   ({', '.join(mv.aliases)})" if mv.aliases else ""))
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(mv.created_at))
        sig = mv.signature
        task = sig.task or "model"
        outputs = ", ".join(f"{o.name}: {o.dtype}" for o in sig.outputs) or "?"
        classes = f"  ·  classes: {', '.join(sig.classes)}" if sig.classes else ""
        estimator = detail.flavor_config.get("estimator", "")
        lines = [f"{mv.flavor} {task}" + (f" ({estimator.rsplit('.', 1)[-1]})" if estimator else ""),
                 f"registered {created} by {mv.created_by}  ·  bundle {mv.bundle_hash[:16]}",
                 f"outputs: {outputs}{classes}",
                 f"input example: {detail.example_rows} rows" if detail.example_rows else "no input example"]
        if mv.description:
            lines.insert(0, mv.description)
        self.summary.setText("\n".join(lines))
        fast = detail.serving_path == "ONNX fast path"
        color = good_color() if fast else warn_color()
        self.serving.setText(f"<b>Serves with: <span style='color:{color}'>{_esc(detail.serving_path)}</span></b>"
                             f"<br><span>{_esc(detail.serving_reason)}</span>")
        self.problem.setVisible(bool(detail.bundle_error))
        self.problem.setText(detail.bundle_error)
        self.graph.set_lineage(detail.lineage)
        _fill(self.signature, [[c.name, c.dtype, "yes" if c.nullable else "no"] for c in sig.inputs])
        _fill(self.files, [[rel, fmt_size(size), digest] for rel, size, digest in detail.files], frozenset({1}))
        env = detail.environment
        rows = [["python", str(env.get("python", "?"))]] if env else []
        rows += [[k, str(v)] for k, v in sorted((env.get("packages") or {}).items())]
        _fill(self.environment, rows)


def _esc(text: Any) -> str:
    from html import escape

    return escape(str(text))
