"""The runs table model: a QAbstractTableModel over store.search_runs, fetched page by page, sorted by the store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from mlops_desktop.gui.theme import status_color
from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.textfmt import fmt_duration, fmt_number
from mlops_desktop.tracking.entities import Run, RunPage

PAGE_SIZE = 200
Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()


@dataclass(frozen=True)
class Column:
    kind: str    # attr | param | metric | tag
    key: str
    title: str

    @property
    def order_key(self) -> str | None:
        if self.kind == "attr":
            return {"status": "status", "name": "name", "started": "start_time", "duration": "duration",
                    "host": "host", "user": "user", "experiment": "experiment"}.get(self.key)
        return f"{self.kind}s.`{self.key}`"

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.key}"


BASE_COLUMNS = [Column("attr", "status", "Status"), Column("attr", "name", "Name"),
                Column("attr", "experiment", "Experiment"), Column("attr", "started", "Started"),
                Column("attr", "duration", "Duration"), Column("attr", "host", "Host")]


def fetch_page(store: Any, experiment_ids: list[int] | None, filter_string: str, order_by: list[str],
               limit: int, offset: int = 0, *, progress: Any = None) -> RunPage:
    """Worker side of the model (no Qt): one page of runs."""
    return store.search_runs(experiment_ids=experiment_ids, filter_string=filter_string or None,
                             order_by=order_by, limit=limit, offset=offset)


class RunsTableModel(QAbstractTableModel):
    """Rows are runs in the store's order; ``set_query`` restarts, ``fetchMore`` loads the next page.

    Sorting and filtering are done by the store (``order_by`` and the filter language), never in Python.
    """

    query_failed = Signal(str)
    loaded = Signal()          # a fresh result (first page) arrived
    refreshed = Signal()       # the loaded rows were re-read (live update)

    def __init__(self, ctx: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.columns: list[Column] = list(BASE_COLUMNS)
        self.runs: list[Run] = []
        self.total = 0
        self.experiment_ids: list[int] | None = None
        self.filter_string = ""
        self.order_by: list[str] = []
        self.experiment_names: dict[int, str] = {}
        self.loading = False
        self.last_query_s = 0.0
        self._generation = 0
        self._fresh_pending = False

    # -- query -----------------------------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        return self.ctx.workspace.tracking

    def set_query(self, experiment_ids: list[int] | None = None, filter_string: str = "",
                  order_by: list[str] | None = None) -> bool:
        """Start a new search. A malformed filter is reported through ``query_failed`` at once (False)."""
        from mlops_desktop.errors import UsageError
        from mlops_desktop.tracking.query import compile_filter, parse_order_by

        try:
            compile_filter(filter_string or None)
            parse_order_by(order_by if order_by is not None else self.order_by)
        except UsageError as exc:
            self.query_failed.emit(str(exc))
            return False
        self.experiment_ids = experiment_ids
        self.filter_string = filter_string
        if order_by is not None:
            self.order_by = order_by
        self.reload()
        return True

    def reload(self, keep_loaded: bool = False) -> None:
        """Re-run the search; with ``keep_loaded`` re-read as many rows as are loaded now (live refresh)."""
        self._generation += 1
        generation = self._generation
        if self._fresh_pending:
            keep_loaded = False  # a newer refresh must not swallow the first page of a new query
        elif not keep_loaded:
            self._fresh_pending = True
        limit = max(PAGE_SIZE, len(self.runs)) if keep_loaded else PAGE_SIZE
        self.loading = True
        started = time.perf_counter()
        self.ctx.tasks.submit(
            fetch_page, self.store, self.experiment_ids, self.filter_string, list(self.order_by), limit,
            title="Search runs", key=f"_runs_query_{id(self)}", quiet=True, owner=self,
            on_done=lambda page: self._on_page(page, generation, keep_loaded, started),
            on_error=lambda exc: self._on_error(exc, generation))

    def _on_error(self, exc: BaseException, generation: int) -> None:
        if generation == self._generation:
            self.loading = False
            self._fresh_pending = False
            self.query_failed.emit(str(exc))

    def _on_page(self, page: RunPage, generation: int, keep_loaded: bool, started: float) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self._fresh_pending = False
        self.last_query_s = time.perf_counter() - started
        self._refresh_experiment_names()
        old_uuids = [r.uuid for r in self.runs]
        new_uuids = [r.uuid for r in page.runs]
        if keep_loaded and old_uuids == new_uuids:
            self.runs = list(page.runs)
            self.total = page.total
            if self.runs:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self.runs) - 1, len(self.columns) - 1))
            self.refreshed.emit()
            return
        self.beginResetModel()
        self.runs = list(page.runs)
        self.total = page.total
        self.endResetModel()
        (self.refreshed if keep_loaded else self.loaded).emit()

    def _refresh_experiment_names(self) -> None:
        try:
            self.experiment_names = {e.id: e.name for e in self.store.list_experiments()}
        except Exception:  # noqa: BLE001 - names are cosmetic; the search itself reported any store error
            pass

    # -- lazy loading ----------------------------------------------------------------------------------------
    def canFetchMore(self, parent: Index = ROOT) -> bool:  # noqa: N802 - Qt API
        return not parent.isValid() and not self.loading and len(self.runs) < self.total

    def fetchMore(self, parent: Index = ROOT) -> None:  # noqa: N802 - Qt API
        """Load the next page in a worker (a deep page of a large sorted search takes ~0.1 s: not on the GUI thread)."""
        if parent.isValid() or len(self.runs) >= self.total or self.loading:
            return
        self.loading = True
        generation = self._generation
        self.ctx.tasks.submit(
            fetch_page, self.store, self.experiment_ids, self.filter_string, list(self.order_by), PAGE_SIZE,
            len(self.runs), title="Load more runs", key=f"_runs_more_{id(self)}", quiet=True, owner=self,
            on_done=lambda page: self._append_page(page, generation),
            on_error=lambda exc: self._on_error(exc, generation))

    def fetch_more_now(self) -> None:
        """The next page, synchronously (used when jumping to a run further down)."""
        if len(self.runs) >= self.total:
            return
        try:
            page = fetch_page(self.store, self.experiment_ids, self.filter_string, self.order_by, PAGE_SIZE,
                              len(self.runs))
        except Exception as exc:  # noqa: BLE001 - shown in the notification channel, the table stays usable
            self.ctx.notifications.exception("Loading more runs failed", exc)
            self.total = len(self.runs)
            return
        self._append_page(page, self._generation)

    def _append_page(self, page: RunPage, generation: int) -> None:
        if generation != self._generation:
            return
        self.loading = False
        known = {r.uuid for r in self.runs}
        fresh = [r for r in page.runs if r.uuid not in known]  # runs inserted meanwhile shift the pages
        if not fresh:
            self.total = len(self.runs)
            return
        self.beginInsertRows(QModelIndex(), len(self.runs), len(self.runs) + len(fresh) - 1)
        self.runs.extend(fresh)
        self.total = max(page.total, len(self.runs))
        self.endInsertRows()

    # -- columns and sorting ---------------------------------------------------------------------------------
    def set_columns(self, params: list[str], metrics: list[str]) -> None:
        self.beginResetModel()
        self.columns = (list(BASE_COLUMNS) + [Column("param", k, k) for k in params]
                        + [Column("metric", k, k) for k in metrics])
        self.endResetModel()

    def chosen(self, kind: str) -> list[str]:
        return [c.key for c in self.columns if c.kind == kind]

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns):
            return
        key = self.columns[column].order_key
        if key is None:
            return
        direction = "DESC" if order == Qt.SortOrder.DescendingOrder else "ASC"
        self.order_by = [f"{key} {direction}"]
        self.reload()

    # -- Qt model API ----------------------------------------------------------------------------------------
    def rowCount(self, parent: Index = ROOT) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent: Index = ROOT) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        col = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return col.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return {"param": f"params.{col.key}", "metric": f"metrics.{col.key} (last value)"}.get(col.kind, col.title)
        return None

    def run_at(self, row: int) -> Run | None:
        return self.runs[row] if 0 <= row < len(self.runs) else None

    def row_of(self, uuid: str) -> int:
        for i, run in enumerate(self.runs):
            if run.uuid == uuid:
                return i
        return -1

    def cell_text(self, run: Run, col: Column) -> str:
        if col.kind == "attr":
            if col.key == "status":
                return run.status
            if col.key == "name":
                return ("↳ " if run.parent_uuid else "") + (run.name or run.uuid[:8])
            if col.key == "experiment":
                return self.experiment_names.get(run.experiment_id, str(run.experiment_id))
            if col.key == "started":
                return time.strftime("%Y-%m-%d %H:%M", time.localtime(run.start_time))
            if col.key == "duration":
                end = run.end_time if run.end_time is not None else (time.time() if run.status == "running" else None)
                return fmt_duration(None if end is None else end - run.start_time)
            return str(getattr(run, col.key, "") or "")
        if col.kind == "param":
            return run.params.get(col.key, "")
        if col.kind == "tag":
            return run.tags.get(col.key, "")
        summary = run.metrics.get(col.key)
        return fmt_number(summary.last) if summary is not None else ""

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self.runs[index.row()]
        col = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell_text(run, col)
        if role == Qt.ItemDataRole.ForegroundRole and col.key == "status" and col.kind == "attr":
            return status_color(run.status)
        if role == Qt.ItemDataRole.TextAlignmentRole and (col.kind == "metric" or col.key == "duration"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col.kind == "attr" and col.key == "name":
                return f"{run.name}\n{run.uuid}" + (f"\nchild of {run.parent_uuid}" if run.parent_uuid else "")
            if col.kind == "metric" and col.key in run.metrics:
                s = run.metrics[col.key]
                return (f"{col.key}: last {fmt_number(s.last)} (step {s.last_step}), min {fmt_number(s.min)}, "
                        f"max {fmt_number(s.max)}, {s.count} points")
        if role == Qt.ItemDataRole.UserRole:
            return run.uuid
        return None
