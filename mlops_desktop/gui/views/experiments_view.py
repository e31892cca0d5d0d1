"""The Experiments area: experiments list, runs table with query filter, run detail, live charts and compare."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.charts_panel import ChartsPanel
from mlops_desktop.gui.compare import CompareView
from mlops_desktop.gui.live import ChangeWatcher
from mlops_desktop.gui.palette import PaletteEntry
from mlops_desktop.gui.query_edit import QueryEdit
from mlops_desktop.gui.run_actions import RunActions
from mlops_desktop.gui.run_columns import ColumnChooser
from mlops_desktop.gui.run_detail import RunDetail
from mlops_desktop.gui.runs_model import RunsTableModel
from mlops_desktop.gui.runs_table import RunsTable, empty_text, unknown_key_message
from mlops_desktop.gui.theme import run_color
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.tracking.entities import Run

TABLE_REFRESH_MS = 400
REAP_EVERY_MS = 5_000
MAX_CHART_RUNS = 10     # distinct line colours; beyond that overlays stop being readable
MAX_COMPARE_RUNS = 20
MAX_GROUPED_RUNS = 200  # grouped charts aggregate this many of the selected runs
TABS = ["charts", "details", "compare"]
QUERY_HELP = (
    "Filter runs (Ctrl+F), then Enter:\n"
    "  params.lr < 0.01 and metrics.val_acc > 0.9 and status = finished\n"
    "  metrics.loss.min < 0.1      (.last is the default; also .min .max .count)\n"
    "  tags.stage in ('prod', 'staging') or name like '%resnet%'\n"
    "  start_time > '2026-01-01'   parent is not null   not status = failed\n"
    "Quote keys with spaces or dots: params.`batch size`, metrics.\"val.loss\".")


class ExperimentsView(RunActions, AreaView):
    area_id = "experiments"
    title = "Experiments"
    icon_name = "experiments"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.tabs: QTabWidget
        self.columns: ColumnChooser
        self._selection_timer: QTimer
        self.model = RunsTableModel(ctx, self)
        self._pending_select: str | None = None
        self._pending_experiment: int | None = None
        self._open_tab: str | None = None
        self._known_tags: list[str] = []
        self._opening = False

        self.experiments = QListWidget()
        self.experiments.setObjectName("experiments")
        self.experiments.setMinimumWidth(150)
        self.experiments.currentItemChanged.connect(lambda *_: self.apply_query())

        self.query = QueryEdit()
        self.query.setPlaceholderText("Filter runs:  params.lr < 0.01 and metrics.val_acc > 0.9 and status = finished")
        self.query.setClearButtonEnabled(True)
        self.query.setToolTip(QUERY_HELP)
        self.query.returnPressed.connect(self.apply_query)
        focus = QShortcut(QKeySequence.StandardKey.Find, self)
        focus.activated.connect(lambda: (self.query.setFocus(), self.query.selectAll()))
        self.query.textChanged.connect(lambda t: self.apply_query() if not t else None)
        self.query_error = QLabel("")
        self.query_error.setTextFormat(Qt.TextFormat.PlainText)
        self.query_error.setObjectName("error")
        self.query_error.setWordWrap(True)
        self.query_error.hide()
        self.count_label = QLabel("")
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)
        self.count_label.setObjectName("muted")
        self.columns_button = QToolButton()
        self.columns_button.setText("Columns")
        self.columns_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.columns_menu = QMenu(self.columns_button)
        self.columns_menu.aboutToShow.connect(lambda: self.columns.fill_menu(self.columns_menu))
        self.columns_button.setMenu(self.columns_menu)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(lambda: self.tabs.setCurrentIndex(TABS.index("compare")))

        self.table = RunsTable()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.open_requested.connect(lambda index: self._open_row(index.row()))
        self.columns = ColumnChooser(ctx, self.model, self.table, self)
        self.columns.apply()   # a pick kept from the last session shows at once, before the first page
        self.table.horizontalHeader().setSortIndicator(2, Qt.SortOrder.DescendingOrder)
        self.table.horizontalHeader().setSortIndicatorShown(True)
        self.table.horizontalHeader().sortIndicatorChanged.connect(self.model.sort)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_timer.start())
        delete = QShortcut(QKeySequence.StandardKey.Delete, self.table)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.delete_selected)

        self.charts = ChartsPanel(ctx)
        self.detail = RunDetail(ctx)
        self.compare = CompareView(ctx.settings)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.charts, "Charts")
        self.tabs.addTab(self.detail, "Details")
        self.tabs.addTab(self.compare, "Compare")

        bar = QHBoxLayout()
        bar.addWidget(self.query, 1)
        bar.addWidget(self.columns_button)
        bar.addWidget(self.compare_button)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(6, 6, 6, 0)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.query_error)
        top_layout.addWidget(self.table, 1)
        top_layout.addWidget(self.count_label)
        self.vsplit = QSplitter(Qt.Orientation.Vertical)
        self.vsplit.addWidget(top)
        self.vsplit.addWidget(self.tabs)
        self.vsplit.setStretchFactor(0, 2)
        self.vsplit.setStretchFactor(1, 3)
        self.hsplit = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 8, 0, 0)
        heading = QLabel("Experiments")
        heading.setObjectName("heading")
        left_layout.addWidget(heading)
        left_layout.addWidget(self.experiments, 1)
        self.experiments.setFrameShape(QListWidget.Shape.NoFrame)
        self.hsplit.addWidget(left)
        self.hsplit.addWidget(self.vsplit)
        self.hsplit.setStretchFactor(1, 1)
        self.hsplit.setSizes([175, 900])
        self.vsplit.setSizes([330, 470])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hsplit)
        self._restore_state()

        self._selection_timer = QTimer(self)
        self._selection_timer.setSingleShot(True)
        self._selection_timer.setInterval(60)
        self._selection_timer.timeout.connect(self._on_selection)
        self._table_timer = QTimer(self)
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(TABLE_REFRESH_MS)
        self._table_timer.timeout.connect(lambda: self.model.reload(keep_loaded=True))
        self._detail_timer = QTimer(self)  # the detail tables are re-read at most once a second while live
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(1000)
        self._detail_timer.timeout.connect(self.detail.reload)
        # the sidebar's experiments and run counts follow other processes too, at most every 1.5 s
        self._experiments_timer = QTimer(self)
        self._experiments_timer.setSingleShot(True)
        self._experiments_timer.setInterval(1500)
        self._experiments_timer.timeout.connect(self._fill_experiments)
        self.watcher = ChangeWatcher(ctx, self)
        self.watcher.changed.connect(self._on_db_changed)
        self.model.query_failed.connect(self._show_query_error)
        self.model.loaded.connect(self._on_loaded)
        self.model.refreshed.connect(self._on_refreshed)
        self.model.modelReset.connect(self._update_count)
        for signal in (self.model.modelReset, self.model.rowsInserted, self.model.expansion_changed,
                       self.model.refreshed):
            signal.connect(lambda *_: self.table.apply_hidden_rows())
        self.model.rowsInserted.connect(lambda *_: self._update_count())
        ctx.add_action("Compare selected runs", lambda: (ctx.navigate("experiments"),
                                                         self.tabs.setCurrentIndex(TABS.index("compare"))))
        ctx.add_action("Delete selected runs…", self.delete_selected)
        ctx.add_action("Clear the run filter", lambda: self.query.setText(""))
        self._fill_experiments()
        self.apply_query()
        # runs whose local process died are marked lost (as the CLI does), at the start and every 5 s while
        # running runs are listed (durations and "no update since" tick with it): never shown as running forever
        self._reap_timer = QTimer(self)
        self._reap_timer.setInterval(REAP_EVERY_MS)
        self._reap_timer.timeout.connect(self.reap_lost_runs)
        self._reap_timer.timeout.connect(self.model.touch_running)
        self.reap_lost_runs()

    # -- experiments and query ---------------------------------------------------------------------------------
    def _fill_experiments(self) -> None:
        """Re-read experiments and run counts in a worker (a GROUP BY over 100,000 runs is not for the GUI thread)."""
        def load(store: Any, *, progress: Any) -> tuple[list[Any], dict[int, int]]:
            counts = store.experiment_run_counts() if hasattr(store, "experiment_run_counts") else {}
            return store.list_experiments(), counts

        self.ctx.tasks.submit(load, self.ctx.workspace.tracking, title="Load experiments",
                              key=f"_experiments_{id(self)}", quiet=True, owner=self, on_done=self._show_experiments)

    def _show_experiments(self, result: tuple[list[Any], dict[int, int]]) -> None:
        experiments, counts = result
        before = self.current_experiment_id()
        ids = [None] + [e.id for e in experiments]
        shown = [self.experiments.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.experiments.count())]
        if ids == shown and self._pending_experiment is None:
            # the same experiments: only the counts change (no flicker, the scroll position and selection stay)
            self.experiments.item(0).setText(f"All runs  ({sum(counts.values()):,})")
            for i, exp in enumerate(experiments, start=1):
                self.experiments.item(i).setText(f"{exp.name}  ({counts.get(exp.id, 0):,})")
            return
        wanted = self._pending_experiment if self._pending_experiment is not None else before
        self._pending_experiment = None
        self.experiments.blockSignals(True)
        self.experiments.clear()
        all_item = QListWidgetItem(f"All runs  ({sum(counts.values()):,})")
        all_item.setData(Qt.ItemDataRole.UserRole, None)
        self.experiments.addItem(all_item)
        select = all_item
        for exp in experiments:
            item = QListWidgetItem(f"{exp.name}  ({counts.get(exp.id, 0):,})")
            item.setData(Qt.ItemDataRole.UserRole, exp.id)
            item.setToolTip(exp.description or exp.name)
            self.experiments.addItem(item)
            if exp.id == wanted:
                select = item
        self.experiments.setCurrentItem(select)
        self.experiments.blockSignals(False)
        if self.current_experiment_id() != before:
            self.apply_query()

    def current_experiment_id(self) -> int | None:
        item = self.experiments.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def apply_query(self) -> bool:
        exp = self.current_experiment_id()
        self.columns.set_scope(exp)
        text = self.query.text().strip()
        ok = self.model.set_query([exp] if exp is not None else None, text)
        if ok:
            self.query_error.hide()
            self._set_invalid(False)
            self._check_keys(text)
        return ok

    def _check_keys(self, text: str) -> None:
        """A filter on a metric, param or tag that no run has matches nothing: say so, with the closest name."""
        if not text or not any(p in text for p in ("params.", "metrics.", "tags.")):
            return
        store = self.ctx.workspace.tracking
        tags = sorted({k for r in self.model.runs for k in r.tags}) or self._known_tags
        message = unknown_key_message(text, store.all_param_keys(), store.all_metric_keys(), tags)
        if message:
            self.query_error.setText(message)
            self.query_error.show()

    def _set_invalid(self, invalid: bool) -> None:
        self.query.setProperty("invalid", invalid)
        self.query.style().unpolish(self.query)
        self.query.style().polish(self.query)

    def _show_query_error(self, message: str) -> None:
        self.query_error.setText(message)
        self.query_error.show()
        self._set_invalid(True)

    def _update_count(self) -> None:
        m = self.model
        shown = f"{len(m.runs):,} of {m.total:,} runs" if len(m.runs) < m.total else f"{m.total:,} runs"
        self.count_label.setText(shown + (f"  ·  filter: {m.filter_string}" if m.filter_string else ""))
        if m.total or m.loading:
            self.table.show_empty(None)
            return
        item = self.experiments.currentItem()
        name = item.text().rsplit("  (", 1)[0] if item is not None and self.current_experiment_id() is not None else None
        counts = [self.experiments.item(i).text() for i in range(self.experiments.count())]
        workspace_empty = not m.filter_string and name is None and (not counts or counts[0].endswith("(0)"))
        self.table.show_empty(empty_text(None, m.filter_string, name, workspace_empty))

    def _on_loaded(self) -> None:
        self.columns.apply()
        self._update_completer()
        self._update_count()
        if self._pending_select:
            if self._select_and_open(self._pending_select) or self._opening:
                self._pending_select, self._opening = None, False
        elif self.model.runs and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)
        self._update_live()

    def _on_refreshed(self) -> None:
        fresh = {r.uuid: r for r in self.model.runs}
        charts = [fresh.get(r.uuid, r) for r in self.charts.runs]
        self.charts.set_runs(charts, all_runs=[fresh.get(r.uuid, r) for r in self.charts.all_runs])
        shown = self.detail.run
        if shown is not None and shown.uuid in fresh and fresh[shown.uuid].status != shown.status:
            self.detail.reload()
        self._update_live()

    # -- columns ---------------------------------------------------------------------------------------------
    def toggle_column(self, kind: str, key: str, on: bool) -> None:
        self.columns.toggle(kind, key, on)

    def _update_completer(self) -> None:
        from mlops_desktop.tracking.query import ATTRIBUTES

        store = self.ctx.workspace.tracking
        tags = sorted({k for r in self.model.runs for k in r.tags})
        self._known_tags = tags
        self.query.set_keys(store.all_param_keys(), store.all_metric_keys(), tags, sorted(ATTRIBUTES))

    # -- selection -------------------------------------------------------------------------------------------
    def selected_runs(self) -> list[Run]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.runs[r] for r in rows if r < len(self.model.runs)]

    def current_run(self) -> Run | None:
        index = self.table.currentIndex()
        return self.model.run_at(index.row()) if index.isValid() else None

    def _on_selection(self) -> None:
        runs = self.selected_runs()
        current = self.current_run()
        if current is not None and current not in runs and runs:
            current = runs[0]
        self.charts.set_runs(runs[:MAX_CHART_RUNS], selected=len(runs), all_runs=runs[:MAX_GROUPED_RUNS])
        self.model.set_colors({r.uuid: run_color(i) for i, r in enumerate(runs[:MAX_CHART_RUNS])})
        self.detail.show_run(current.uuid if current else (runs[0].uuid if runs else None))
        self.compare.set_runs(runs[:MAX_COMPARE_RUNS])
        self.compare_button.setEnabled(len(runs) >= 2)
        self._update_live()

    def _open_row(self, row: int) -> None:
        """Enter or a double click on a row: its details."""
        run = self.model.run_at(row)
        if run is not None:
            self.open_run(run.uuid, tab="details")

    def select_run(self, uuid: str) -> bool:
        row = self.model.row_of(uuid)
        while row < 0 and len(self.model.runs) < self.model.total and not self.model.loading:
            self.model.fetch_more_now()
            row = self.model.row_of(uuid)
            if len(self.model.runs) > 5000:
                break
        if row < 0:
            return False
        parent = self.model.runs[row].parent_uuid
        while parent and self.model.child_count.get(parent):   # a sweep's run: open its parent(s) first
            self.model.toggle_expanded(parent, True)
            grand = self.model.run_at(self.model.row_of(parent))
            parent = grand.parent_uuid if grand is not None else None
        self._pending_select = None
        self.table.selectionModel().setCurrentIndex(
            self.model.index(row, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def show_item(self, run_uuid: str | None = None, experiment_id: int | None = None, tab: str | None = None,
                  run: str | None = None, **_kw: Any) -> None:
        """Navigation target: an experiment, a run (selected and opened on its details) and/or a tab."""
        if tab is not None and tab not in TABS:
            from mlops_desktop.errors import UsageError

            raise UsageError(f"no tab {tab!r} in Experiments; choose from {', '.join(TABS)}")
        if experiment_id is not None:
            self.select_experiment(experiment_id)
        run_uuid = run_uuid or run
        if run_uuid is not None:
            self.open_run(run_uuid, tab=tab or "details")
            return
        if tab is not None:
            if tab == "compare" and len(self.selected_runs()) < 2 and self.model.runs:
                self.table.selectRow(0)
                for row in range(1, min(4, len(self.model.runs))):
                    self.table.selectionModel().select(self.model.index(row, 0),
                                                       QItemSelectionModel.SelectionFlag.Select
                                                       | QItemSelectionModel.SelectionFlag.Rows)
                self._on_selection()
            self.tabs.setCurrentIndex(TABS.index(tab))

    def select_experiment(self, experiment_id: int | None) -> None:
        rows = [i for i in range(self.experiments.count())
                if self.experiments.item(i).data(Qt.ItemDataRole.UserRole) == experiment_id]
        if rows:
            self._pending_experiment = None
            self.experiments.setCurrentRow(rows[0])
        else:  # the list is still loading, or the experiment is new: the next fill selects it
            self._pending_experiment = experiment_id
            self._fill_experiments()

    def open_run(self, uuid: str, tab: str = "details") -> None:
        """Select and open a run, whichever experiment and filter are shown: when the run is not in the rows
        shown, its own experiment is shown (unfiltered) and the run selected when its page arrives."""
        self._open_tab = tab
        row = -1 if self.model.loading else self.model.row_of(uuid)
        if row >= 0:
            self._select_and_open(uuid)
            return
        self._pending_select = uuid
        self.ctx.tasks.submit(lambda store, u, *, progress: store.get_run(u), self.ctx.workspace.tracking, uuid,
                              title="Open run", key=f"_open_run_{id(self)}", quiet=True, owner=self,
                              on_done=self._show_run_experiment)

    def _show_run_experiment(self, run: Run) -> None:
        if self._pending_select != run.uuid:
            return   # the user went elsewhere meanwhile
        if not self.model.loading and self.model.row_of(run.uuid) >= 0:
            self._select_and_open(run.uuid)
            return
        current = self.current_experiment_id()
        if self.query.text().strip():
            self.query.blockSignals(True)
            self.query.setText("")
            self.query.blockSignals(False)
        self._opening = True   # the next fresh result is the one that must hold the run
        if current is not None and current != run.experiment_id:
            self.select_experiment(run.experiment_id)   # -> apply_query (now, or after the list's refill)
            return
        self.apply_query()

    def _select_and_open(self, uuid: str) -> bool:
        if not self.select_run(uuid):
            return False
        tab = getattr(self, "_open_tab", None)
        if tab is not None:
            self.tabs.setCurrentIndex(TABS.index(tab))
            self._open_tab = None
        return True

    def reap_lost_runs(self) -> None:
        self.ctx.tasks.submit(lambda store, *, progress: store.reap_lost_runs(), self.ctx.workspace.tracking,
                              title="Check running runs", key=f"_reap_{id(self)}", quiet=True, owner=self,
                              on_done=lambda lost: self.refresh() if lost else None)

    # -- live ------------------------------------------------------------------------------------------------
    def _update_live(self) -> None:
        any_running = any(r.status == "running" for r in self.model.runs)
        if any_running and not self._reap_timer.isActive():
            self._reap_timer.start()
        elif not any_running:
            self._reap_timer.stop()
        fresh = {r.uuid: r.status for r in self.model.runs}
        shown = self.charts.runs + ([self.detail.run] if self.detail.run else [])
        self.watcher.set_live(any(fresh.get(r.uuid, r.status) == "running" for r in shown)
                              or any(r.status == "running" for r in self.model.runs[:200]))

    def _on_db_changed(self) -> None:
        if not self._experiments_timer.isActive():
            self._experiments_timer.start()
        self.charts.invalidate_running()
        if self.detail.run is not None and self.detail.run.status == "running" and not self._detail_timer.isActive():
            self._detail_timer.start()
        if not self._table_timer.isActive():
            self._table_timer.start()

    # -- area contract ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._fill_experiments()
        self.model.reload(keep_loaded=True)

    def on_workspace_changed(self) -> None:
        self.watcher.reset()
        self.columns.reload_settings()
        self._fill_experiments()
        self.apply_query()

    def on_theme_changed(self) -> None:
        self.charts.on_theme_changed()
        self.compare.apply_theme()

    def save_state(self) -> None:
        s = self.ctx.settings
        s.setValue("experiments/hsplit", self.hsplit.saveState())
        s.setValue("experiments/vsplit", self.vsplit.saveState())
        s.setValue("experiments/tab", self.tabs.currentIndex())
        s.setValue("experiments/widths", json.dumps(self.columns.widths))

    def _restore_state(self) -> None:
        s = self.ctx.settings
        for key, splitter in (("experiments/hsplit", self.hsplit), ("experiments/vsplit", self.vsplit)):
            state = s.value(key)
            if state is not None:
                splitter.restoreState(state)
        try:
            widths = json.loads(str(s.value("experiments/widths", "{}")))
            self.columns.widths = ({str(k): int(v) for k, v in widths.items()} if isinstance(widths, dict) else {})
        except (ValueError, TypeError):
            self.columns.widths = {}
        tab = s.value("experiments/tab")
        if tab is not None and str(tab).isdigit():
            self.tabs.setCurrentIndex(int(tab))

    @staticmethod
    def palette_entries(ctx: AppContext, text: str) -> list[PaletteEntry]:
        store = ctx.workspace.tracking
        entries = [PaletteEntry(f"Experiment: {e.name}", "experiment",
                                lambda i=e.id: ctx.navigate("experiments", experiment_id=i))
                   for e in store.list_experiments()]
        text = text.strip()
        if len(text) >= 2:  # one letter would match most runs: not worth a scan of a large workspace
            esc = text.replace("\\", "\\\\").replace("'", "\\'")
            try:
                page = store.search_runs(filter_string=f"name LIKE '%{esc}%' or run_id LIKE '{esc}%'", limit=30)
            except Exception:  # noqa: BLE001 - odd characters in a half-typed search: show no runs
                page = None
            for run in page.runs if page else []:
                entries.append(PaletteEntry(f"Run: {run.name or run.uuid[:8]}", "run",
                                            lambda u=run.uuid: ctx.navigate("experiments", run_uuid=u),
                                            detail=f"{run.status}, {run.uuid[:8]}"))
        return entries


AREA = ExperimentsView
