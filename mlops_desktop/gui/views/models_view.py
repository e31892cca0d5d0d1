"""The Models area: registered models, their versions with metrics and alias badges, the alias timeline with
Promote and Roll back, version detail with lineage, local serving with live figures, and "Try it"."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QDateTime, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDateTimeEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views import models_data as data
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.data_panels import pad_cells
from mlops_desktop.gui.views.models_aliases import AliasActions
from mlops_desktop.gui.views.models_detail import VersionDetailPanel
from mlops_desktop.gui.views.models_widgets import ALIASES_ROLE, AliasTimeline, BadgeDelegate, ReasonDialog
from mlops_desktop.registry.entities import ModelVersion

TAB_TITLES = {"aliases": "Aliases", "version": "Version detail", "serve": "Serve locally", "try": "Try it"}
FIXED_COLUMNS = ("Version", "Aliases", "Flavor", "Serves with")
TAIL_COLUMNS = ("Registered", "By", "Run")
SERVING_WORDS = {"onnxruntime": "ONNX fast path", "sklearn": "scikit-learn", "torch": "PyTorch", "python": "python"}


class VersionsModel(RowTableModel):
    """The versions of one model: fixed columns, then one per metric copied from the runs."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.metric_keys: list[str] = []
        self.columns = FIXED_COLUMNS + TAIL_COLUMNS

    @property
    def versions(self) -> list[ModelVersion]:
        return self.rows

    def set_versions(self, versions: list[ModelVersion], metric_keys: list[str]) -> None:
        self.beginResetModel()
        self.rows = list(reversed(versions))   # newest first
        self.metric_keys = metric_keys
        self.columns = FIXED_COLUMNS + tuple(metric_keys) + TAIL_COLUMNS
        n = len(FIXED_COLUMNS)
        self.numeric_columns = frozenset({0, *range(n, n + len(metric_keys))})
        self.endResetModel()

    def row_of(self, version: int) -> int | None:
        return next((i for i, v in enumerate(self.rows) if v.version == version), None)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        v: ModelVersion = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(col)
        if role == ALIASES_ROLE:
            return list(v.aliases) if col == 1 else None
        if role == Qt.ItemDataRole.ToolTipRole and col == len(self.columns) - 1:
            return v.run_uuid or ""
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        n = len(FIXED_COLUMNS)
        if col == 0:
            return f"v{v.version}"
        if col == 1:
            return ""   # painted as badges
        if col == 2:
            return v.flavor
        if col == 3:
            return SERVING_WORDS.get(v.serving_path, v.serving_path)
        if n <= col < n + len(self.metric_keys):
            value = v.metrics.get(self.metric_keys[col - n])
            return "–" if value is None else f"{value:.4g}"
        tail = col - n - len(self.metric_keys)
        if tail == 0:
            return time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at))
        if tail == 1:
            return v.created_by
        return (v.run_uuid or "")[:8]


