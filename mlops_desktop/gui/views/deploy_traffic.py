"""The A/B and shadow panel: the router's arms and weights, an editor for a new split or shadow, and a confirmation
that shows the change (before → after) before anything is sent."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.deploy_widgets import heading, muted

MAX_ARMS = 6


def current_weights(deployment: Any) -> dict[str, int]:
    """{'model/3': 90, 'model/4': 10} as percentages of the router's weights; one arm at 100 without a router."""
    router = getattr(deployment, "router", None)
    if router is None:
        spec = deployment.spec
        return {f"{spec.model}/{spec.version}": 100} if spec.model else {}
    arms = [a for a in router.arms if a.weight > 0]
    total = sum(a.weight for a in arms) or 1.0
    return {f"{a.model}/{a.version}": round(100 * a.weight / total) for a in arms}


def current_shadow(deployment: Any) -> tuple[str, float] | None:
    router = getattr(deployment, "router", None)
    if router is None or not router.shadow_arm or router.shadow_percent <= 0:
        return None
    arm = router.arm(router.shadow_arm)
    return f"{arm.model}/{arm.version}", float(router.shadow_percent)


def describe_split_change(before: dict[str, int], after: dict[str, int], sticky_before: str | None,
                          sticky_after: str | None) -> str:
    """Lines 'model/1: 100% → 90%' for every version in either split, and the sticky header's change."""
    lines = []
    for ref in list(before) + [r for r in after if r not in before]:
        old, new = before.get(ref, 0), after.get(ref, 0)
        mark = "" if old != new else "  (unchanged)"
        lines.append(f"{ref}: {old}% → {new}%{mark}")
    if (sticky_before or None) != (sticky_after or None):
        lines.append(f"sticky by header: {sticky_before or 'none'} → {sticky_after or 'none'}")
    elif sticky_after:
        lines.append(f"sticky by header {sticky_after} (unchanged)")
    return "\n".join(lines)


