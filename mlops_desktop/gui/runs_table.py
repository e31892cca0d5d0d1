"""The runs table's widget: a header that groups Parameters | Metrics, Enter/double-click to open, Tab out, and
an empty state that says why; plus the choice of default columns and the check of filter keys (no Qt there)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableView, QWidget

from mlops_desktop.tracking.entities import Run

GROUP_TITLES = {"param": "Parameters", "metric": "Metrics", "tag": "Tags"}
DATA_COLUMN_WIDTH = 88          # a param or metric column before the user widens it


class GroupedHeader(QHeaderView):
    """A horizontal header of two rows: the group (Parameters, Metrics) over its columns, then each column."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setSectionsClickable(True)
        self.setHighlightSections(False)
        self.groups: list[str] = []     # one kind per logical column ("attr", "param", "metric", "tag")

    def set_groups(self, kinds: list[str]) -> None:
        self.groups = kinds
        self.viewport().update()

    def group_of(self, logical: int) -> str:
        return self.groups[logical] if 0 <= logical < len(self.groups) else "attr"

    def sizeHint(self):  # noqa: ANN201, N802 - Qt API
        size = super().sizeHint()
        if any(k in GROUP_TITLES for k in self.groups):
            size.setHeight(size.height() + self.fontMetrics().height() + 6)
        return size

    def _band(self) -> int:
        return (self.fontMetrics().height() + 6) if any(k in GROUP_TITLES for k in self.groups) else 0

    def paintSection(self, painter: QPainter, rect: QRect, logical: int) -> None:  # noqa: N802 - Qt API
        band = self._band()
        if not band:
            super().paintSection(painter, rect, logical)
            return
        lower = QRect(rect.left(), rect.top() + band, rect.width(), rect.height() - band)
        painter.save()
        super().paintSection(painter, lower, logical)
        painter.restore()
        kind = self.group_of(logical)
        top = QRect(rect.left(), rect.top(), rect.width(), band)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Button)
        if kind in GROUP_TITLES:
            tint = QColor("#4e79a7" if kind == "param" else "#59a14f" if kind == "metric" else "#b07aa1")
            tint.setAlpha(40)
            painter.fillRect(top, base)
            painter.fillRect(top, tint)
        else:
            painter.fillRect(top, base)
        visual = self.visualIndex(logical)
        previous = self.logicalIndex(visual - 1) if visual > 0 else -1
        if previous < 0 or self.group_of(previous) != kind:
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.drawLine(top.topLeft(), top.bottomLeft())

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        band = self._band()
        if not band:
            return
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        for kind, left, right in self._spans():
            if kind not in GROUP_TITLES:
                continue
            rect = QRect(left + 6, 0, right - left - 12, band)
            text = painter.fontMetrics().elidedText(GROUP_TITLES[kind], Qt.TextElideMode.ElideRight, rect.width())
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()

    def _spans(self) -> list[tuple[str, int, int]]:
        """(kind, left, right) of each run of adjacent columns of one kind, in viewport pixels."""
        spans: list[tuple[str, int, int]] = []
        for visual in range(self.count()):
            logical = self.logicalIndex(visual)
            if self.isSectionHidden(logical):
                continue
            left = self.sectionViewportPosition(logical)
            right = left + self.sectionSize(logical)
            kind = self.group_of(logical)
            if spans and spans[-1][0] == kind:
                spans[-1] = (kind, spans[-1][1], right)
            else:
                spans.append((kind, left, right))
        return spans

    def group_titles(self) -> list[str]:
        """What the top row says, left to right (for tests and screen readers)."""
        return [GROUP_TITLES[k] for k, _l, _r in self._spans() if k in GROUP_TITLES]


class RunsTable(QTableView):
    """Tab moves on to the next widget (not from cell to cell); Enter or a double click opens the run."""

    open_requested = Signal(QModelIndex)
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grouped_header = GroupedHeader(self)
        self.setHorizontalHeader(self.grouped_header)
        self.setTabKeyNavigation(False)
        self.doubleClicked.connect(self.open_requested.emit)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.empty = QLabel(self.viewport())
        self.empty.setObjectName("muted")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setTextFormat(Qt.TextFormat.PlainText)
        self.empty.hide()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        index = self.currentIndex()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and index.isValid():
            self.open_requested.emit(index)
            return
        if event.key() in (Qt.Key.Key_Right, Qt.Key.Key_Left) and index.isValid() and self._toggle(
                index.row(), event.key() == Qt.Key.Key_Right):
            return   # opens or closes a sweep's runs, as in a tree
        super().keyPressEvent(event)

    def runs_model(self) -> Any:
        """The runs model (typed loosely: QTableView.model() is a plain QAbstractItemModel to mypy)."""
        return self.model()

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        index = self.indexAt(event.position().toPoint())
        model = self.runs_model()
        if index.isValid() and hasattr(model, "child_count"):
            col = model.columns[index.column()]
            run = model.run_at(index.row())
            if col.key == "name" and col.kind == "attr" and run is not None and model.child_count.get(run.uuid):
                left = self.visualRect(index).left() + 4 + 28 * model.depth.get(run.uuid, 0)
                if event.position().x() < left + 22:   # the arrow
                    model.toggle_expanded(run.uuid)
                    return
        super().mousePressEvent(event)

    def _toggle(self, row: int, open_: bool) -> bool:
        model = self.runs_model()
        run = model.run_at(row) if hasattr(model, "run_at") else None
        if run is None or not model.child_count.get(run.uuid):
            return False
        if (run.uuid in model.expanded) == open_:
            return False
        return bool(model.toggle_expanded(run.uuid, open_))

    def apply_hidden_rows(self) -> None:
        model = self.runs_model()
        if not hasattr(model, "hidden_rows"):
            return
        for row, hidden in enumerate(model.hidden_rows()):
            if self.isRowHidden(row) != hidden:
                self.setRowHidden(row, hidden)

    def show_empty(self, text: str | None) -> None:
        """A sentence over the empty table saying why it is empty (None hides it)."""
        if not text:
            self.empty.hide()
            return
        self.empty.setText(text)
        self.empty.show()
        self._place_empty()

    def _place_empty(self) -> None:
        rect = self.viewport().rect().adjusted(24, 12, -24, -12)
        self.empty.setGeometry(rect)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._place_empty()
        if event.oldSize().width() != event.size().width():
            self.resized.emit()