class ModelsView(AliasActions, AreaView):
    area_id = "models"
    title = "Models"
    icon_name = "models"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.page: data.ModelPage | None = None
        self.detail: data.VersionDetail | None = None
        self._pending_model: str | None = None
        self._pending_version: int | None = None
        self.dialog: ReasonDialog | None = None
        self._models: list[Any] | None = None

        self.models = QListWidget()
        self.models.setObjectName("experiments")
        self.models.setMinimumWidth(170)
        self.models.setWordWrap(True)
        self.models.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.models.currentItemChanged.connect(lambda *_: self._model_changed())
        self.empty = QLabel("No registered models yet.\n\nRegister a run's model with\n"
                            "`mlops-desktop models register RUN --name NAME`\nor train a recipe with --register NAME.")
        self.empty.setObjectName("muted")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.hide()

        self.heading = QLabel("")
        self.heading.setObjectName("heading")
        self.subheading = QLabel("")
        self.subheading.setObjectName("muted")
        self.subheading.setTextFormat(Qt.TextFormat.PlainText)
        self.versions_model = VersionsModel(self)
        self.versions = QTableView()
        self.versions.setModel(self.versions_model)
        self.versions.setItemDelegateForColumn(1, BadgeDelegate(self.versions))
        self.versions.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.versions.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.versions.setAlternatingRowColors(True)
        self.versions.setShowGrid(False)
        self.versions.setWordWrap(False)
        self.versions.verticalHeader().hide()
        self.versions.verticalHeader().setDefaultSectionSize(26)
        pad_cells(self.versions)
        header = self.versions.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.versions.selectionModel().currentRowChanged.connect(lambda *_: self._version_changed())
        self.versions.doubleClicked.connect(lambda _i: self.show_item(tab="version"))
        self.versions.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.versions.customContextMenuRequested.connect(self._version_menu)

        # -- aliases tab
        self.promote_button = QPushButton("Promote…")
        self.promote_button.setToolTip("point an alias (production, champion, …) at the selected version")
        self.promote_button.clicked.connect(lambda: self.open_promote())
        self.rollback_button = QPushButton("Roll back…")
        self.rollback_button.setToolTip("move an alias back to the version it pointed at before")
        self.rollback_button.clicked.connect(lambda: self.open_rollback())
        self.current_aliases = QLabel("")
        self.current_aliases.setTextFormat(Qt.TextFormat.RichText)
        self.current_aliases.setWordWrap(True)
        self.current_aliases.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.timeline = AliasTimeline()
        timeline_scroll = QScrollArea()
        timeline_scroll.setWidgetResizable(True)
        timeline_scroll.setWidget(self.timeline)
        left = QVBoxLayout()
        heading = QLabel("Where the aliases point")
        heading.setObjectName("heading")
        left.addWidget(heading)
        left.addWidget(self.current_aliases)
        buttons = QHBoxLayout()
        buttons.addWidget(self.promote_button)
        buttons.addWidget(self.rollback_button)
        buttons.addStretch(1)
        left.addLayout(buttons)
        left.addSpacing(16)
        when_title = QLabel("Where did an alias point at a given time?")
        when_title.setObjectName("heading")
        left.addWidget(when_title)
        self.when_alias = QComboBox()
        self.when_alias.setMinimumWidth(130)
        self.when = QDateTimeEdit()
        self.when.setCalendarPopup(True)
        self.when.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.when.setDateTime(QDateTime.currentDateTime())
        self.when_button = QPushButton("Look up")
        self.when_button.clicked.connect(lambda: self.look_up_alias())
        when_row = QHBoxLayout()
        when_row.addWidget(self.when_alias)
        when_row.addWidget(QLabel("on"))
        when_row.addWidget(self.when)
        when_row.addWidget(self.when_button)
        when_row.addStretch(1)
        left.addLayout(when_row)
        self.when_answer = QLabel("")
        self.when_answer.setTextFormat(Qt.TextFormat.PlainText)
        self.when_answer.setWordWrap(True)
        left.addWidget(self.when_answer)
        left.addStretch(1)
        right = QVBoxLayout()
        history = QLabel("History (newest first)")
        history.setObjectName("heading")
        right.addWidget(history)
        right.addWidget(timeline_scroll, 1)
        aliases_tab = QWidget()
        aliases_layout = QHBoxLayout(aliases_tab)
        aliases_layout.addLayout(left, 2)
        aliases_layout.addLayout(right, 3)

        self.version_panel = VersionDetailPanel()
        self.version_panel.run_clicked.connect(lambda uuid: ctx.navigate("experiments", run_uuid=uuid))
        self.version_panel.dataset_clicked.connect(lambda ref: ctx.navigate("data", dataset=ref))

        self.tabs = QTabWidget()
        self.tab_ids: list[str] = []
        self._add_tab("aliases", aliases_tab)
        self._add_tab("version", self.version_panel)
        self._add_extra_tabs()

        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(4, 0, 0, 0)
        title_row = QHBoxLayout()
        title_row.addWidget(self.heading)
        title_row.addSpacing(12)
        title_row.addWidget(self.subheading, 1)
        main_layout.addLayout(title_row)
        inner = QSplitter(Qt.Orientation.Vertical)
        inner.addWidget(self.versions)
        inner.addWidget(self.tabs)
        inner.setStretchFactor(1, 1)
        inner.setSizes([190, 520])
        main_layout.addWidget(inner, 1)
        self.inner = inner
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_title = QLabel("Registered models")
        side_title.setObjectName("muted")
        side_layout.addWidget(side_title)
        side_layout.addWidget(self.models, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(side)
        split.addWidget(main)
        split.setStretchFactor(1, 1)
        split.setSizes([200, 1000])
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(split, 1)
        self.split = split
        self._update_buttons()
        from mlops_desktop.gui.live import ChangeWatcher

        # Another window or the CLI registers a version or moves an alias: the area follows (re-read when shown).
        self._stale = False
        self.watcher = ChangeWatcher(ctx, self)
        self.watcher.changed.connect(self._on_db_changed)
        ctx.add_action("Models: promote the selected version…", lambda: (ctx.navigate("models"), self.open_promote()))
        ctx.add_action("Models: roll back an alias…", lambda: (ctx.navigate("models"), self.open_rollback()))
        self.refresh()

    def _add_tab(self, tab_id: str, widget: QWidget) -> None:
        self.tab_ids.append(tab_id)
        self.tabs.addTab(widget, TAB_TITLES[tab_id])

    def _add_extra_tabs(self) -> None:
        from mlops_desktop.gui.views.models_serve import ServePanel
        from mlops_desktop.gui.views.models_try import TryPanel

        self.serve_panel = ServePanel(self.ctx)
        self._add_tab("serve", self.serve_panel)
        self.try_panel = TryPanel(self.ctx, server_of=lambda: self.serve_panel.server)
        self._add_tab("try", self.try_panel)

    # ------------------------------------------------------------------------------------------------ loading
    def refresh(self) -> None:
        self.ctx.tasks.submit(data.load_models, self.ctx.workspace, title="Load models", key=f"models-{id(self)}",
                              quiet=True, owner=self, on_done=self._show_models)

    def _on_db_changed(self) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if self._stale:
            self._stale = False
            self.refresh()
        super().showEvent(event)

    def on_workspace_changed(self) -> None:
        self.watcher.reset()
        self.page = None
        self.detail = None
        self._models = None
        self.models.clear()
        self.refresh()

    def _show_models(self, models: list[Any]) -> None:
        if models == self._models and self._pending_model is None:
            if self.current_model():
                self._model_changed()   # the list is the same; the model's versions or servers may not be
            return
        self._models = models
        current = self.current_model() or None
        wanted = self._pending_model or current
        self.models.blockSignals(True)
        self.models.clear()
        for m in models:
            aliases = ", ".join(f"{a} v{v}" for a, v in sorted(m.aliases.items()))
            item = QListWidgetItem(f"{m.name}\n{m.versions} version{'s' if m.versions != 1 else ''}"
                                   + (f" · {aliases}" if aliases else ""))
            item.setData(Qt.ItemDataRole.UserRole, m.name)
            item.setToolTip(m.description or m.name)
            self.models.addItem(item)
        self.models.blockSignals(False)
        self.empty.setVisible(not models)
        self.split.setVisible(bool(models))
        names = [m.name for m in models]
        row = names.index(wanted) if wanted in names else (0 if names else -1)
        if row >= 0:
            if self._pending_model == names[row]:
                self._pending_model = None
            self.models.setCurrentRow(row)
            if names[row] == current:   # the same model stays selected: re-read it (versions may be new)
                self._model_changed()

    def current_model(self) -> str:
        item = self.models.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else ""

    def _model_changed(self) -> None:
        name = self.current_model()
        if not name:
            return
        self.ctx.clear_status()
        self.ctx.tasks.submit(data.load_model, self.ctx.workspace, name, title=f"Load {name}",
                              key=f"model-{id(self)}", quiet=True, owner=self, on_done=self._show_page)

    def _show_page(self, page: data.ModelPage) -> None:
        previous = self.page
        if page == previous and self._pending_version is None:
            return   # nothing changed (a prediction-log commit, a server check): keep the selection and detail
        self.page = page
        m = page.model
        self.heading.setText(m.name)
        latest = f"latest v{m.latest_version}" if m.latest_version else "no versions"
        self.subheading.setText(f"{m.versions} version{'s' if m.versions != 1 else ''} · {latest}"
                                + (f" · {m.description}" if m.description else ""))
        keep = self.current_version() if previous is not None and previous.model.name == m.name else None
        self.serve_panel.set_model(m.name)
        self.versions_model.set_versions(page.versions, page.metric_keys)
        self.versions.resizeColumnsToContents()
        self._fit_versions(len(page.versions))
        wanted = self._pending_version or keep or page.default_version()
        self._pending_version = None
        row = self.versions_model.row_of(wanted) if wanted is not None else None
        if row is not None:
            self.versions.selectRow(row)
        self._show_aliases(page)
        self._version_changed()

    def _fit_versions(self, rows: int) -> None:
        """The versions table as tall as its rows (up to eight), the tabs below get the rest."""
        header = self.versions.horizontalHeader().height() or 26
        scrollbar = self.versions.horizontalScrollBar().sizeHint().height()  # wide metrics may need one
        want = header + self.versions.verticalHeader().defaultSectionSize() * max(2, min(rows, 8)) + scrollbar + 6
        total = sum(self.inner.sizes()) or 700
        self.inner.setSizes([want, max(200, total - want)])

    def current_version(self) -> int | None:
        index = self.versions.currentIndex()
        rows = self.versions_model.versions
        if not index.isValid() or index.row() >= len(rows):
            return None
        return rows[index.row()].version

    def selected_version(self) -> ModelVersion | None:
        number = self.current_version()
        return self.page.version(number) if self.page is not None and number is not None else None

    def _version_changed(self) -> None:
        self._update_buttons()
        mv = self.selected_version()
        self.on_version_selected(mv)
        if mv is None:
            self.version_panel.show_detail(None)
            return
        self.ctx.tasks.submit(data.load_version, self.ctx.workspace, mv.name, mv.version, title=f"Read {mv.ref}",
                              key=f"model-version-{id(self)}", quiet=True, owner=self, on_done=self._show_detail)

    def version_menu(self) -> QMenu:
        """What can be done with the selected version (the versions table's right-click menu)."""
        menu = QMenu(self)
        mv = self.selected_version()
        if mv is None:
            return menu
        menu.addAction(f"Promote v{mv.version}…", lambda: self.open_promote())
        menu.addAction("Serve locally", lambda: self.show_item(tab="serve"))
        menu.addAction("Try it", lambda: self.show_item(tab="try"))
        menu.addAction("Details and lineage", lambda: self.show_item(tab="version"))
        run = menu.addAction("Open its run in Experiments",
                             lambda: self.ctx.navigate("experiments", run_uuid=mv.run_uuid))
        run.setEnabled(bool(mv.run_uuid))
        menu.addAction("Copy reference", lambda: QApplication.clipboard().setText(mv.ref))
        return menu

    def _version_menu(self, pos: Any) -> None:
        index = self.versions.indexAt(pos)
        if index.isValid():
            self.versions.selectRow(index.row())
        menu = self.version_menu()
        if not menu.isEmpty():
            menu.exec(self.versions.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def on_version_selected(self, mv: ModelVersion | None) -> None:
        self.serve_panel.set_version(mv)
        self.try_panel.set_version(mv)

    def _show_detail(self, detail: data.VersionDetail) -> None:
        self.detail = detail
        self.version_panel.show_detail(detail)

    def _update_buttons(self) -> None:
        mv = self.selected_version()
        self.promote_button.setEnabled(mv is not None)
        self.promote_button.setText(f"Promote v{mv.version}…" if mv is not None else "Promote…")
        self.rollback_button.setEnabled(self.page is not None and bool(self.page.model.aliases))

    # ------------------------------------------------------------------------------------------------ navigation
    def show_item(self, model: str | None = None, version: int | str | None = None, tab: str | None = None,
                  **_kw: Any) -> None:
        """Navigation target: a model (and version) and/or a tab (aliases, version, serve, try)."""
        if tab is not None and tab not in self.tab_ids:
            from mlops_desktop.errors import UsageError

            raise UsageError(f"no tab {tab!r} in Models; choose from {', '.join(self.tab_ids)}")
        if model is not None:
            self._pending_version = int(version) if version is not None else None
            rows = [i for i in range(self.models.count())
                    if self.models.item(i).data(Qt.ItemDataRole.UserRole) == model]
            if rows and self.current_model() != model:
                self.models.setCurrentRow(rows[0])
            elif rows and self._pending_version is not None and self.page is not None:
                row = self.versions_model.row_of(self._pending_version)
                self._pending_version = None
                if row is not None:
                    self.versions.selectRow(row)
            elif not rows:
                self._pending_model = model
        if tab is not None:
            self.tabs.setCurrentIndex(self.tab_ids.index(tab))

    def on_theme_changed(self) -> None:
        if self.page is not None:
            self._show_aliases(self.page)
        self.versions.viewport().update()
        self.serve_panel.on_theme_changed()


    @staticmethod
    def palette_entries(ctx: AppContext, text: str) -> list[Any]:
        """Ctrl+K: every registered model, and NAME@ALIAS for each alias."""
        from mlops_desktop import registry
        from mlops_desktop.gui.palette import PaletteEntry

        entries = []
        for m in registry.store(ctx.workspace).list_models():
            entries.append(PaletteEntry(f"Model: {m.name}", "model", lambda n=m.name: ctx.navigate("models", model=n),
                                        detail=f"{m.versions} versions"))
            for alias, version in sorted(m.aliases.items()):
                entries.append(PaletteEntry(f"Model: {m.name}@{alias}", "model",
                                            lambda n=m.name, v=version: ctx.navigate("models", model=n, version=v),
                                            detail=f"v{version}"))
        return entries


AREA = ModelsView
