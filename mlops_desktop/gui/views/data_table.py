"""Table models for the Data area: a lazy model that pages through a dataset version, and a plain rows model."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal

from mlops_desktop.gui.views.base import AppContext

PAGE_ROWS = 500
CACHE_PAGES = 64
LOADING = "…"
Index = QModelIndex | QPersistentModelIndex


def fmt_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value != 0 and (abs(value) >= 1e9 or abs(value) < 1e-4):
            return f"{value:.6g}"
        return f"{value:.6f}".rstrip("0").rstrip(".")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _load_pages(ws: Any, version: Any, pages: list[int], *, progress: Any) -> dict[int, list[tuple[str, ...]]]:
    """Worker: read whole pages of a version from its Parquet files (only the row groups they touch)."""
    from mlops_desktop.data.lake import read_page

    out: dict[int, list[tuple[str, ...]]] = {}
    for page in pages:
        progress.check()
        df = read_page(ws, version, page * PAGE_ROWS, PAGE_ROWS)
        out[page] = [tuple(fmt_cell(v) for v in row) for row in df.iter_rows()]
    return out


class LazyTableModel(QAbstractTableModel):
    """Rows of one dataset version, read page by page in the task runner as the view scrolls to them.

    rowCount is the version's row count, so the scroll bar spans millions of rows while only the pages on screen
    (and a bounded cache) are in memory. Missing cells show an ellipsis until their page arrives.
    """

    pages_loaded = Signal(list)

    def __init__(self, ctx: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.version: Any = None
        self.columns: list[str] = []
        self.types: list[str] = []
        self.rows = 0
        self.cache: OrderedDict[int, list[tuple[str, ...]]] = OrderedDict()
        self.wanted: list[int] = []
        self.in_flight = False
        self.generation = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(15)
        self._timer.timeout.connect(self._fetch)

    def set_version(self, version: Any) -> None:
        self.beginResetModel()
        self.generation += 1
        self.version = version
        self.columns = list(version.schema) if version is not None else []
        self.types = list(version.schema.values()) if version is not None else []
        self.rows = version.row_count if version is not None else 0
        self.cache.clear()
        self.wanted.clear()
        self.endResetModel()

    # -- Qt model API -------------------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else self.rows

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            numeric = self.types[index.column()].startswith(("int", "uint", "float"))
            return int((Qt.AlignmentFlag.AlignRight if numeric else Qt.AlignmentFlag.AlignLeft)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        page, offset = divmod(index.row(), PAGE_ROWS)
        rows = self.cache.get(page)
        if rows is None:
            self.request(page)
            return LOADING
        self.cache.move_to_end(page)
        return rows[offset][index.column()] if offset < len(rows) else ""

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole and section < len(self.columns):
                return self.columns[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section < len(self.types):
                return RIGHT if self.types[section].startswith(("int", "uint", "float")) else LEFT
            if role == Qt.ItemDataRole.ToolTipRole and section < len(self.columns):
                return f"{self.columns[section]} ({self.types[section]})"
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{section + 1:,}"
        return None

    # -- paging -------------------------------------------------------------------------------------------------
    def request(self, page: int) -> None:
        if page in self.wanted:
            self.wanted.remove(page)
        self.wanted.append(page)  # most recent last: what the user looks at now
        del self.wanted[:-8]
        if not self.in_flight and not self._timer.isActive():
            self._timer.start()

    def _fetch(self) -> None:
        if self.in_flight or not self.wanted or self.version is None:
            return
        pages = list(reversed(self.wanted[-3:]))
        self.wanted = [p for p in self.wanted if p not in pages]
        self.in_flight = True
        generation = self.generation
        self.ctx.tasks.submit(_load_pages, self.ctx.workspace, self.version, pages, title="Read table rows",
                              quiet=True, owner=self,
                              on_done=lambda result: self._on_pages(generation, result),
                              on_error=lambda _exc: self._on_failed())

    def _on_failed(self) -> None:
        self.in_flight = False

    def _on_pages(self, generation: int, result: dict[int, list[tuple[str, ...]]]) -> None:
        self.in_flight = False
        if generation != self.generation:
            self._timer.start()
            return
        for page, rows in result.items():
            self.cache[page] = rows
            self.cache.move_to_end(page)
            first = page * PAGE_ROWS
            last = min(self.rows, first + len(rows)) - 1
            if last >= first:
                self.dataChanged.emit(self.index(first, 0), self.index(last, max(0, len(self.columns) - 1)))
        while len(self.cache) > CACHE_PAGES:
            self.cache.popitem(last=False)
        self.pages_loaded.emit(sorted(result))
        if self.wanted:
            self._timer.start()

    def loaded(self, row: int) -> bool:
        return row // PAGE_ROWS in self.cache


_NUMBER_TEXT = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?([eE][-+]?\d+)?\s?%?$|^[-+]?(inf|NaN|nan)$")
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)


def is_number(value: Any) -> bool:
    """A value read as a number: int or float (not bool), or text such as '1,234', '-0.5', '12.5 %'."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_NUMBER_TEXT.match(value.strip()))


def numeric_columns(rows: list[tuple[Any, ...]], width: int) -> set[int]:
    """Columns whose every non-empty value is a number: they are right-aligned, as numbers are read."""
    numeric = set(range(width))
    seen: set[int] = set()
    for row in rows:
        for c in list(numeric):
            value = row[c] if c < len(row) else None
            if value is None or value == "":
                continue
            seen.add(c)
            if not is_number(value):
                numeric.discard(c)
        if not numeric:
            break
    return numeric & seen


class RowsModel(QAbstractTableModel):
    """A small table held in memory (query results, rejects, profiles); numeric columns are right-aligned."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.columns: list[str] = []
        self.rows: list[tuple[str, ...]] = []
        self.tooltips: list[str] = []
        self.numeric: set[int] = set()

    def set_rows(self, columns: list[str], rows: list[tuple[Any, ...]], tooltips: list[str] | None = None) -> None:
        self.beginResetModel()
        self.columns = list(columns)
        self.numeric = numeric_columns(rows, len(self.columns))
        self.rows = [tuple(fmt_cell(v) for v in r) for r in rows]
        self.tooltips = tooltips or []
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if index.column() in self.numeric else LEFT
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if section in self.numeric else LEFT
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.columns[section] if section < len(self.columns) else None
        return str(section + 1)
