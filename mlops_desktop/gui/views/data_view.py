"""The Data area: dataset catalog, versions, lazy table preview, profiles, SQL, rejects, lineage and pipelines."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.live import ChangeWatcher
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.data_panels import LineagePanel, ProfilePanel, make_table, muted
from mlops_desktop.gui.views.data_pipelines import PipelinesPanel
from mlops_desktop.gui.views.data_rejects import RejectsPanel
from mlops_desktop.gui.views.data_sql import SqlPanel
from mlops_desktop.gui.views.data_table import LazyTableModel, RowsModel

TABS = ["table", "versions", "profile", "sql", "rejects", "lineage", "pipelines"]


def _catalog(ws: Any, *, progress: Any) -> list[Any]:
    from mlops_desktop.data import catalog

    return catalog.list_datasets(ws.db)


def _versions(ws: Any, name: str, *, progress: Any) -> list[Any]:
    from mlops_desktop.data import catalog

    return catalog.list_versions(ws.db, name)


class DataView(AreaView):
    area_id = "data"
    title = "Data"
    icon_name = "data"
    shortcuts = (("Ctrl+Enter", "Run the SQL query (in the SQL editor)"),
                 ("Ctrl+Space", "Complete a table or column name (in the SQL editor)"))

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.datasets: list[Any] = []
        self.versions: list[Any] = []
        self._pending: tuple[str, int | None] | None = None
        self._signature: list[int] | None = None

        self.list = QListWidget()
        self.list.setMinimumWidth(170)
        self.list.setFrameShape(QListWidget.Shape.NoFrame)
        self.list.currentItemChanged.connect(lambda *_: (self._moved_on(), self._on_dataset()))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._dataset_menu)
        ingest = QPushButton("Ingest…")
        ingest.clicked.connect(lambda: self.open_ingest())
        self.ingest_button = ingest
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(6, 8, 0, 6)
        heading = QLabel("Datasets")
        heading.setObjectName("heading")
        ll.addWidget(heading)
        ll.addWidget(self.list, 1)
        ll.addWidget(ingest)

        self.title_label = QLabel("")
        self.title_label.setObjectName("heading")
        self.version_box = QComboBox()
        self.version_box.setMinimumWidth(110)
        self.version_box.currentIndexChanged.connect(lambda *_: self._on_version())
        self.summary = muted()
        head = QHBoxLayout()
        head.addWidget(self.title_label)
        head.addWidget(self.version_box)
        head.addWidget(self.summary, 1)

        self.table_model = LazyTableModel(ctx, self)
        self.table_model.pages_loaded.connect(self._on_pages)
        self._sized_for: int | None = None
        self.table = make_table(self.table_model)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.verticalHeader().show()
        self.versions_model = RowsModel(self)
        self.versions_table = make_table(self.versions_model)
        self.versions_table.doubleClicked.connect(lambda i: self.version_box.setCurrentIndex(i.row()))
        self.profile = ProfilePanel(ctx)
        self.sql = SqlPanel(ctx)
        self.rejects = RejectsPanel(ctx)
        self.lineage = LineagePanel(ctx)
        self.lineage.open_ref.connect(lambda ref: self.show_item(dataset=ref))
        self.pipelines = PipelinesPanel(ctx)
        self.pipelines.ran.connect(lambda _o: self.refresh())
        self.tabs = QTabWidget()
        for widget, label in ((self.table, "Table"), (self.versions_table, "Versions"), (self.profile, "Profile"),
                              (self.sql, "SQL"), (self.rejects, "Rejects"), (self.lineage, "Lineage"),
                              (self.pipelines, "Pipelines")):
            self.tabs.addTab(widget, label)
        self.tabs.currentChanged.connect(lambda *_: (self._moved_on(), self._load_tab()))

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 6, 6, 0)
        rl.addLayout(head)
        rl.addWidget(self.tabs, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(left)
        self.split.addWidget(right)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([200, 1000])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.split)

        self.watcher = ChangeWatcher(ctx, self)
        self.watcher.changed.connect(self.refresh)
        ctx.add_action("Ingest data…", lambda: (ctx.navigate("data"), self.open_ingest()))
        ctx.add_action("Run data pipelines", lambda: (ctx.navigate("data", tab="pipelines"),
                                                     self.pipelines.run(None)))
        self.refresh()

    # -- catalog -----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.ctx.tasks.submit(_catalog, self.ctx.workspace, title="Read the data catalog", key="data-catalog",
                              quiet=True, owner=self, on_done=self._on_catalog)
        if self.tabs.currentIndex() == TABS.index("pipelines"):
            self.pipelines.reload()

    def _on_catalog(self, datasets: list[Any]) -> None:
        signature = [v.id for v in datasets]
        if signature == self._signature and self._pending is None and self.list.count():
            return  # the database changed for another reason (runs, jobs): nothing to redraw here
        self._signature = signature
        current = self.current_name()
        if self._pending is not None:
            current = self._pending[0]
        self.datasets = datasets
        self.sql.set_catalog(datasets)
        self.list.blockSignals(True)
        self.list.clear()
        select = None
        for v in datasets:
            item = QListWidgetItem(f"{v.name}\n  v{v.version} · {v.row_count:,} rows")
            item.setData(Qt.ItemDataRole.UserRole, v.name)
            item.setToolTip(f"{v.ref}: {v.row_count:,} rows, {len(v.schema)} columns, made by "
                            f"{v.producer_step or v.mode}")
            self.list.addItem(item)
            if v.name == current:
                select = item
        self.list.blockSignals(False)
        if select is None and self.list.count():
            select = self.list.item(0)
        if select is not None:
            if self.list.currentItem() is select:
                self._on_dataset()
            else:
                self.list.setCurrentItem(select)
        else:
            self._show_empty()

    def _show_empty(self) -> None:
        self.title_label.setText("No datasets yet")
        self.summary.setText("Ingest CSV, TSV, NDJSON, JSON, Parquet, SQLite or Excel files with Ingest… "
                             "(or `mlops-desktop data ingest`).")
        self.version_box.clear()
        self.table_model.set_version(None)

    def _dataset_menu(self, pos: Any) -> None:
        """Right-click on a dataset: Open in notebook (the version shown, else the latest)."""
        from PySide6.QtWidgets import QMenu

        from mlops_desktop.gui.notebook_action import open_in_notebook

        item = self.list.itemAt(pos)
        if item is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        version = self.current_version() if name == self.current_name() else None
        ref = f"{name}@{version.version}" if version is not None else name
        menu = QMenu(self)
        menu.addAction(f"Open {ref} in notebook", lambda: open_in_notebook(self.ctx, "dataset", ref))
        menu.popup(self.list.viewport().mapToGlobal(pos))
    def _moved_on(self) -> None:
        """Another dataset or tab: errors about what was shown before are stale (here and in the status bar)."""
        self.sql.clear_error()
        self.ctx.clear_status()

    def current_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _on_dataset(self) -> None:
        name = self.current_name()
        if name is None:
            return
        self.ctx.tasks.submit(_versions, self.ctx.workspace, name, title=f"Versions of {name}", key="data-versions",
                              quiet=True, owner=self, on_done=lambda vs, n=name: self._on_versions(n, vs))

    def _on_versions(self, name: str, versions: list[Any]) -> None:
        if name != self.current_name():
            return
        keep = self.current_version()
        old_latest = self.versions[-1].version if self.versions and self.versions[-1].name == name else None
        self.versions = versions
        want = None
        if self._pending is not None and self._pending[0] == name:
            want = self._pending[1]
            self._pending = None
        elif keep is not None and keep.name == name and keep.version != old_latest:
            want = keep.version  # an older version chosen on purpose stays; the latest follows new versions
        self.version_box.blockSignals(True)
        self.version_box.clear()
        for v in versions:
            self.version_box.addItem(f"v{v.version}", v.version)
        index = len(versions) - 1
        if want is not None:
            index = next((i for i, v in enumerate(versions) if v.version == want), index)
        self.version_box.setCurrentIndex(index)
        self.version_box.blockSignals(False)
        self.title_label.setText(name)
        self.versions_model.set_rows(
            ["version", "rows", "rows in", "rejected", "mode", "made by", "parents", "hash", "schema drift"],
            [(f"v{v.version}", f"{v.row_count:,}", f"{v.rows_in:,}", f"{v.rows_rejected:,}", v.mode,
              v.producer_step or "-", ", ".join(v.parents), v.content_hash[:12], "; ".join(v.drift))
             for v in reversed(versions)])
        self.versions_table.resizeColumnsToContents()
        self._on_version()

    def _on_pages(self, pages: list[int]) -> None:
        version = self.table_model.version
        if version is None or self._sized_for == version.id:
            return
        self._sized_for = version.id  # size the columns once, on the first rows that arrive
        self.table.resizeColumnsToContents()
        for c in range(self.table_model.columnCount()):
            self.table.setColumnWidth(c, min(self.table.columnWidth(c) + 10, 260))

    def current_version(self) -> Any:
        number = self.version_box.currentData()
        return next((v for v in self.versions if v.version == number), None)

    def _on_version(self) -> None:
        version = self.current_version()
        if version is None:
            return
        if self.table_model.version is None or self.table_model.version.id != version.id:
            self.table_model.set_version(version)
        source = version.source.get("paths") or [version.source.get("step") or ""]
        parts = version.source.get("partition_by")
        partitioned = f" · partitioned by {', '.join(parts)}" if parts else ""
        self.summary.setText(f"{version.row_count:,} rows · {len(version.schema)} columns · {version.bytes:,} bytes"
                             f" · {version.rows_rejected:,} rejected{partitioned} · from {', '.join(source)[:120]}")
        self.sql.follow(version.name)
        self._load_tab()

    def _load_tab(self) -> None:
        version = self.current_version()
        ref = version.ref if version is not None else None
        tab = TABS[self.tabs.currentIndex()]
        if tab == "profile":
            self.profile.show_version(ref)
        elif tab == "rejects":
            self.rejects.show_version(ref)
        elif tab == "lineage":
            self.lineage.show_version(ref)
        elif tab == "pipelines":
            self.pipelines.reload()
        elif tab == "sql" and self.sql.needs_run():
            self.sql.run()

    # -- actions -----------------------------------------------------------------------------------------------
    def open_ingest(self, paths: list[str] | None = None) -> Any:
        from mlops_desktop.gui.views.data_ingest import IngestDialog

        dialog = IngestDialog(self.ctx, self, dataset="")
        dialog.ingested.connect(lambda r: self.show_item(dataset=f"{r.dataset}@{r.version}"))
        if paths:
            dialog.set_paths(paths)
        dialog.setModal(False)
        dialog.show()
        return dialog

    def show_item(self, dataset: str | None = None, tab: str | None = None, **_kw: Any) -> None:
        if dataset is not None:
            name, _, number = dataset.partition("@")
            self._pending = (name, int(number) if number.isdigit() else None)
            self.refresh()
        if tab is not None:
            if tab not in TABS:
                from mlops_desktop.errors import UsageError

                raise UsageError(f"no tab {tab!r} in Data; choose from {', '.join(TABS)}")
            self.tabs.setCurrentIndex(TABS.index(tab))

    # -- area contract ----------------------------------------------------------------------------------------
    def on_workspace_changed(self) -> None:
        self.watcher.reset()
        self.datasets, self.versions = [], []
        self._signature = None
        self.table_model.set_version(None)
        self.refresh()

    def on_theme_changed(self) -> None:
        self.profile.on_theme_changed()
        self.lineage.on_theme_changed()

    def save_state(self) -> None:
        self.ctx.settings.setValue("data/split", self.split.saveState())
        self.ctx.settings.setValue("data/tab", self.tabs.currentIndex())

    def table_view(self) -> QTableView:
        return self.table


AREA = DataView
