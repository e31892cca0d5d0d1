"""The Hosts area: this machine and SSH hosts, with live CPU, memory, disk and per-GPU bars from their inspection."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.execution.models import Host, Inventory
from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.base import AppContext, AreaView

LIVE_INTERVAL_MS = 2000
COLUMNS = ["Name", "Kind", "Address", "CPUs", "Memory", "GPUs", "Max jobs", "Inspected"]


def inspect_host(ws: Any, name: str, accept_new: bool, *, progress: Any) -> Inventory:
    """Worker: connect (SSH hosts) and probe; the GUI thread never waits on the network."""
    from mlops_desktop.execution import Executor

    progress.update(0.1, f"inspecting {name}")
    with Executor(ws, accept_new_host_key=accept_new) as ex:
        return ex.inspect(name)


def list_hosts(ws: Any, *, progress: Any) -> list[Host]:
    from mlops_desktop.execution import HostRegistry

    return HostRegistry(ws).list()


class HostsModel(RowTableModel):
    columns = tuple(COLUMNS)

    @property
    def hosts(self) -> list[Host]:
        return self.rows

    def set_hosts(self, hosts: list[Host]) -> None:
        self.beginResetModel()
        self.rows = hosts
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
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
            from mlops_desktop.textfmt import fmt_time

            return fmt_time(h.inventory_at, none="never")
        return None


class UsageBar(QWidget):
    """A labelled bar: 'Memory   12.1 of 64.0 GiB' over a 0..100 % bar."""

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(label)
        self.label.setMinimumWidth(110)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(12)
        self.text = QLabel("–")
        self.text.setObjectName("muted")
        self.text.setMinimumWidth(180)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 2)
        row.addWidget(self.label)
        row.addWidget(self.bar, 1)
        row.addWidget(self.text)

    def set_value(self, fraction: float | None, text: str) -> None:
        self.bar.setValue(0 if fraction is None else int(max(0.0, min(1.0, fraction)) * 1000))
        self.text.setText(text)

    @property
    def fraction(self) -> float:
        return self.bar.value() / 1000


def _gib(mib: float | None) -> str:
    return "–" if mib is None else f"{mib / 1024:.1f}"


class HostDetail(QWidget):
    """Bars for one host's last inventory."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Select a host")
        self.title.setObjectName("heading")
        self.facts = QLabel("")
        self.facts.setWordWrap(True)
        self.facts.setObjectName("muted")
        self.cpu = UsageBar("CPU busy")
        self.memory = UsageBar("Memory used")
        self.disk = UsageBar("Disk used")
        self.gpu_note = QLabel("")
        self.gpu_note.setWordWrap(True)
        self.gpu_box = QGridLayout()
        self.gpu_bars: list[tuple[UsageBar, UsageBar]] = []
        layout = QVBoxLayout(self)
        for w in (self.title, self.facts, self.cpu, self.memory, self.disk):
            layout.addWidget(w)
        gpu_title = QLabel("GPUs")
        gpu_title.setObjectName("heading")
        layout.addWidget(gpu_title)
        layout.addWidget(self.gpu_note)
        layout.addLayout(self.gpu_box)
        layout.addStretch(1)

    def show_host(self, host: Host | None) -> None:
        if host is None:
            self.title.setText("Select a host")
            return
        self.title.setText(f"{host.name} — {host.address}")
        inv = host.inventory
        if inv is None:
            self.facts.setText("Not inspected yet: press Inspect.")
            for bar in (self.cpu, self.memory, self.disk):
                bar.set_value(None, "–")
            self._set_gpus([], "")
            return
        facts = [inv.os, inv.kernel, f"{inv.cpus} CPUs", f"Python {inv.python or 'missing'}",
                 f"load {inv.load1:.2f}" if inv.load1 is not None else ""]
        self.facts.setText(" · ".join(f for f in facts if f))
        busy = inv.cpu_busy_pct
        self.cpu.set_value(None if busy is None else busy / 100, "–" if busy is None else f"{busy:.0f} %")
        if inv.memory_total_mib and inv.memory_available_mib is not None:
            used = inv.memory_total_mib - inv.memory_available_mib
            self.memory.set_value(used / inv.memory_total_mib,
                                  f"{_gib(used)} of {_gib(inv.memory_total_mib)} GiB")
        if inv.disk_total_mib and inv.disk_free_mib is not None:
            used = inv.disk_total_mib - inv.disk_free_mib
            self.disk.set_value(used / inv.disk_total_mib, f"{_gib(used)} of {_gib(inv.disk_total_mib)} GiB")
        self._set_gpus(inv.gpus, inv.gpu_error)

    def _set_gpus(self, gpus: list[Any], error: str) -> None:
        while len(self.gpu_bars) > len(gpus):
            for bar in self.gpu_bars.pop():
                self.gpu_box.removeWidget(bar)
                bar.deleteLater()
        while len(self.gpu_bars) < len(gpus):
            row = len(self.gpu_bars)
            pair = (UsageBar(""), UsageBar(""))
            self.gpu_box.addWidget(pair[0], row, 0)
            self.gpu_box.addWidget(pair[1], row, 1)
            self.gpu_bars.append(pair)
        for (util, mem), g in zip(self.gpu_bars, gpus, strict=True):
            util.label.setText(f"GPU {g.index} util")
            util.set_value(None if g.utilization_pct is None else g.utilization_pct / 100,
                           f"{g.utilization_pct or 0:.0f} % · {g.temperature_c or 0:.0f} °C · {g.power_w or 0:.0f} W")
            mem.label.setText(f"GPU {g.index} memory")
            mem.set_value(g.memory_fraction, f"{_gib(g.memory_used_mib)} of {_gib(g.memory_total_mib)} GiB")
            util.setToolTip(f"{g.name} {g.uuid}")
        self.gpu_note.setText(error if not gpus else ", ".join(sorted({g.name for g in gpus})))


class AddHostDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add SSH host")
        form = QFormLayout(self)
        self.name, self.hostname, self.user = QLineEdit(), QLineEdit(), QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(22)
        self.identity = QLineEdit()
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        key_row = QHBoxLayout()
        key_row.addWidget(self.identity, 1)
        key_row.addWidget(browse)
        self.proxy_jump, self.python, self.work_dir = QLineEdit(), QLineEdit("python3"), QLineEdit()
        self.work_dir.setPlaceholderText("~/.mlops-desktop")
        self.max_jobs = QSpinBox()
        self.max_jobs.setRange(1, 256)
        for label, widget in (("Name", self.name), ("HostName", self.hostname), ("Port", self.port),
                              ("User", self.user), ("IdentityFile", key_row), ("ProxyJump", self.proxy_jump),
                              ("Python", self.python), ("Work folder", self.work_dir), ("Max jobs", self.max_jobs)):
            form.addRow(label, widget)
        note = QLabel("Keys only: use ssh-agent for keys with a passphrase. Nothing secret is stored.")
        note.setObjectName("muted")
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Private key")
        if path:
            self.identity.setText(path)

    def values(self) -> dict[str, Any]:
        return {"name": self.name.text().strip(), "hostname": self.hostname.text().strip(), "port": self.port.value(),
                "user": self.user.text().strip(), "identity_file": self.identity.text().strip(),
                "proxy_jump": self.proxy_jump.text().strip(), "python": self.python.text().strip() or "python3",
                "work_dir": self.work_dir.text().strip(), "max_jobs": self.max_jobs.value()}


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
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())
        self.detail = HostDetail()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.detail)
        self.add_button = QPushButton("Add host…")
        self.add_button.clicked.connect(self.add_host)
        self.import_button = QPushButton("Import ~/.ssh/config")
        self.import_button.clicked.connect(self.import_ssh_config)
        self.inspect_button = QPushButton("Inspect")
        self.inspect_button.clicked.connect(lambda: self.inspect_selected())
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.live = QCheckBox("Live")
        self.live.setToolTip(f"re-inspect the selected host every {LIVE_INTERVAL_MS / 1000:.0f} s")
        self.live.toggled.connect(self._live_toggled)
        self.status = QLabel("")
        self.status.setObjectName("muted")
        bar = QHBoxLayout()
        for w in (self.add_button, self.import_button, self.inspect_button, self.remove_button, self.live):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(scroll)
        split.setSizes([200, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(LIVE_INTERVAL_MS)
        self.timer.timeout.connect(self._live_tick)
        self._inspecting: set[str] = set()
        # Replaceable in tests: asks the user a yes/no question.
        self.confirm = lambda title, text: QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
        ctx.add_action("Hosts: inspect the selected host", lambda: self.inspect_selected())
        self.refresh()

    # ------------------------------------------------------------------------------------------------ data
    def refresh(self) -> None:
        self.ctx.tasks.submit(list_hosts, self.ctx.workspace, title="Load hosts", key=f"hosts-list-{id(self)}",
                              quiet=True, owner=self, on_done=self._set_hosts)

    def on_workspace_changed(self) -> None:
        self.live.setChecked(False)
        self.refresh()

    def _set_hosts(self, hosts: list[Host]) -> None:
        current = self.selected_host()
        name = current.name if current else (hosts[0].name if hosts else None)
        self.model.set_hosts(hosts)
        for row, h in enumerate(hosts):
            if h.name == name:
                self.table.selectRow(row)
        self._show_selected()
        selected = self.selected_host()
        if selected is not None and selected.is_local and selected.inventory is None:
            self.inspect_selected(quiet=True)  # this machine costs nothing to probe: show its bars right away

    def selected_host(self) -> Host | None:
        index = self.table.currentIndex()
        if not index.isValid() or index.row() >= len(self.model.hosts):
            return None
        return self.model.hosts[index.row()]

    def _show_selected(self) -> None:
        host = self.selected_host()
        self.detail.show_host(host)
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
                              quiet=True, owner=self, on_done=lambda _inv: self._inspected(name),
                              on_error=lambda exc: self._inspect_failed(name, exc, quiet))

    def _inspected(self, name: str) -> None:
        self._inspecting.discard(name)
        self.status.setText("")
        self.refresh()

    def _inspect_failed(self, name: str, exc: BaseException, quiet: bool) -> None:
        from mlops_desktop.execution.errors import HostKeyUnknownError

        self._inspecting.discard(name)
        self.status.setText(f"{name}: {str(exc).splitlines()[0]}")
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

    def add_host(self, values: dict[str, Any] | None = None) -> None:
        if values is None:
            dialog = AddHostDialog(self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            values = dialog.values()

        def add(ws: Any, *, progress: Any) -> str:
            from mlops_desktop.execution import HostRegistry

            fields = dict(values)
            return HostRegistry(ws).add(fields.pop("name"), **fields).name

        self.ctx.tasks.submit(add, self.ctx.workspace, title=f"Add host {values.get('name')}", owner=self,
                              on_done=lambda _n: self.refresh())

    def import_ssh_config(self) -> None:
        def run(ws: Any, *, progress: Any) -> int:
            from mlops_desktop.execution import HostRegistry

            return len(HostRegistry(ws).import_ssh_config())

        def done(count: int) -> None:
            self.ctx.notifications.info(f"{count} host(s) imported")
            self.refresh()

        self.ctx.tasks.submit(run, self.ctx.workspace, title="Import ~/.ssh/config", owner=self, on_done=done)

    def remove_selected(self) -> None:
        host = self.selected_host()
        if host is None or host.is_local:
            return
        if not self.confirm("Remove host", f"Remove host {host.name}? Its finished jobs stay listed."):
            return

        def run(ws: Any, name: str, *, progress: Any) -> None:
            from mlops_desktop.execution import HostRegistry

            HostRegistry(ws).remove(name)

        self.ctx.tasks.submit(run, self.ctx.workspace, host.name, title=f"Remove host {host.name}", owner=self,
                              on_done=lambda _r: self.refresh())


AREA = HostsView
