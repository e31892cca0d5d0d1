"""Widgets of the Hosts area: usage bars coloured by level, one host's snapshot, and the Add host dialog."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.execution.models import Host

# A bar turns amber, then red, as the resource fills up.
WARN_AT, HIGH_AT = 0.75, 0.90
LEVEL_COLORS = {
    "light": {"ok": "#2da44e", "warn": "#bf8700", "high": "#cf222e", "none": "#d0d7de", "track": "#eaeef2"},
    "dark": {"ok": "#3fb950", "warn": "#d29922", "high": "#f85149", "none": "#3c3d40", "track": "#2b2c2f"},
}


def level_of(fraction: float | None) -> str:
    if fraction is None:
        return "none"
    return "high" if fraction >= HIGH_AT else "warn" if fraction >= WARN_AT else "ok"


def _mode() -> str:
    from mlops_desktop.gui.theme import current_mode

    return current_mode()


def gib(mib: float | None) -> str:
    return "–" if mib is None else f"{mib / 1024:.1f}"


def ago(ts: float | None, now: float | None = None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 days ago'."""
    if ts is None:
        return "never"
    seconds = max(0.0, (now or time.time()) - ts)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


class UsageBar(QWidget):
    """A labelled bar: 'Memory used  [=====     ]  12.1 of 64.0 GiB', green, amber or red by how full it is."""

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(label)
        self.label.setMinimumWidth(120)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(12)
        self.text = QLabel("–")
        self.text.setObjectName("muted")
        self.text.setFixedWidth(330)  # every bar ends at the same place
        self.level = "none"
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 3, 0, 3)
        row.addWidget(self.label)
        row.addWidget(self.bar, 1)
        row.addWidget(self.text)
        self._paint_level()

    def set_value(self, fraction: float | None, text: str) -> None:
        self.bar.setValue(0 if fraction is None else int(max(0.0, min(1.0, fraction)) * 1000))
        self.text.setText(text)
        level = level_of(fraction)
        if level != self.level:
            self.level = level
            self._paint_level()

    def _paint_level(self) -> None:
        colors = LEVEL_COLORS[_mode()]
        self.bar.setStyleSheet(
            f"QProgressBar {{ border: none; border-radius: 4px; background: {colors['track']}; }}"
            f"QProgressBar::chunk {{ border-radius: 4px; background: {colors[self.level]}; }}")

    def on_theme_changed(self) -> None:
        self._paint_level()

    @property
    def fraction(self) -> float:
        return self.bar.value() / 1000


