"""Small widgets of the Models area: alias badges, the alias timeline, the lineage graph, the reason dialog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.theme import SERIES_COLORS, current_mode

ALIASES_ROLE = int(Qt.ItemDataRole.UserRole) + 1
KNOWN_ALIAS_COLORS = {"production": "#2e7d32", "prod": "#2e7d32", "champion": "#b7791f", "challenger": "#1565c0",
                      "staging": "#6a1b9a", "shadow": "#546e7a"}


def alias_color(alias: str) -> QColor:
    known = KNOWN_ALIAS_COLORS.get(alias)
    if known:
        return QColor(known)
    return QColor(SERIES_COLORS[sum(alias.encode()) % len(SERIES_COLORS)])


def good_color() -> str:
    """Green for a healthy state, readable on the theme's background."""
    return "#81c784" if current_mode() == "dark" else "#2e7d32"


def bad_color() -> str:
    return "#ef5350" if current_mode() == "dark" else "#c62828"


def warn_color() -> str:
    return "#ffb74d" if current_mode() == "dark" else "#b26a00"


def _muted() -> QColor:
    return QColor("#9aa0a6" if current_mode() == "dark" else "#57606a")


def _text() -> QColor:
    return QColor("#e8eaed" if current_mode() == "dark" else "#1f2328")


def paint_badge(painter: QPainter, x: float, y: float, alias: str, font: QFont) -> float:
    """One alias pill at (x, y top); returns its width."""
    metrics = QFontMetrics(font)
    w = metrics.horizontalAdvance(alias) + 14
    h = metrics.height() + 4
    rect = QRectF(x, y, w, h)
    path = QPainterPath()
    path.addRoundedRect(rect, h / 2, h / 2)
    painter.fillPath(path, alias_color(alias))
    painter.setPen(QColor("#ffffff"))
    painter.setFont(font)
    painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), alias)
    return w


