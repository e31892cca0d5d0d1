"""The rollout panel: a deployment's replicas ready/desired and each replica's health, as the last status poll saw it."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.data_panels import pad_cells
from mlops_desktop.gui.views.deploy_widgets import StateChip, heading, muted, state_color, state_dot, words

REPLICA_COLUMNS = ("Replica", "Serves", "Health", "Where", "Detail")
C_ID, C_SERVES, C_HEALTH, C_WHERE, C_DETAIL = range(len(REPLICA_COLUMNS))


def serves(replica: Any) -> str:
    """'v3 · arm b' / 'router' / ''."""
    if replica.arm == "router":
        return "router"
    parts = [f"v{replica.version}" if str(replica.version).isdigit() else str(replica.version)]
    if replica.arm:
        parts.append(f"arm {replica.arm}")
    return " · ".join(p for p in parts if p)


class ReplicasModel(RowTableModel):
    """One row per replica (a Swarm task, a container, a pod) of the last status."""

    columns = REPLICA_COLUMNS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.stale = False  # the last poll failed: these rows are what was seen before, marked unknown

    def set_replicas(self, replicas: list[Any], stale: bool = False) -> None:
        self.beginResetModel()
        self.rows = list(replicas)
        self.stale = stale
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        replica = self.rows[index.row()]
        col = index.column()
        health = "unknown" if self.stale else str(replica.health)
        if role == Qt.ItemDataRole.DecorationRole and col == C_HEALTH:
            return state_dot(health)
        if role == Qt.ItemDataRole.ForegroundRole and (col == C_HEALTH or self.stale):
            return state_color(health)
        if role == Qt.ItemDataRole.ToolTipRole:
            if self.stale:
                return f"last seen {words(str(replica.health))}; the target does not answer now"
            return str(replica.detail or "") or None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == C_ID:
            return str(replica.id)[:24]
        if col == C_SERVES:
            return serves(replica)
        if col == C_HEALTH:
            return words(health) if not self.stale else f"unknown (was {words(str(replica.health))})"
        if col == C_WHERE:
            return " · ".join(p for p in (replica.node, replica.address) if p)
        return str(replica.detail or "")


class RolloutPanel(QWidget):
    """Replicas ready/desired as a bar, the deployment's state (with its reason) and the replica table.

    ``show_status(status)`` with what a poll returned; ``show_unknown(reason)`` when the poll could not reach the
    target: the state then reads 'unknown: reason' and the replicas last seen stay listed, dimmed, marked unknown.
    Nothing is shown healthy that the last poll did not see healthy.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = heading("Rollout")
        self.chip = StateChip()
        self.counts = QLabel("")
        self.counts.setTextFormat(Qt.TextFormat.PlainText)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setFormat("%v / %m ready")
        self.bar.setMaximumHeight(18)
        self.reason = muted("")
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.seen = muted("", wrap=False)
        self.action = QLabel("")   # the running action's step (from its task's progress), e.g. 'waiting: 1/3 ready'
        self.action.setTextFormat(Qt.TextFormat.PlainText)
        self.action.setWordWrap(True)
        self.action.setVisible(False)
        self.stop_button = QPushButton("Stop waiting")
        self.stop_button.setToolTip("Stop watching this rollout here; the engine goes on. The revision stays "
                                    "unknown until Resume sees it healthy or rolled back.")
        self.stop_button.setVisible(False)
        self.action_bar = QProgressBar()
        self.action_bar.setRange(0, 1000)
        self.action_bar.setTextVisible(False)
        self.action_bar.setMaximumHeight(6)
        self.action_bar.setVisible(False)
        self.events_title = muted("Engine events", wrap=False)
        self.events = muted("")
        self.events.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log_title = heading("Rollout log")
        self.log = QLabel("")
        self.log.setTextFormat(Qt.TextFormat.PlainText)
        self.log.setWordWrap(True)
        self.log.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.model = ReplicasModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        pad_cells(self.table)
        header = self.table.horizontalHeader()
        for col in (C_ID, C_SERVES, C_HEALTH, C_WHERE):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.chip)
        top.addStretch(1)
        top.addWidget(self.seen)
        counts_row = QHBoxLayout()
        counts_row.addWidget(self.counts)
        counts_row.addWidget(self.bar, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(counts_row)
        layout.addWidget(self.reason)
        action_row = QHBoxLayout()
        action_row.addWidget(self.action, 1)
        action_row.addWidget(self.stop_button)
        layout.addLayout(action_row)
        layout.addWidget(self.action_bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.events_title)
        layout.addWidget(self.events)
        layout.addSpacing(6)
        layout.addWidget(self.log_title)
        layout.addWidget(self.log)
        self.status: Any = None
        self.seen_at: float | None = None
        self.unknown_reason = ""
        self.clear()

    def clear(self, text: str = "Select a deployment to see its replicas.") -> None:
        self.status, self.seen_at, self.unknown_reason = None, None, ""
        self.chip.set_state("")
        self.counts.setText("")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setVisible(False)
        self.reason.setText(text)
        self.seen.setText("")
        self.events.setText("")
        self.events_title.setVisible(False)
        self.model.set_replicas([])
        self.table.setVisible(False)
        self.show_action(None)
        self.show_log([])

    def show_status(self, status: Any, at: float | None = None) -> None:
        self.status, self.seen_at, self.unknown_reason = status, at or time.time(), ""
        self.table.setVisible(bool(status.replicas))
        state = str(status.state)
        self.chip.set_state(state)
        desired, ready = int(status.desired), int(status.ready)
        self.bar.setVisible(True)
        self.bar.setRange(0, max(desired, 1))
        self.bar.setValue(min(ready, max(desired, 1)))
        self.bar.setFormat(f"{ready} / {desired} ready" if desired else "scaled to 0")
        self.counts.setText(f"{ready}/{desired} ready")
        self.reason.setText(str(status.reason or ""))
        self.seen.setText(f"seen {time.strftime('%H:%M:%S', time.localtime(self.seen_at))}")
        self.model.set_replicas(list(status.replicas))
        events = [str(e) for e in status.events][-6:]
        self.events.setText("\n".join(events))
        self.events_title.setVisible(bool(events))

    def show_log(self, events: list[dict[str, Any]]) -> None:
        """The deployment's own event log (rollouts, engine steps, outcomes, scale, split), newest last."""
        lines = [f"{time.strftime('%H:%M:%S', time.localtime(e['at']))}  {e['message']}" for e in events]
        self.log.setText("\n".join(lines))
        self.log_title.setVisible(bool(lines))
        self.log.setVisible(bool(lines))

    def show_action(self, text: str | None, fraction: float = 0.0) -> None:
        """The running rollout's step as its worker reports it; None when no action runs."""
        self.action.setVisible(bool(text))
        self.action_bar.setVisible(bool(text))
        self.stop_button.setVisible(bool(text))
        self.action.setText(text or "")
        self.action_bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))

    def show_unknown(self, reason: str) -> None:
        """The target did not answer: say so, keep what was last seen, dimmed, and claim nothing about now."""
        self.table.setVisible(self.status is not None and bool(self.status.replicas))
        self.unknown_reason = reason
        self.chip.set_state("unknown")
        previous = self.status
        if previous is not None and previous.replicas:
            self.counts.setText(f"?/{int(previous.desired)} ready")
            self.bar.setValue(0)
            self.bar.setFormat(f"? / {int(previous.desired)} ready")
            seen = time.strftime('%H:%M:%S', time.localtime(self.seen_at)) if self.seen_at else "never"
            self.reason.setText(f"unknown: {reason}\nReplicas as last seen at {seen}; what they do now is not "
                                "known.")
            self.model.set_replicas(list(previous.replicas), stale=True)
        else:
            self.bar.setVisible(False)
            self.counts.setText("")
            self.reason.setText(f"unknown: {reason}")
            self.model.set_replicas([])
        self.seen.setText(f"tried {time.strftime('%H:%M:%S')}")

    def on_theme_changed(self) -> None:
        self.chip.restyle()
        self.model.layoutChanged.emit()
