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
STALE_AFTER_S = 120.0   # a running run with no new point for this long says "no update since ..."


def last_update(run: Run) -> float:
    """When the run last wrote something we can see: its newest metric point, else its start."""
    stamps = [m.last_timestamp_ms / 1000 for m in run.metrics.values() if m.last_timestamp_ms]
    return max([run.start_time, *stamps])


def is_stale(run: Run, now: float | None = None) -> bool:
    return run.status == "running" and (now or time.time()) - last_update(run) > STALE_AFTER_S


def run_duration(run: Run, now: float | None = None) -> float | None:
    """Seconds the run ran: to its end, to now while it runs, to its last update once it has gone quiet."""
    if run.end_time is not None:
        return run.end_time - run.start_time
    if run.status != "running":
        return None
    now = now or time.time()
    return (last_update(run) if is_stale(run, now) else now) - run.start_time


def status_text(run: Run, now: float | None = None) -> str:
    if is_stale(run, now):
        return "no update since " + time.strftime("%H:%M", time.localtime(last_update(run)))
    return run.status
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
# shown when chosen (the Columns menu); the others always
OPTIONAL_ATTRS = {"experiment": "Experiment", "host": "Host", "user": "User"}
ALWAYS_ATTRS = ("status", "name", "started", "duration")