class WeightBar(QWidget):
    """One arm: its model version, a bar of its share and the percentage."""

    def __init__(self, ref: str, percent: float, role: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        label = QLabel(ref + (f"  ({role})" if role else ""))
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setMinimumWidth(160)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setValue(int(percent * 10))
        bar.setTextVisible(False)
        bar.setMaximumHeight(12)
        value = QLabel(f"{percent:g}%")
        value.setMinimumWidth(48)
        value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(label)
        row.addWidget(bar, 1)
        row.addWidget(value)


class ArmEditorRow(QWidget):
    """A version and its weight in the split being edited."""

    changed = Signal()
    removed = Signal(object)

    def __init__(self, refs: list[str], ref: str = "", weight: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ref = QComboBox()
        self.ref.setEditable(True)
        self.ref.addItems(refs)
        if ref:
            self.ref.setCurrentText(ref)
        self.ref.setMinimumWidth(200)
        self.weight = QSpinBox()
        self.weight.setRange(0, 100)
        self.weight.setSuffix(" %")
        self.weight.setValue(weight)
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(lambda: self.removed.emit(self))
        self.ref.currentTextChanged.connect(lambda _t: self.changed.emit())
        self.weight.valueChanged.connect(lambda _v: self.changed.emit())
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.ref, 1)
        row.addWidget(self.weight)
        row.addWidget(self.remove)

    def value(self) -> tuple[str, int]:
        return self.ref.currentText().strip(), self.weight.value()


class TrafficPanel(QWidget):
    """Shows the router's arms; edits a split (versions and weights, optional sticky header) or a shadow (a version
    and the share of traffic mirrored to it). Apply asks for confirmation with the change spelled out, then emits
    ``split_requested(weights, sticky_header)`` or ``shadow_requested(ref, percent)``; the view runs the core call."""

    split_requested = Signal(dict, object)
    shadow_requested = Signal(str, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.deployment: Any = None
        self.refs: list[str] = []
        self.title = heading("Traffic")
        self.summary = muted("")
        self.bars = QVBoxLayout()
        self.bars.setSpacing(4)
        now_box = QFrame()
        now_layout = QVBoxLayout(now_box)
        now_layout.setContentsMargins(0, 0, 0, 0)
        now_layout.addWidget(self.summary)
        now_layout.addLayout(self.bars)
        # -- split editor
        self.split_box = QGroupBox("A/B split")
        split_layout = QVBoxLayout(self.split_box)
        self.arm_rows: list[ArmEditorRow] = []
        self.arms_layout = QVBoxLayout()
        self.add_arm_button = QPushButton("Add version")
        self.add_arm_button.clicked.connect(lambda: self.add_arm())
        self.even_button = QPushButton("Even split")
        self.even_button.clicked.connect(lambda: self.even_split())
        self.sticky = QLineEdit()
        self.sticky.setPlaceholderText("e.g. x-user-id (empty: each request drawn by weight)")
        self.split_problem = QLabel("")
        self.split_problem.setObjectName("error")
        self.split_problem.setTextFormat(Qt.TextFormat.PlainText)
        self.apply_split_button = QPushButton("Apply split…")
        self.apply_split_button.clicked.connect(lambda: self.apply_split())
        tools = QHBoxLayout()
        tools.addWidget(self.add_arm_button)
        tools.addWidget(self.even_button)
        tools.addStretch(1)
        sticky_row = QGridLayout()
        sticky_row.addWidget(QLabel("Sticky by header"), 0, 0)
        sticky_row.addWidget(self.sticky, 0, 1)
        split_layout.addLayout(self.arms_layout)
        split_layout.addLayout(tools)
        split_layout.addLayout(sticky_row)
        split_layout.addWidget(self.split_problem)
        apply_row = QHBoxLayout()
        apply_row.addStretch(1)
        apply_row.addWidget(self.apply_split_button)
        split_layout.addLayout(apply_row)
        # -- shadow editor
        self.shadow_box = QGroupBox("Shadow")
        shadow_layout = QGridLayout(self.shadow_box)
        self.shadow_ref = QComboBox()
        self.shadow_ref.setEditable(True)
        self.shadow_ref.setMinimumWidth(200)
        self.shadow_percent = QDoubleSpinBox()
        self.shadow_percent.setRange(0.0, 100.0)
        self.shadow_percent.setDecimals(1)
        self.shadow_percent.setSuffix(" %")
        self.shadow_percent.setValue(10.0)
        self.apply_shadow_button = QPushButton("Apply shadow…")
        self.apply_shadow_button.clicked.connect(lambda: self.apply_shadow())
        self.stop_shadow_button = QPushButton("Stop shadow…")
        self.stop_shadow_button.clicked.connect(lambda: self.stop_shadow())
        shadow_layout.addWidget(QLabel("Candidate"), 0, 0)
        shadow_layout.addWidget(self.shadow_ref, 0, 1)
        shadow_layout.addWidget(QLabel("Mirror"), 1, 0)
        shadow_layout.addWidget(self.shadow_percent, 1, 1)
        shadow_layout.addWidget(muted("A copy of that share of requests goes to the candidate; its answers are "
                                      "logged and compared, never returned to the caller."), 2, 0, 1, 2)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.stop_shadow_button)
        buttons.addWidget(self.apply_shadow_button)
        shadow_layout.addLayout(buttons, 3, 0, 1, 2)
        editors = QHBoxLayout()
        editors.addWidget(self.split_box, 3)
        editors.addWidget(self.shadow_box, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(now_box)
        layout.addSpacing(8)
        layout.addLayout(editors)
        layout.addStretch(1)
        # Replaceable in tests: (title, text) -> True to go ahead.
        self.confirm = lambda title, text: QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
        self.show_deployment(None, [])

    # ------------------------------------------------------------------------------------------------ show
    def show_deployment(self, deployment: Any, refs: list[str]) -> None:
        """The deployment's router (or its single version) and the versions that can be chosen (its model's)."""
        same = (deployment is not None and self.deployment is not None and deployment.name == self.deployment.name
                and current_weights(deployment) == current_weights(self.deployment)
                and current_shadow(deployment) == current_shadow(self.deployment) and refs == self.refs)
        self.deployment, self.refs = deployment, list(refs)
        self._show_bars()
        if same:
            return  # a poll brought nothing new: keep what the user is typing
        for row in list(self.arm_rows):
            self._remove_row(row)
        enabled = deployment is not None
        for w in (self.split_box, self.shadow_box):
            w.setEnabled(enabled)
        if deployment is None:
            return
        weights = current_weights(deployment) or {}
        for ref, weight in weights.items():
            self.add_arm(ref, weight)
        other = next((r for r in refs if r not in weights), "")
        if len(self.arm_rows) < 2 and other:
            self.add_arm(other, 0)   # the usual start of an A/B test: another version at 0 %
        router = deployment.router
        self.sticky.setText(router.sticky_header or "" if router is not None else "")
        self.shadow_ref.clear()
        self.shadow_ref.addItems(refs)
        shadow = current_shadow(deployment)
        if shadow is not None:
            self.shadow_ref.setCurrentText(shadow[0])
            self.shadow_percent.setValue(shadow[1])
        self.stop_shadow_button.setEnabled(shadow is not None)
        self._validate()

    def _show_bars(self) -> None:
        while self.bars.count():
            item = self.bars.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        dep = self.deployment
        if dep is None:
            self.summary.setText("Select a deployment to see and change its traffic.")
            return
        weights = current_weights(dep)
        shadow = current_shadow(dep)
        router = dep.router
        if router is None:
            self.summary.setText(f"All traffic goes to {next(iter(weights), 'its model')} (no router). A split or a "
                                 "shadow puts our router in front, with one workload per version.")
        else:
            sticky = f"; sticky by header {router.sticky_header}" if router.sticky_header else ""
            self.summary.setText(f"Router in front of {len(router.arms)} version(s){sticky}.")
        stable_ref = None
        if router is not None:
            stable = router.arm(router.stable)
            stable_ref = f"{stable.model}/{stable.version}"
        for ref, pct in weights.items():
            self.bars.addWidget(WeightBar(ref, pct, "stable" if ref == stable_ref and len(weights) > 1 else ""))
        if shadow is not None:
            self.bars.addWidget(WeightBar(shadow[0], shadow[1], "shadow copy, answers not returned"))

    # ------------------------------------------------------------------------------------------------ edit
    def add_arm(self, ref: str = "", weight: int = 0) -> ArmEditorRow | None:
        if len(self.arm_rows) >= MAX_ARMS:
            return None
        row = ArmEditorRow(self.refs, ref, weight)
        if not ref:
            used = {r.value()[0] for r in self.arm_rows}
            row.ref.setCurrentText(next((r for r in self.refs if r not in used), ""))
        row.changed.connect(lambda: self._validate())
        row.removed.connect(lambda r: (self._remove_row(r), self._validate()))
        self.arms_layout.addWidget(row)
        self.arm_rows.append(row)
        self._validate()
        return row

    def _remove_row(self, row: ArmEditorRow) -> None:
        if row in self.arm_rows:
            self.arm_rows.remove(row)
        self.arms_layout.removeWidget(row)
        row.deleteLater()

    def even_split(self) -> None:
        n = len(self.arm_rows)
        for i, row in enumerate(self.arm_rows):
            row.weight.setValue(100 // n + (1 if i < 100 % n else 0))

    def edited_weights(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.arm_rows:
            ref, weight = row.value()
            if ref:
                out[ref] = out.get(ref, 0) + weight
        return out

    def split_problem_text(self) -> str:
        refs = [row.value()[0] for row in self.arm_rows]
        if any(not r for r in refs):
            return "Choose a version for every row (or remove it)."
        if len(set(refs)) != len(refs):
            return "A version appears twice."
        total = sum(row.value()[1] for row in self.arm_rows)
        if total != 100:
            return f"The weights add up to {total}%, not 100%."
        if sum(1 for row in self.arm_rows if row.value()[1] > 0) < 1:
            return "At least one version needs traffic."
        return ""

    def _validate(self) -> None:
        problem = self.split_problem_text() if self.deployment is not None else ""
        self.split_problem.setText(problem)
        self.apply_split_button.setEnabled(self.deployment is not None and not problem)
        self.remove_enabled()

    def remove_enabled(self) -> None:
        for row in self.arm_rows:
            row.remove.setEnabled(len(self.arm_rows) > 1)

    # ------------------------------------------------------------------------------------------------ apply
    def apply_split(self) -> bool:
        if self.deployment is None or self.split_problem_text():
            return False
        after = {ref: w for ref, w in self.edited_weights().items() if w > 0}
        before = current_weights(self.deployment)
        router = self.deployment.router
        sticky_before = router.sticky_header if router is not None else None
        sticky_after = self.sticky.text().strip() or None
        change = describe_split_change(before, after, sticky_before, sticky_after)
        if not self.confirm(f"Change the split of {self.deployment.name}",
                            f"Send {self.deployment.name}'s traffic like this?\n\n{change}\n\n"
                            "Weights change live in the router; new versions get their own replicas first."):
            return False
        self.split_requested.emit(after, sticky_after)
        return True

    def apply_shadow(self) -> bool:
        if self.deployment is None:
            return False
        ref = self.shadow_ref.currentText().strip()
        percent = float(self.shadow_percent.value())
        if not ref:
            self.split_problem.setText("Choose the shadow's candidate version.")
            return False
        before = current_shadow(self.deployment)
        was = f"{before[0]} at {before[1]:g}%" if before else "no shadow"
        if not self.confirm(f"Shadow traffic of {self.deployment.name}",
                            f"Mirror {percent:g}% of {self.deployment.name}'s requests to {ref}?\n\n"
                            f"Now: {was}\nAfter: {ref} at {percent:g}%\n\nThe candidate's answers are logged and "
                            "compared with the served ones; callers never see them."):
            return False
        self.shadow_requested.emit(ref, percent)
        return True

    def stop_shadow(self) -> bool:
        shadow = current_shadow(self.deployment) if self.deployment is not None else None
        if shadow is None:
            return False
        if not self.confirm(f"Stop the shadow of {self.deployment.name}",
                            f"Stop mirroring {shadow[1]:g}% of the traffic to {shadow[0]}?"):
            return False
        self.shadow_requested.emit(shadow[0], 0.0)
        return True

    def set_busy(self, busy: bool) -> None:
        for w in (self.apply_split_button, self.apply_shadow_button, self.stop_shadow_button):
            w.setEnabled(not busy and self.deployment is not None)
        if not busy:
            self._validate()
            self.stop_shadow_button.setEnabled(self.deployment is not None
                                               and current_shadow(self.deployment) is not None)
