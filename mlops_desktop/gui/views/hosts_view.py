"""The Hosts area: this machine and SSH hosts, with live CPU, memory, disk and per-GPU bars from their inspection."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.execution.models import Host, Inventory
from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.data_panels import pad_cells
from mlops_desktop.gui.views.hosts_detail import AddHostDialog, HostDetail, ago

LIVE_INTERVAL_MS = 2000
AGE_TICK_MS = 1000
LOCAL_STALE_S = 60.0  # this machine is probed again on show when its snapshot is older than this
COLUMNS = ["Name", "Kind", "Address", "CPUs", "Memory", "GPUs", "Max jobs", "Inspected"]


def inspect_host(ws: Any, name: str, accept_new: bool, *, progress: Any) -> tuple[Inventory, Any]:
    """Worker: connect (SSH hosts), probe, and read the disk as df reports it; the GUI thread never waits on the
    network."""
    from mlops_desktop.execution import Executor
    from mlops_desktop.execution.disk_usage import measure

    progress.update(0.1, f"inspecting {name}")
    with Executor(ws, accept_new_host_key=accept_new) as ex:
        inventory = ex.inspect(name)
        progress.check()
        progress.update(0.8, f"reading the disk of {name}")
        return inventory, measure(ex, name)


def add_host(ws: Any, values: dict[str, Any], *, progress: Any) -> str:
    """Worker: the same core call as `hosts add`."""
    from mlops_desktop.execution import HostRegistry

    fields = dict(values)
    return HostRegistry(ws).add(fields.pop("name"), **fields).name


def list_hosts(ws: Any, *, progress: Any) -> list[Host]:
    from mlops_desktop.execution import HostRegistry

    return HostRegistry(ws).list()


class HostsModel(RowTableModel):
    columns = tuple(COLUMNS)
    numeric_columns = frozenset({3, 4, 6})

    @property
    def hosts(self) -> list[Host]:
        return self.rows

    def set_hosts(self, hosts: list[Host]) -> None:
        self.beginResetModel()
        self.rows = hosts
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(index.column())
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        h = self.hosts[index.row()]
        inv = h.inventory
        col = index.column()
        if col == 0:
            return h.name
        if col == 1:
            return h.kind
        if col == 2:
            return h.address
        if col == 3:
            return str(inv.cpus) if inv else "–"
        if col == 4:
            return f"{inv.memory_total_mib / 1024:.0f} GiB" if inv and inv.memory_total_mib else "–"
        if col == 5:
            if not inv:
                return "–"
            return f"{len(inv.gpus)} × {inv.gpus[0].name}" if inv.gpus else "none"
        if col == 6:
            return str(h.max_jobs)
        if col == 7:
            return ago(h.inventory_at)
        return None


class HostsView(AreaView):
    area_id = "hosts"
    title = "Hosts"
    icon_name = "hosts"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.model = HostsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        pad_cells(self.table)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())
        self.detail = HostDetail()
        self.detail.setMaximumWidth(1200)  # bars a screen wide are hard to read against their numbers
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.detail)
        # Every button goes through a lambda: clicked(bool) must never reach a slot's first parameter.
        self.add_button = QPushButton("Add host…")
        self.add_button.clicked.connect(lambda: self.open_add_dialog())
        self.import_button = QPushButton("Import ~/.ssh/config")
        self.import_button.clicked.connect(lambda: self.import_ssh_config())
        self.inspect_button = QPushButton("Inspect")
        self.inspect_button.clicked.connect(lambda: self.inspect_selected())
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.live = QCheckBox("Live")
        self.live.setToolTip(f"re-inspect the selected host every {LIVE_INTERVAL_MS / 1000:.0f} s")
        self.live.toggled.connect(self._live_toggled)
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        bar = QHBoxLayout()
        for w in (self.add_button, self.import_button, self.inspect_button, self.remove_button, self.live):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(scroll)
        split.setStretchFactor(1, 1)
        split.setSizes([160, 440])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(LIVE_INTERVAL_MS)
        self.timer.timeout.connect(self._live_tick)
        self.age_timer = QTimer(self)  # "Snapshot 14:03:12 · 4 s ago" keeps its age true
        self.age_timer.setInterval(AGE_TICK_MS)
        self.age_timer.timeout.connect(self.detail.update_age)
        self._inspecting: set[str] = set()
        self._probed: set[str] = set()  # hosts this view probed on its own since it opened
        self.disk: dict[str, Any] = {}  # host name -> DiskUsage read this session (df's own numbers)
        self.add_dialog: AddHostDialog | None = None
        # Replaceable in tests: asks the user a yes/no question.
        self.confirm = lambda title, text: QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
        ctx.add_action("Hosts: inspect the selected host", lambda: self.inspect_selected())
        ctx.add_action("Hosts: add an SSH host…", lambda: (ctx.navigate("hosts"), self.open_add_dialog()))
        self.refresh()

    # ------------------------------------------------------------------------------------------------ data
    def refresh(self) -> None:
        self.ctx.tasks.submit(list_hosts, self.ctx.workspace, title="Load hosts", key=f"hosts-list-{id(self)}",
                              quiet=True, owner=self, on_done=self._set_hosts)

    def on_workspace_changed(self) -> None:
        self.live.setChecked(False)
        self.disk.clear()
        self._probed.clear()
        self.refresh()

    def on_theme_changed(self) -> None:
        self.detail.on_theme_changed()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.age_timer.start()
        super().showEvent(event)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.age_timer.stop()
        super().hideEvent(event)

    def _set_hosts(self, hosts: list[Host], select: str | None = None) -> None:
        current = self.selected_host()
        name = select or (current.name if current else (hosts[0].name if hosts else None))
        self.model.set_hosts(hosts)
        for row, h in enumerate(hosts):
            if h.name == name:
                self.table.selectRow(row)
        self._show_selected()
        selected = self.selected_host()
        if selected is not None and selected.is_local and (
                selected.name not in self._probed or selected.inventory_at is None
                or time.time() - selected.inventory_at > LOCAL_STALE_S):
            self._probed.add(selected.name)
            self.inspect_selected(quiet=True)  # this machine costs nothing to probe: fresh bars right away

    def selected_host(self) -> Host | None:
        index = self.table.currentIndex()
        if not index.isValid() or index.row() >= len(self.model.hosts):
            return None
        return self.model.hosts[index.row()]

    def _show_selected(self) -> None:
        host = self.selected_host()
        self.detail.show_host(host, self.disk.get(host.name) if host is not None else None)
        self.remove_button.setEnabled(host is not None and not host.is_local)
        self.inspect_button.setEnabled(host is not None)

    # ------------------------------------------------------------------------------------------------ actions
    def inspect_selected(self, accept_new: bool = False, quiet: bool = False) -> None:
        host = self.selected_host()
        if host is None or host.name in self._inspecting:
            return
        self._inspecting.add(host.name)
        self.status.setText(f"inspecting {host.name}…")
        name = host.name
        self.ctx.tasks.submit(inspect_host, self.ctx.workspace, name, accept_new, title=f"Inspect {name}",
                              quiet=True, owner=self, on_done=lambda result: self._inspected(name, result),
                              on_error=lambda exc: self._inspect_failed(name, exc, quiet))

    def _inspected(self, name: str, result: tuple[Inventory, Any]) -> None:
        self._inspecting.discard(name)
        _inventory, usage = result
        if usage is not None:
            self.disk[name] = usage
        self.status.setText("")
        self.refresh()

    def _inspect_failed(self, name: str, exc: BaseException, quiet: bool) -> None:
        from mlops_desktop.execution.errors import HostKeyUnknownError
        from mlops_desktop.gui.notify import describe

        self._inspecting.discard(name)
        self.status.setText(f"{name}: {describe(exc).splitlines()[0]}")
        if isinstance(exc, HostKeyUnknownError):
            self.live.setChecked(False)
            if self.confirm("Unknown host key",
                            f"{exc.message}\n\nOnly trust it if the host's owner confirms this fingerprint:\n\n"
                            f"{exc.fingerprint}\n\nTrust this key and connect?"):
                self.inspect_selected(accept_new=True)

    def _live_toggled(self, on: bool) -> None:
        if on:
            self.timer.start()
            self._live_tick()
        else:
            self.timer.stop()

    def _live_tick(self) -> None:
        self.inspect_selected(quiet=True)  # skipped while the previous inspection still runs

    def open_add_dialog(self) -> AddHostDialog:
        """The Add host dialog, window-modal and not blocking: OK adds the host in a worker; a failure keeps the
        dialog open with the reason."""
        if self.add_dialog is not None and self.add_dialog.isVisible():
            self.add_dialog.raise_()
            return self.add_dialog
        dialog = AddHostDialog(self)
        dialog.submitted.connect(lambda values, d=dialog: self.add_host(values, d))
        dialog.finished.connect(lambda _r, d=dialog: self._dialog_closed(d))
        dialog.open()
        self.add_dialog = dialog
        return dialog

    def _dialog_closed(self, dialog: AddHostDialog) -> None:
        if self.add_dialog is dialog:
            self.add_dialog = None
        dialog.deleteLater()

    def add_host(self, values: dict[str, Any], dialog: AddHostDialog | None = None) -> None:
        """Add an SSH host from the dialog's fields (the same core call as `hosts add`)."""
        name = str(values.get("name", ""))

        def done(added: str) -> None:
            if dialog is not None:
                dialog.accept()
            self.ctx.notifications.success(f"Host {added} added", "press Inspect to read its CPUs, memory and GPUs")
            self.ctx.tasks.submit(list_hosts, self.ctx.workspace, title="Load hosts", key=f"hosts-list-{id(self)}",
                                  quiet=True, owner=self, on_done=lambda hosts: self._set_hosts(hosts, added))

        def failed(exc: BaseException) -> None:
            from mlops_desktop.gui.notify import describe

            if dialog is not None:
                dialog.failed(describe(exc))

        self.ctx.tasks.submit(add_host, self.ctx.workspace, values, title=f"Add host {name}", owner=self,
                              quiet=True, on_done=done, on_error=failed)

    def import_ssh_config(self) -> None:
        def run(ws: Any, *, progress: Any) -> int:
            from mlops_desktop.execution import HostRegistry

            return len(HostRegistry(ws).import_ssh_config())

        def done(count: int) -> None:
            self.ctx.notifications.info(f"{count} host(s) imported from ~/.ssh/config")
            self.refresh()

        self.ctx.tasks.submit(run, self.ctx.workspace, title="Import ~/.ssh/config", owner=self, quiet=True,
                              on_done=done)

    def remove_selected(self) -> None:
        host = self.selected_host()
        if host is None or host.is_local:
            return
        if not self.confirm("Remove host", f"Remove host {host.name}? Its finished jobs stay listed."):
            return

        def run(ws: Any, name: str, *, progress: Any) -> None:
            from mlops_desktop.execution import HostRegistry

            HostRegistry(ws).remove(name)

        self.disk.pop(host.name, None)
        self.ctx.tasks.submit(run, self.ctx.workspace, host.name, title=f"Remove host {host.name}", owner=self,
                              on_done=lambda _r: self.refresh())


AREA = HostsView