def default_columns(runs: Iterable[Run], room: int) -> tuple[list[str], list[str]]:
    """The params whose value differs between the runs (every param of a lone run) and the metrics they have, as
    many as ``room`` columns hold (params get up to half of them): what MLflow and W&B show before anyone
    chooses."""
    runs = list(runs)
    values: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    for run in runs:
        for key, value in run.params.items():
            values.setdefault(key, set()).add(value)
        for key in run.metrics:
            present[key] = present.get(key, 0) + 1
    missing = {k for k in values if any(k not in r.params for r in runs)}
    varying = [k for k, v in values.items() if len(v) > 1 or (k in missing and len(runs) > 1)]
    if len(runs) < 2:  # one run: nothing can vary, and its params are what it was run with
        varying = list(values)
    # most common first, then by name; a param that every run has and that differs comes first
    counts = {k: sum(1 for r in runs if k in r.params) for k in varying}
    params = sorted(varying, key=lambda k: (-counts[k], k))
    metrics = sorted(present, key=lambda k: (-present[k], k))
    room = max(2, room)
    # metrics first (what a run is judged by), params get up to half the room; a lone run's params (all of them,
    # none chosen by varying) up to a third, so its metrics keep most of a 1280 px table
    share = max(1, room // 3) if len(runs) < 2 else room // 2
    n_metrics = min(len(metrics), room - min(len(params), share))
    n_params = min(len(params), room - n_metrics)
    return params[:n_params], metrics[:n_metrics]


_KEY = re.compile(r"""^(params|metrics|tags)\.(`[^`]*`|"[^"]*"|[A-Za-z_0-9][\w\-]*(?:\.[A-Za-z_0-9][\w\-]*)*)""")


def referenced_keys(filter_string: str) -> list[tuple[str, str]]:
    """(kind, key) of every params./metrics./tags. field in a filter (kind: param, metric, tag)."""
    from mlops_desktop.tracking.query import tokenize

    out: list[tuple[str, str]] = []
    try:
        tokens = tokenize(filter_string)
    except Exception:  # noqa: BLE001 - a malformed filter is reported by the query itself
        return out
    for tok in tokens:
        if tok.kind != "word":
            continue
        m = _KEY.match(tok.text)
        if not m:
            continue
        kind = m.group(1)[:-1]
        key = m.group(2)
        if key[0] in "`\"":
            key = key[1:-1]
        elif kind == "metric":
            head, _, agg = key.rpartition(".")
            if head and agg in ("last", "min", "max", "count"):
                key = head
        out.append((kind, key))
    return out


def unknown_key_message(filter_string: str, params: list[str], metrics: list[str], tags: list[str]) -> str:
    """'No run has a metric named "val_accc" (did you mean "val_acc"?)' for keys no run has; '' when all exist."""
    known = {"param": params, "metric": metrics, "tag": tags}
    words = {"param": "param", "metric": "metric", "tag": "tag"}
    problems = []
    for kind, key in referenced_keys(filter_string):
        names = known[kind]
        if key in names:
            continue
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
        if not close:
            lowered = {n.lower(): n for n in names}
            close = [lowered[key.lower()]] if key.lower() in lowered else []
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        problems.append(f'No run has a {words[kind]} named "{key}"{hint}.')
    return " ".join(dict.fromkeys(problems))


def empty_text(total_in_scope: int | None, filter_string: str, experiment: str | None, workspace_empty: bool) -> str:
    """Why the table is empty, in one or two sentences."""
    if workspace_empty:
        return ("No runs in this workspace yet. Log one from Python (import mlops_desktop.tracking as mt; "
                "mt.start_run(); mt.log_metric('loss', 0.5)), start a job, or fill it with demo runs "
                "(File ▸ Fill with demo data).")
    where = f'in "{experiment}"' if experiment else "in this workspace"
    if filter_string:
        return f"No run {where} matches the filter  {filter_string}\nClear it (the × in the filter bar) to see all."
    return f"No runs {where} yet."
