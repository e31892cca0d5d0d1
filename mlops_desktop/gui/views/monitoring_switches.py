"""The Monitoring area's live switches: the router's weights per arm, shadow on/off and percent, a classifier's
decision threshold and the kill switch, changed live with a reason (recorded with who and why), and the router's
change log. The changes go through monitoring/switches.py to the router's own admin API."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.monitoring_tables import _table


class ChangesModel(RowTableModel):
    columns = ("#", "When", "Who", "What", "From", "To", "Why")
    numeric_columns = frozenset({0})

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(index.column())
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        e = self.rows[index.row()]
        when = time.strftime("%H:%M:%S", time.localtime(float(e.get("ts") or 0)))
        return [str(e.get("seq", "")), when, e.get("actor", ""), e.get("kind", ""), str(e.get("from_value", "")),
                str(e.get("to_value", "")), e.get("reason", "")][index.column()]


class SwitchesPanel(QWidget):
    """Shows a router's live settings; `wanted()` is the change the user asked for (only what they changed)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("Live switches of the deployment's router.")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        box = QGroupBox("Switches (applied live, no redeploy)")
        self.form = QFormLayout(box)
        self.weights_row = QHBoxLayout()
        self.weights: dict[str, QDoubleSpinBox] = {}
        self.form.addRow("Weights", self.weights_row)
        self.kill = QCheckBox("Kill switch: every request to the stable arm")
        self.form.addRow("", self.kill)
        shadow_row = QHBoxLayout()
        self.shadow_on = QCheckBox("Mirror to the shadow arm")
        self.shadow_percent = QDoubleSpinBox()
        self.shadow_percent.setRange(0, 100)
        self.shadow_percent.setSuffix(" %")
        shadow_row.addWidget(self.shadow_on)
        shadow_row.addWidget(self.shadow_percent)
        shadow_row.addStretch(1)
        self.form.addRow("Shadow", shadow_row)
        threshold_row = QHBoxLayout()
        self.threshold_arm = QComboBox()
        self.threshold_arm.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.threshold = QLineEdit()
        self.threshold.setPlaceholderText("P(positive) ≥ … (blank: unchanged, none: the model's labels)")
        self.positive = QLineEdit()
        self.positive.setPlaceholderText("positive class")
        self.positive.setMaximumWidth(140)
        threshold_row.addWidget(self.threshold_arm)
        threshold_row.addWidget(self.threshold, 1)
        threshold_row.addWidget(self.positive)
        self.form.addRow("Decision threshold", threshold_row)
        reason_row = QHBoxLayout()
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("why (recorded with your name; required)")
        self.apply_button = QPushButton("Apply live")
        self.reload_button = QPushButton("Reload")
        reason_row.addWidget(self.reason, 1)
        reason_row.addWidget(self.apply_button)
        reason_row.addWidget(self.reload_button)
        self.form.addRow("Reason", reason_row)
        lay.addWidget(box)
        lay.addWidget(QLabel("Change log (who, when, what, why):"))
        self.changes = ChangesModel(self)
        self.table = _table(self.changes)
        lay.addWidget(self.table, 1)
        self.current: dict[str, Any] = {}
        self.setEnabled(False)

    def set_state(self, st: dict[str, Any]) -> None:
        self.current = st.get("settings") or {}
        while self.weights_row.count():
            item = self.weights_row.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        self.weights = {}
        self.threshold_arm.clear()
        for arm, info in (st.get("arms") or {}).items():
            spin = QDoubleSpinBox()
            spin.setRange(0, 1000)
            spin.setDecimals(1)
            spin.setPrefix(f"{arm}: ")
            spin.setValue(float((self.current.get("weights") or {}).get(arm, 0)))
            self.weights[arm] = spin
            self.weights_row.addWidget(spin)
            version = info.get("version") if isinstance(info, dict) else None
            self.threshold_arm.addItem(f"{arm}" + (f" (version {version})" if version else ""), arm)
        self.weights_row.addStretch(1)
        self.kill.setChecked(bool(self.current.get("kill_switch")))
        self.shadow_on.setChecked(bool(self.current.get("shadow_enabled")))
        self.shadow_percent.setValue(float(self.current.get("shadow_percent") or 0))
        self.shadow_on.setEnabled(st.get("shadow") is not None)
        self.shadow_percent.setEnabled(st.get("shadow") is not None)
        self.changes.beginResetModel()
        self.changes.rows = list(reversed(st.get("change_log") or []))
        self.changes.endResetModel()
        ready = "ready" if st.get("ready") else "NOT READY"
        self.status.setText(f"Router {st.get('router', '')}: {ready}, stable arm {st.get('stable', '')}, "
                            f"{st.get('in_flight', 0)} in flight, {st.get('changes', 0)} changes so far.")
        self.setEnabled(True)

    def set_unavailable(self, why: str) -> None:
        self.status.setText(why)
        self.setEnabled(False)
        self.status.setEnabled(True)

    def wanted(self) -> dict[str, Any]:
        """The settings the user changed (weights, kill_switch, shadow, threshold); empty: nothing changed."""
        out: dict[str, Any] = {}
        weights = {a: s.value() for a, s in self.weights.items()}
        if weights and weights != {a: float(v) for a, v in (self.current.get("weights") or {}).items()
                                   if a in weights}:
            out["weights"] = weights
        if self.kill.isChecked() != bool(self.current.get("kill_switch")):
            out["kill_switch"] = self.kill.isChecked()
        if self.shadow_on.isEnabled() and (self.shadow_on.isChecked() != bool(self.current.get("shadow_enabled"))
                                           or self.shadow_percent.value() != float(
                    self.current.get("shadow_percent") or 0)):
            out["shadow"] = {"enabled": self.shadow_on.isChecked(), "percent": self.shadow_percent.value()}
        text = self.threshold.text().strip()
        if text:
            value: float | None
            if text.lower() == "none":
                value = None
            else:
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(f"the threshold {text!r} is not a number (or none)") from None
            out["threshold"] = {"arm": self.threshold_arm.currentData(), "threshold": value,
                                "positive_class": self.positive.text().strip() or None}
        return out