class HostDetail(QWidget):
    """One host's last snapshot: facts, when it was taken, and bars for CPU, memory, disk and each GPU."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host: Host | None = None
        self.disk_usage: Any = None
        self.title = QLabel("Select a host")
        self.title.setObjectName("heading")
        self.snapshot = QLabel("")
        self.snapshot.setObjectName("muted")
        self.facts = QLabel("")
        self.facts.setWordWrap(True)
        self.facts.setObjectName("muted")
        self.cpu = UsageBar("CPU busy")
        self.memory = UsageBar("Memory used")
        self.disk = UsageBar("Disk used")
        self.gpu_title = QLabel("GPUs")
        self.gpu_title.setObjectName("heading")
        self.gpu_note = QLabel("")
        self.gpu_note.setWordWrap(True)
        self.gpu_note.setObjectName("muted")
        self.gpu_box = QGridLayout()
        self.gpu_box.setHorizontalSpacing(24)
        self.gpu_bars: list[tuple[UsageBar, UsageBar]] = []
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.snapshot)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        for w in (self.facts, self.cpu, self.memory, self.disk):
            layout.addWidget(w)
        layout.addSpacing(8)
        layout.addWidget(self.gpu_title)
        layout.addWidget(self.gpu_note)
        layout.addLayout(self.gpu_box)
        layout.addStretch(1)

    def bars(self) -> list[UsageBar]:
        return [self.cpu, self.memory, self.disk] + [bar for pair in self.gpu_bars for bar in pair]

    def on_theme_changed(self) -> None:
        for bar in self.bars():
            bar.on_theme_changed()

    def show_host(self, host: Host | None, disk_usage: Any = None) -> None:
        self.host, self.disk_usage = host, disk_usage
        if host is None:
            self.title.setText("Select a host")
            self.snapshot.setText("")
            return
        self.title.setText(f"{host.name} — {host.address}")
        inv = host.inventory
        self.update_age()
        if inv is None:
            self.facts.setText("Not inspected yet: press Inspect to read its CPUs, memory, disk and GPUs.")
            for bar in (self.cpu, self.memory, self.disk):
                bar.set_value(None, "–")
            self._set_gpus([], "")
            return
        facts = [inv.os, inv.kernel, f"{inv.cpus} CPUs", f"Python {inv.python or 'missing'}",
                 f"load {inv.load1:.2f}" if inv.load1 is not None else ""]
        self.facts.setText(" · ".join(f for f in facts if f))
        busy = inv.cpu_busy_pct
        self.cpu.set_value(None if busy is None else busy / 100, "–" if busy is None else f"{busy:.0f}%")
        if inv.memory_total_mib and inv.memory_available_mib is not None:
            used = inv.memory_total_mib - inv.memory_available_mib
            self.memory.set_value(used / inv.memory_total_mib,
                                  f"{gib(used)} of {gib(inv.memory_total_mib)} GiB ({used / inv.memory_total_mib:.0%})")
        else:
            self.memory.set_value(None, "–")
        self._show_disk(inv, disk_usage)
        self._set_gpus(inv.gpus, inv.gpu_error)

    def _show_disk(self, inv: Any, usage: Any) -> None:
        if usage is not None:
            # df's own numbers: Used, Avail, Size and Use% (reserved blocks are neither used nor available)
            self.disk.set_value(usage.use_fraction, f"{gib(usage.used_mib)} GiB used · {gib(usage.available_mib)} "
                                                    f"free of {gib(usage.total_mib)} ({usage.use_fraction:.0%})")
            self.disk.setToolTip(f"as df reports it for {usage.mount or 'the work folder'}")
        elif inv.disk_total_mib and inv.disk_free_mib is not None:
            # only size and free space are stored: the bar shows the share that is not free to use
            taken = 1 - inv.disk_free_mib / inv.disk_total_mib
            self.disk.set_value(taken, f"{gib(inv.disk_free_mib)} free of {gib(inv.disk_total_mib)} GiB")
            self.disk.setToolTip("free space as df reports it (Avail); inspect again for Used and Use%")
        else:
            self.disk.set_value(None, "–")

    def update_age(self) -> None:
        host = self.host
        if host is None or host.inventory is None:
            self.snapshot.setText("no snapshot yet" if host is not None else "")
            return
        taken = host.inventory.collected_at or host.inventory_at
        stamp = time.strftime("%H:%M:%S", time.localtime(taken)) if taken else "?"
        self.snapshot.setText(f"Snapshot {stamp} · {ago(taken)}")
        self.snapshot.setToolTip(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(taken)) if taken else "")

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
            util.label.setText(f"GPU {g.index} busy")
            util.set_value(None if g.utilization_pct is None else g.utilization_pct / 100,
                           f"{g.utilization_pct or 0:.0f}% · {g.temperature_c or 0:.0f} °C · {g.power_w or 0:.0f} W")
            mem.label.setText(f"GPU {g.index} memory")
            mem.set_value(g.memory_fraction, f"{gib(g.memory_used_mib)} of {gib(g.memory_total_mib)} GiB")
            util.setToolTip(f"{g.name} {g.uuid}")
        if gpus:
            self.gpu_note.setText(", ".join(sorted({g.name for g in gpus})))
        else:
            self.gpu_note.setText(error or "No NVIDIA GPU on this host.")


HOST_FIELDS = ("name", "hostname", "port", "user", "identity_file", "proxy_jump", "python", "work_dir", "max_jobs")


class AddHostDialog(QDialog):
    """The fields of `hosts add`, checked as they are typed by the same validation; OK asks the view to add it and
    the dialog stays open (with the reason) when that fails."""

    submitted = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add SSH host")
        self.setMinimumWidth(480)
        form = QFormLayout(self)
        self.name, self.hostname, self.user = QLineEdit(), QLineEdit(), QLineEdit()
        self.name.setPlaceholderText("gpu1")
        self.hostname.setPlaceholderText("gpu1.lan or 192.168.1.20")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(22)
        self.identity = QLineEdit()
        self.identity.setPlaceholderText("~/.ssh/id_ed25519 (empty: ssh-agent and the default keys)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse())
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
        note.setWordWrap(True)
        form.addRow(note)
        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        form.addRow(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Add host")
        self.buttons.accepted.connect(lambda: self.submit())
        self.buttons.rejected.connect(lambda: self.reject())
        form.addRow(self.buttons)
        for edit in (self.name, self.hostname, self.python):
            edit.textChanged.connect(lambda _t: self.validate())
        self.validate()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Private key")
        if path:
            self.identity.setText(path)

    def values(self) -> dict[str, Any]:
        return {"name": self.name.text().strip(), "hostname": self.hostname.text().strip(), "port": self.port.value(),
                "user": self.user.text().strip(), "identity_file": self.identity.text().strip(),
                "proxy_jump": self.proxy_jump.text().strip(), "python": self.python.text().strip() or "python3",
                "work_dir": self.work_dir.text().strip(), "max_jobs": self.max_jobs.value()}

    def problem(self) -> str:
        """What is wrong with the fields, in the words `hosts add` uses; '' when they can be added."""
        from mlops_desktop.errors import MlopsError
        from mlops_desktop.execution.hosts import validate_host_fields

        v = self.values()
        if not v["name"]:
            return "Give the host a name."
        if v["name"] == "local":
            return "The name 'local' is reserved for this machine."
        if not v["hostname"]:
            return "Give its HostName (a DNS name or an address)."
        try:
            validate_host_fields(v["name"], hostname=v["hostname"], port=v["port"], max_jobs=v["max_jobs"],
                                 python=v["python"])
        except MlopsError as exc:
            return str(exc)
        return ""

    def validate(self) -> bool:
        problem = self.problem()
        typed = bool(self.name.text().strip() or self.hostname.text().strip())
        self.error.setText(problem if typed else "")
        self.ok_button.setEnabled(not problem)
        return not problem

    def submit(self) -> None:
        if self.validate():
            self.ok_button.setEnabled(False)
            self.error.setText("")
            self.submitted.emit(self.values())

    def failed(self, message: str) -> None:
        """The view could not add the host: say why and let the user fix it."""
        self.error.setText(message)
        self.ok_button.setEnabled(True)