def group_children(runs: list[Run]) -> tuple[list[Run], dict[str, int], dict[str, int]]:
    """Rows in the store's order, each parent followed by its children (a sweep's runs under the sweep);
    returns (rows, depth by run, child count by run). A child whose parent is not among ``runs`` stays where
    the store put it."""
    present = {r.uuid for r in runs}
    children: dict[str, list[Run]] = {}
    top: list[Run] = []
    for run in runs:
        if run.parent_uuid and run.parent_uuid in present and run.parent_uuid != run.uuid:
            children.setdefault(run.parent_uuid, []).append(run)
        else:
            top.append(run)
    rows: list[Run] = []
    depth: dict[str, int] = {}
    seen: set[str] = set()

    def add(run: Run, level: int) -> None:
        if run.uuid in seen:   # a cycle in bad data: show each run once
            return
        seen.add(run.uuid)
        rows.append(run)
        depth[run.uuid] = level
        for child in children.get(run.uuid, []):
            add(child, level + 1)

    for run in top:
        add(run, 0)
    for run in runs:   # anything left (cycles)
        if run.uuid not in seen:
            add(run, 0)
    return rows, depth, {k: len(v) for k, v in children.items()}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
    expansion_changed = Signal()   # a parent's children were opened or closed

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
        self.colors: dict[str, str] = {}   # run -> its colour in the charts and Compare (a chip by its name)
        self.depth: dict[str, int] = {}     # sweep children sit under their parent, collapsed until opened
        self.child_count: dict[str, int] = {}
        self.expanded: set[str] = set()
        self._chips: dict[str, Any] = {}

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
        rows, depth, child_count = group_children(list(page.runs))
        old_uuids = [r.uuid for r in self.runs]
        new_uuids = [r.uuid for r in rows]
        self.depth, self.child_count = depth, child_count
        if keep_loaded and old_uuids == new_uuids:
            self.runs = rows
            self.total = page.total
            if self.runs:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self.runs) - 1, len(self.columns) - 1))
            self.refreshed.emit()
            return
        self.beginResetModel()
        self.runs = rows
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
    def set_columns(self, params: list[str], metrics: list[str], attrs: list[str] | None = None) -> None:
        """Base columns (``attrs`` adds the optional experiment/host/user; None keeps the full set), then the
        chosen params, then the chosen metrics."""
        self.beginResetModel()
        if attrs is None:
            base = list(BASE_COLUMNS)
        else:
            base = [c for c in BASE_COLUMNS if c.key in ALWAYS_ATTRS or c.key in attrs]
            if "user" in attrs:
                base.append(Column("attr", "user", "User"))
        self.columns = (base + [Column("param", k, k) for k in params] + [Column("metric", k, k) for k in metrics])
        self.endResetModel()

    def shown_attrs(self) -> list[str]:
        return [c.key for c in self.columns if c.kind == "attr" and c.key in OPTIONAL_ATTRS]

    def hidden_rows(self) -> list[bool]:
        """Per row: hidden because a parent above it is collapsed."""
        out: list[bool] = []
        closed_at: int | None = None   # depth of the collapsed parent whose children are being skipped
        for run in self.runs:
            level = self.depth.get(run.uuid, 0)
            if closed_at is not None and level > closed_at:
                out.append(True)
                continue
            closed_at = None
            out.append(False)
            if self.child_count.get(run.uuid) and run.uuid not in self.expanded:
                closed_at = level
        return out

    def toggle_expanded(self, uuid: str, on: bool | None = None) -> bool:
        """Open or close a parent's children; False when the run has none."""
        if not self.child_count.get(uuid):
            return False
        on = (uuid not in self.expanded) if on is None else on
        if on:
            self.expanded.add(uuid)
        else:
            self.expanded.discard(uuid)
        row = self.row_of(uuid)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))
        self.expansion_changed.emit()
        return True

    def set_colors(self, colors: dict[str, str]) -> None:
        if colors == self.colors:
            return
        self.colors = colors
        name = next((i for i, c in enumerate(self.columns) if c.key == "name" and c.kind == "attr"), None)
        if name is not None and self.runs:
            self.dataChanged.emit(self.index(0, name), self.index(len(self.runs) - 1, name),
                                  [Qt.ItemDataRole.DecorationRole])

    def _chip(self, color: str) -> Any:
        if color not in self._chips:
            from mlops_desktop.gui.compare import chip

            self._chips[color] = chip(color, 10)
        return self._chips[color]

    def touch_running(self) -> None:
        """Durations and "no update since" of running runs move with the clock: repaint those rows."""
        rows = [i for i, r in enumerate(self.runs) if r.status == "running"]
        if rows:
            self.dataChanged.emit(self.index(rows[0], 0), self.index(rows[-1], len(self.columns) - 1),
                                  [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole])

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
            return {"param": f"parameter params.{col.key}",
                    "metric": f"metric metrics.{col.key} (last value)"}.get(col.kind, col.title)
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
                return status_text(run)
            if col.key == "name":
                name = run.name or run.uuid[:8]
                level = self.depth.get(run.uuid, 0)
                children = self.child_count.get(run.uuid, 0)
                if children:
                    arrow = "▾" if run.uuid in self.expanded else "▸"
                    return "    " * level + f"{arrow} {name}  ({children})"
                if run.parent_uuid:
                    return "    " * max(0, level - 1) + ("    ↳ " if level else "↳ ") + name
                return name
            if col.key == "experiment":
                return self.experiment_names.get(run.experiment_id, str(run.experiment_id))
            if col.key == "started":
                started = time.localtime(run.start_time)
                same_year = started.tm_year == time.localtime().tm_year
                return time.strftime("%m-%d %H:%M" if same_year else "%Y-%m-%d", started)
            if col.key == "duration":
                return fmt_duration(run_duration(run))
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
        if role == Qt.ItemDataRole.DecorationRole and col.kind == "attr" and col.key == "name":
            color = self.colors.get(run.uuid)
            return self._chip(color) if color else None
        if role == Qt.ItemDataRole.ForegroundRole and col.key == "status" and col.kind == "attr":
            return status_color("lost" if is_stale(run) else run.status)
        if role == Qt.ItemDataRole.TextAlignmentRole and (
                col.kind == "metric" or col.key == "duration"
                or (col.kind == "param" and _is_number(run.params.get(col.key, "x")))):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col.kind == "attr" and col.key == "status" and is_stale(run):
                quiet = time.time() - last_update(run)
                return (f"Running, but nothing new arrived for {fmt_duration(quiet)} (since "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last_update(run)))}). Its process may "
                        "be gone: runs of this machine whose process died are marked lost automatically.")
            if col.kind == "attr" and col.key == "started":
                return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.start_time))
            if col.kind == "attr" and col.key == "name":
                return f"{run.name}\n{run.uuid}" + (f"\nchild of {run.parent_uuid}" if run.parent_uuid else "")
            if col.kind == "metric" and col.key in run.metrics:
                s = run.metrics[col.key]
                return (f"{col.key}: last {fmt_number(s.last)} (step {s.last_step}), min {fmt_number(s.min)}, "
                        f"max {fmt_number(s.max)}, {s.count} points")
        if role == Qt.ItemDataRole.UserRole:
            return run.uuid
        return None
