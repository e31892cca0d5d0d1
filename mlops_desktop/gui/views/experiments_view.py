"""The Experiments area: experiments list, runs table with query filter, run detail, live charts and compare."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
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
from mlops_desktop.gui.run_detail import RunDetail
from mlops_desktop.gui.runs_model import RunsTableModel
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.tracking.entities import Run

TABLE_REFRESH_MS = 400
MAX_CHART_RUNS = 10     # distinct line colours; beyond that overlays stop being readable
MAX_COMPARE_RUNS = 20
TABS = ["charts", "details", "compare"]
QUERY_HELP = (
    "Filter runs (Ctrl+F), then Enter:\n"
    "  params.lr < 0.01 and metrics.val_acc > 0.9 and status = finished\n"
    "  metrics.loss.min < 0.1      (.last is the default; also .min .max .count)\n"
    "  tags.stage in ('prod', 'staging') or name like '%resnet%'\n"
    "  start_time > '2026-01-01'   parent is not null   not status = failed\n"
    "Quote keys with spaces or dots: params.`batch size`, metrics.\"val.loss\".")


class ExperimentsView(AreaView):
    area_id = "experiments"
    title = "Experiments"
    icon_name = "experiments"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.tabs: QTabWidget
        self._selection_timer: QTimer
        self.model = RunsTableModel(ctx, self)
        self._columns_chosen = self._load_columns()
        if self._columns_chosen is not None:
            self.model.set_columns(*self._columns_chosen)
        self._pending_select: str | None = None
        self._pending_experiment: int | None = None

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
        self.columns_menu.aboutToShow.connect(self._fill_columns_menu)
        self.columns_button.setMenu(self.columns_menu)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(lambda: self.tabs.setCurrentIndex(TABS.index("compare")))

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setHighlightSections(False)
        self._widths: dict[str, int] = {}
        self._sizing = False
        self.table.horizontalHeader().sectionResized.connect(self._on_section_resized)
        self.table.horizontalHeader().setSortIndicator(3, Qt.SortOrder.DescendingOrder)
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
        self.compare = CompareView()
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
        self.watcher = ChangeWatcher(ctx, self)
        self.watcher.changed.connect(self._on_db_changed)
        self.model.query_failed.connect(self._show_query_error)
        self.model.loaded.connect(self._on_loaded)
        self.model.refreshed.connect(self._on_refreshed)
        self.model.modelReset.connect(self._update_count)
        self.model.rowsInserted.connect(lambda *_: self._update_count())
        ctx.add_action("Compare selected runs", lambda: (ctx.navigate("experiments"),
                                                         self.tabs.setCurrentIndex(TABS.index("compare"))))
        ctx.add_action("Delete selected runs…", self.delete_selected)
        ctx.add_action("Clear the run filter", lambda: self.query.setText(""))
        self._fill_experiments()
        self.apply_query()
        # runs whose local process died while nobody watched are shown as lost, not as running forever
        ctx.tasks.submit(lambda *, progress: ctx.workspace.tracking.reap_lost_runs(), title="Check running runs",
                         key="_reap", quiet=True, owner=self,
                         on_done=lambda lost: self.refresh() if lost else None)

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
        ok = self.model.set_query([exp] if exp is not None else None, self.query.text().strip())
        if ok:
            self.query_error.hide()
            self._set_invalid(False)
        return ok

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

    def _on_loaded(self) -> None:
        if self._columns_chosen is None:
            self._columns_chosen = self._default_columns()
            self._apply_columns()
        self._update_completer()
        self._size_columns()
        if self._pending_select:
            self.select_run(self._pending_select)
        elif self.model.runs and not self.table.selectionModel().hasSelection():
            self.table.selectRow(0)
        self._update_live()

    def _on_refreshed(self) -> None:
        fresh = {r.uuid: r for r in self.model.runs}
        charts = [fresh.get(r.uuid, r) for r in self.charts.runs]
        self.charts.set_runs(charts)
        shown = self.detail.run
        if shown is not None and shown.uuid in fresh and fresh[shown.uuid].status != shown.status:
            self.detail.reload()
        self._update_live()

    # -- columns ---------------------------------------------------------------------------------------------
    def _load_columns(self) -> tuple[list[str], list[str]] | None:
        raw = self.ctx.settings.value("experiments/columns")
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
            return (list(data["params"]), list(data["metrics"])) if data else None
        except (ValueError, KeyError, TypeError):
            return None

    def _default_columns(self) -> tuple[list[str], list[str]]:
        params = Counter(k for r in self.model.runs for k in r.params)
        metrics = Counter(k for r in self.model.runs for k in r.metrics)
        return [k for k, _ in params.most_common(3)], [k for k, _ in metrics.most_common(3)]

    def _apply_columns(self) -> None:
        params, metrics = self._columns_chosen or ([], [])
        self.model.set_columns(params, metrics)
        self.ctx.settings.setValue("experiments/columns", json.dumps({"params": params, "metrics": metrics}))

    def toggle_column(self, kind: str, key: str, on: bool) -> None:
        params, metrics = self._columns_chosen or ([], [])
        target = params if kind == "param" else metrics
        if on and key not in target:
            target.append(key)
        elif not on and key in target:
            target.remove(key)
        self._columns_chosen = (params, metrics)
        self._apply_columns()
        self._size_columns()

    def _size_columns(self) -> None:
        """Widths the user set (remembered per column) win; other columns fit their content, up to 190 px."""
        self._sizing = True
        header = self.table.horizontalHeader()
        for c, col in enumerate(self.model.columns):
            width = self._widths.get(col.spec)
            if width is None:
                self.table.resizeColumnToContents(c)
                width = min(header.sectionSize(c) + 12, 190)
            header.resizeSection(c, width)
        self._sizing = False

    def _on_section_resized(self, index: int, _old: int, new: int) -> None:
        if not self._sizing and 0 <= index < len(self.model.columns):
            self._widths[self.model.columns[index].spec] = new

    def _fill_columns_menu(self) -> None:
        store = self.ctx.workspace.tracking
        self.columns_menu.clear()
        params, metrics = self._columns_chosen or ([], [])
        for kind, keys, chosen in (("param", store.all_param_keys(), params),
                                   ("metric", store.all_metric_keys(), metrics)):
            self.columns_menu.addSection("Params" if kind == "param" else "Metrics")
            for key in keys[:80]:
                action = self.columns_menu.addAction(key)
                action.setCheckable(True)
                action.setChecked(key in chosen)
                action.toggled.connect(lambda on, k=key, kd=kind: self.toggle_column(kd, k, on))

    def _update_completer(self) -> None:
        from mlops_desktop.tracking.query import ATTRIBUTES

        store = self.ctx.workspace.tracking
        tags = sorted({k for r in self.model.runs for k in r.tags})
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
        self.charts.set_runs(runs[:MAX_CHART_RUNS], selected=len(runs))
        self.detail.show_run(current.uuid if current else (runs[0].uuid if runs else None))
        self.compare.set_runs(runs[:MAX_COMPARE_RUNS])
        self.compare_button.setEnabled(len(runs) >= 2)
        self._update_live()

    def select_run(self, uuid: str) -> bool:
        row = self.model.row_of(uuid)
        while row < 0 and len(self.model.runs) < self.model.total and not self.model.loading:
            self.model.fetch_more_now()
            row = self.model.row_of(uuid)
            if len(self.model.runs) > 5000:
                break
        if row < 0:
            return False
        self._pending_select = None
        self.table.selectionModel().setCurrentIndex(
            self.model.index(row, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def show_item(self, run_uuid: str | None = None, experiment_id: int | None = None, tab: str | None = None,
                  **_kw: Any) -> None:
        if experiment_id is not None:
            rows = [i for i in range(self.experiments.count())
                    if self.experiments.item(i).data(Qt.ItemDataRole.UserRole) == experiment_id]
            if rows:
                self.experiments.setCurrentRow(rows[0])
            else:  # the list is still loading
                self._pending_experiment = experiment_id
        if run_uuid is not None:
            if self.model.loading or not self.select_run(run_uuid):
                self._pending_select = run_uuid
                if not self.model.loading:
                    self.experiments.setCurrentRow(0)
                    self.query.setText("")
                    self.apply_query()
        if tab is not None:
            if tab not in TABS:
                from mlops_desktop.errors import UsageError

                raise UsageError(f"no tab {tab!r} in Experiments; choose from {', '.join(TABS)}")
            if tab == "compare" and len(self.selected_runs()) < 2 and self.model.runs:
                self.table.selectionModel().select(
                    self.model.index(0, 0).parent(), QItemSelectionModel.SelectionFlag.NoUpdate)
                self.table.selectRow(0)
                for row in range(1, min(4, len(self.model.runs))):
                    self.table.selectionModel().select(self.model.index(row, 0),
                                                       QItemSelectionModel.SelectionFlag.Select
                                                       | QItemSelectionModel.SelectionFlag.Rows)
                self._on_selection()
            self.tabs.setCurrentIndex(TABS.index(tab))

    # -- live ------------------------------------------------------------------------------------------------
    def _update_live(self) -> None:
        fresh = {r.uuid: r.status for r in self.model.runs}
        shown = self.charts.runs + ([self.detail.run] if self.detail.run else [])
        self.watcher.set_live(any(fresh.get(r.uuid, r.status) == "running" for r in shown)
                              or any(r.status == "running" for r in self.model.runs[:200]))

    def _on_db_changed(self) -> None:
        self.charts.invalidate_running()
        if self.detail.run is not None and self.detail.run.status == "running" and not self._detail_timer.isActive():
            self._detail_timer.start()
        if not self._table_timer.isActive():
            self._table_timer.start()

    # -- managing runs ---------------------------------------------------------------------------------------
    def _context_menu(self, pos: Any) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        menu = QMenu(self)
        if len(runs) == 1:
            menu.addAction("Rename…", lambda: self.rename_run(runs[0]))
        menu.addAction("Add tag…", lambda: self.tag_runs(runs))
        menu.addAction("Move to experiment…", lambda: self.move_runs(runs))
        menu.addAction("Copy run id" + ("s" if len(runs) > 1 else ""),
                       lambda: QGuiApplication.clipboard().setText("\n".join(r.uuid for r in runs)))
        if len(runs) >= 2:
            menu.addAction("Compare", lambda: self.tabs.setCurrentIndex(TABS.index("compare")))
        menu.addSeparator()
        menu.addAction(f"Delete {len(runs)} run{'s' if len(runs) > 1 else ''}…", self.delete_selected)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _write(self, title: str, fn: Any) -> None:
        def job(*, progress: Any) -> None:
            fn(self.ctx.workspace.tracking)

        self.ctx.tasks.submit(job, title=title, on_done=lambda _r: self._after_write())

    def _after_write(self) -> None:
        self._fill_experiments()
        self.model.reload(keep_loaded=True)
        self.detail.reload()

    def rename_run(self, run: Run) -> None:
        name, ok = QInputDialog.getText(self, "Rename run", "Name:", text=run.name)
        if ok and name.strip():
            self._write("Rename run", lambda s: s.update_run(run.uuid, name=name.strip()))

    def tag_runs(self, runs: list[Run]) -> None:
        text, ok = QInputDialog.getText(self, "Add tag", "Tag as key=value:")
        if not ok or not text.strip():
            return
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            self.ctx.notifications.error("Tag not added", f"{text!r} is not key=value")
            return
        self._write("Tag runs", lambda s: [s.set_tags(r.uuid, {key.strip(): value.strip()}) for r in runs])

    def move_runs(self, runs: list[Run]) -> None:
        exps = self.ctx.workspace.tracking.list_experiments()
        names = [e.name for e in exps]
        name, ok = QInputDialog.getItem(self, "Move runs", f"Move {len(runs)} run(s) to experiment:", names, 0, True)
        if not ok or not name.strip():
            return

        def move(store: Any) -> None:
            exp = store.get_or_create_experiment(name.strip())
            for r in runs:
                store.update_run(r.uuid, experiment_id=exp.id)

        self._write("Move runs", move)

    def delete_selected(self) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        names = ", ".join(r.name or r.uuid[:8] for r in runs[:5]) + (" …" if len(runs) > 5 else "")
        answer = QMessageBox.question(self, "Delete runs", f"Delete {len(runs)} run(s)?\n{names}\n\n"
                                      "Deleted runs are hidden and can be restored from the command line "
                                      "until the workspace is purged.")
        if answer == QMessageBox.StandardButton.Yes:
            self._write(f"Delete {len(runs)} run(s)", lambda s: [s.delete_run(r.uuid) for r in runs])

    # -- area contract ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._fill_experiments()
        self.model.reload(keep_loaded=True)

    def on_workspace_changed(self) -> None:
        self.watcher.reset()
        self._columns_chosen = self._load_columns()
        if self._columns_chosen is not None:
            self.model.set_columns(*self._columns_chosen)
        self._fill_experiments()
        self.apply_query()

    def on_theme_changed(self) -> None:
        self.charts.on_theme_changed()

    def save_state(self) -> None:
        s = self.ctx.settings
        s.setValue("experiments/hsplit", self.hsplit.saveState())
        s.setValue("experiments/vsplit", self.vsplit.saveState())
        s.setValue("experiments/tab", self.tabs.currentIndex())
        s.setValue("experiments/widths", json.dumps(self._widths))

    def _restore_state(self) -> None:
        s = self.ctx.settings
        for key, splitter in (("experiments/hsplit", self.hsplit), ("experiments/vsplit", self.vsplit)):
            state = s.value(key)
            if state is not None:
                splitter.restoreState(state)
        try:
            widths = json.loads(str(s.value("experiments/widths", "{}")))
            self._widths = {str(k): int(v) for k, v in widths.items()} if isinstance(widths, dict) else {}
        except (ValueError, TypeError):
            self._widths = {}
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