class BadgeDelegate(QStyledItemDelegate):
    """Paints the list of aliases in ALIASES_ROLE as coloured pills (the versions table's Aliases column)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        aliases = index.data(ALIASES_ROLE) or []
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(opt.font)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        font.setBold(True)
        h = QFontMetrics(font).height() + 4
        x = float(opt.rect.left() + 6)
        y = opt.rect.top() + (opt.rect.height() - h) / 2
        for alias in aliases:
            x += paint_badge(painter, x, y, alias, font) + 4
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        aliases = index.data(ALIASES_ROLE) or []
        font = QFont(option.font)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        font.setBold(True)
        m = QFontMetrics(font)
        width = sum(m.horizontalAdvance(a) + 18 for a in aliases) + 12
        return QSize(max(width, 60), m.height() + 10)


class AliasTimeline(QWidget):
    """The aliases' history, newest first: a dot per change on a line, 'production: v4 → v2 (rollback)' and
    'on …, by …, because …' beside it."""

    ROW = 46

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[tuple[str, str, str, bool]] = []   # (alias, headline, detail, rollback)
        self.setMinimumHeight(self.ROW)

    def set_entries(self, entries: list[tuple[str, str, str, bool]]) -> None:
        self.entries = entries
        self.setMinimumHeight(max(1, len(entries)) * self.ROW + 8)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(480, max(1, len(self.entries)) * self.ROW + 8)

    def event(self, event: Any) -> bool:
        from PySide6.QtCore import QEvent
        from PySide6.QtWidgets import QToolTip

        if event.type() == QEvent.Type.ToolTip:   # the whole reason, which the row may have elided
            row = int(event.pos().y() // self.ROW)
            if 0 <= row < len(self.entries):
                _alias, head, detail, _rb = self.entries[row]
                QToolTip.showText(event.globalPos(), f"{head}\n{detail}", self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self.entries:
            painter.setPen(_muted())
            painter.drawText(self.rect().adjusted(12, 8, 0, 0), int(Qt.AlignmentFlag.AlignLeft),
                             "No alias has been set yet. Select a version and press Promote.")
            return
        bold = QFont(self.font())
        bold.setBold(True)
        x_line = 18.0
        painter.setPen(QPen(_muted(), 1.5))
        painter.drawLine(QPointF(x_line, self.ROW / 2), QPointF(x_line, (len(self.entries) - 0.5) * self.ROW))
        for i, (alias, head, detail, is_rollback) in enumerate(self.entries):
            y = i * self.ROW + 4
            center = QPointF(x_line, y + 12)
            painter.setPen(QPen(QColor(bad_color()) if is_rollback else alias_color(alias), 2))
            painter.setBrush(alias_color(alias))
            painter.drawEllipse(center, 6, 6)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setFont(bold)
            painter.setPen(QColor("#e5534b") if is_rollback else _text())
            painter.drawText(QRectF(x_line + 16, y, self.width() - x_line - 20, 22),
                             int(Qt.AlignmentFlag.AlignVCenter), head)
            painter.setFont(self.font())
            painter.setPen(_muted())
            elided = QFontMetrics(self.font()).elidedText(detail, Qt.TextElideMode.ElideRight,
                                                          int(self.width() - x_line - 24))
            painter.drawText(QRectF(x_line + 16, y + 20, self.width() - x_line - 20, 20),
                             int(Qt.AlignmentFlag.AlignVCenter), elided)


@dataclass
class Node:
    kind: str          # dataset | step | run | version
    label: str
    detail: str
    key: str           # run uuid, dataset ref, version ref
    clickable: bool = False
    rect: QRectF = field(default_factory=QRectF)


class LineageGraph(QWidget):
    """Datasets (and the pipeline steps that made them) → the run → the version. Click the run to open it."""

    run_clicked = Signal(str)
    dataset_clicked = Signal(str)
    COLORS = {"dataset": "#59a14f", "step": "#76b7b2", "run": "#4e79a7", "version": "#f28e2b"}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns: list[list[Node]] = []
        self.setMinimumHeight(150)
        self.setMouseTracking(True)

    def set_lineage(self, lineage: dict[str, Any] | None) -> None:
        self.columns = []
        if lineage:
            steps = [Node("step", s, "pipeline step", s) for s in lineage.get("pipeline_steps") or []]
            datasets = []
            for d in lineage.get("datasets") or []:
                ref = d.get("ref") or f"{d['dataset']}@{d['version']}"
                where = f"{d.get('rows', 0):,} rows" if d.get("in_lake") else "not in this lake"
                datasets.append(Node("dataset", ref, f"{d.get('context') or 'input'} · {where}", ref,
                                     clickable=bool(d.get("in_lake"))))
            run = lineage.get("run")
            runs = [Node("run", run.get("name") or run["uuid"][:8],
                         f"{run.get('experiment') or 'run'} · {run.get('status')}", run["uuid"],
                         clickable=run.get("status") != "deleted")] if run else []
            version = [Node("version", str(lineage.get("version", "")), "model version", str(lineage.get("version")))]
            self.columns = [c for c in (steps, datasets, runs, version) if c]
        self._layout()
        self.update()

    def node_at(self, pos: QPointF) -> Node | None:
        self._layout()
        for column in self.columns:
            for node in column:
                if node.rect.contains(pos):
                    return node
        return None

    def _layout(self) -> None:
        n = len(self.columns)
        if not n:
            return
        gap = 26.0
        width = min(230.0, (self.width() - 16 - gap * (n - 1)) / n)
        fm = QFontMetrics(self.font())
        height = fm.height() * 2 + 16
        for i, column in enumerate(self.columns):
            x = 8 + i * (width + gap)
            total = len(column) * height + (len(column) - 1) * 10
            y0 = max(8.0, (self.height() - total) / 2)
            for j, node in enumerate(column):
                node.rect = QRectF(x, y0 + j * (height + 10), width, height)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self.columns:
            painter.setPen(_muted())
            painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), "no lineage recorded")
            return
        self._layout()
        painter.setPen(QPen(_muted(), 1.4))
        for left, right in zip(self.columns, self.columns[1:], strict=False):
            for a in left:
                for b in right:
                    start = QPointF(a.rect.right(), a.rect.center().y())
                    end = QPointF(b.rect.left(), b.rect.center().y())
                    path = QPainterPath(start)
                    mid = (start.x() + end.x()) / 2
                    path.cubicTo(QPointF(mid, start.y()), QPointF(mid, end.y()), end)
                    painter.drawPath(path)
                    painter.drawLine(end, end + QPointF(-6, -4))
                    painter.drawLine(end, end + QPointF(-6, 4))
        bold = QFont(self.font())
        bold.setBold(True)
        fm = QFontMetrics(self.font())
        for column in self.columns:
            for node in column:
                color = QColor(self.COLORS[node.kind])
                path = QPainterPath()
                path.addRoundedRect(node.rect, 6, 6)
                fill = QColor(color)
                fill.setAlpha(40)
                painter.fillPath(path, fill)
                painter.setPen(QPen(color, 1.6))
                painter.drawPath(path)
                inner = node.rect.adjusted(8, 4, -8, -4)
                painter.setFont(bold)
                painter.setPen(_text())
                half = inner.height() / 2
                painter.drawText(QRectF(inner.left(), inner.top(), inner.width(), half),
                                 int(Qt.AlignmentFlag.AlignVCenter),
                                 QFontMetrics(bold).elidedText(node.label, Qt.TextElideMode.ElideMiddle,
                                                               int(inner.width())))
                painter.setFont(self.font())
                painter.setPen(_muted())
                painter.drawText(QRectF(inner.left(), inner.top() + half, inner.width(), half),
                                 int(Qt.AlignmentFlag.AlignVCenter),
                                 fm.elidedText(node.detail, Qt.TextElideMode.ElideRight, int(inner.width())))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        node = self.node_at(event.position())
        clickable = node is not None and node.clickable
        self.setCursor(Qt.CursorShape.PointingHandCursor if clickable else Qt.CursorShape.ArrowCursor)
        tips = {"run": "open this run in Experiments", "dataset": "open this dataset in Data"}
        self.setToolTip(tips.get(node.kind, "") if node is not None and node.clickable else
                        "this dataset is not in the workspace's lake" if node is not None and node.kind == "dataset"
                        else "")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        node = self.node_at(event.position())
        if node is None or not node.clickable:
            return
        if node.kind == "run":
            self.run_clicked.emit(node.key)
        elif node.kind == "dataset":
            self.dataset_clicked.emit(node.key)


class ReasonDialog(QDialog):
    """Promote (point an alias at a version) or roll back (move it to its previous version), with the reason the
    audit log keeps. OK stays disabled while a protected alias has no reason. Not blocking: ``submitted`` carries
    (alias, reason); the area does the work in a worker and calls ``failed(text)`` or ``accept()``."""

    submitted = Signal(str, str)

    def __init__(self, title: str, aliases: list[str], protected: tuple[str, ...], *, describe: Any = None,
                 rollback: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        self.protected = protected
        self.rollback = rollback
        self.describe = describe or (lambda alias: "")
        self.alias = QComboBox()
        self.alias.setEditable(not rollback)
        self.alias.addItems(aliases)
        self.alias.currentTextChanged.connect(lambda _t: self._check())
        self.effect = QLabel("")
        self.effect.setObjectName("muted")
        self.effect.setWordWrap(True)
        self.reason = QPlainTextEdit()
        self.reason.setPlaceholderText("Why? (kept in the audit log with your name and the time)")
        self.reason.setFixedHeight(80)
        self.reason.textChanged.connect(self._check)
        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Roll back" if rollback else "Promote")
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Alias", self.alias)
        form.addRow("", self.effect)
        form.addRow("Reason", self.reason)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._check()

    def needs_reason(self) -> bool:
        return self.rollback or self.alias.currentText().strip() in self.protected

    def _check(self) -> None:
        alias = self.alias.currentText().strip()
        text = self.describe(alias)
        if self.needs_reason():
            text += ("\n" if text else "") + ("A rollback needs a reason." if self.rollback else
                                              f"'{alias}' is protected: a reason is required.")
        self.effect.setText(text)
        ok = bool(alias) and (bool(self.reason.toPlainText().strip()) or not self.needs_reason())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
        self.error.setText("")

    def _submit(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.submitted.emit(self.alias.currentText().strip(), self.reason.toPlainText().strip())

    def failed(self, text: str) -> None:
        self.error.setText(text)
        self._check()
        self.error.setText(text)
