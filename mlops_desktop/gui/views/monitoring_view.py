"""The Monitoring area: per deployment a live dashboard, drift against the training data, the A/B arms, the alerts,
and the switch back to the stable version in plain sight (with a confirmation naming the version).

"Watch live" runs a Monitor (collector + rule evaluation + automatic revert, monitoring/monitor.py) on its own
thread while the area exists; the plots redraw from its in-memory ring. Without it the area shows the stored series.
Every other read (drift, arms, alerts, the revert itself) runs through the task runner.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.monitoring_live import LivePanel, ring_source
from mlops_desktop.gui.views.monitoring_switches import SwitchesPanel
from mlops_desktop.gui.views.monitoring_tables import AlertsPanel, ArmsPanel, DriftPanel, RuleDialog
from mlops_desktop.monitoring import dashboard

log = logging.getLogger(__name__)
TABS = ("live", "drift", "arms", "alerts", "switches")


class _Bridge(QObject):
    """Alert transitions from the monitor's thread, delivered on the GUI thread."""

    transition = Signal(object)


def start_monitor(ws: Any, deployment: str, interval_s: float, *, progress: Any) -> Any:
    """Worker: resolve the deployment's targets (network) and build its monitor."""
    from mlops_desktop.monitoring.engine import Notifier
    from mlops_desktop.monitoring.monitor import Monitor

    progress.update(0.2, f"finding the targets of {deployment}")
    return Monitor(ws, deployment, interval_s=interval_s, notifier=Notifier(desktop=True))


def warm_imports(*, progress: Any) -> None:
    """Worker: import what drift and arms need (scipy.stats alone takes seconds), before the user asks."""
    import polars  # noqa: F401
    import scipy.stats  # noqa: F401


def do_revert(ws: Any, deployment: str, reason: str, *, progress: Any) -> dict[str, Any]:
    from mlops_desktop.monitoring.revert import revert

    progress.update(0.3, f"switching {deployment} back")
    return revert(ws, deployment, reason=reason)


class MonitoringView(AreaView):
    area_id = "monitoring"
    title = "Monitoring"
    icon_name = "monitoring"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.monitor: Any = None
        self.bridge = _Bridge(self)
        self.bridge.transition.connect(lambda tr: self._on_transition(tr))
        lay = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Deployment:"))
        self.picker = QComboBox()
        self.picker.setMinimumWidth(220)
        self.picker.currentTextChanged.connect(lambda name: self._on_pick(name))
        bar.addWidget(self.picker)
        self.info = QLabel("")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.info, 1)
        self.live_button = QPushButton("Watch live")
        self.live_button.setCheckable(True)
        self.live_button.toggled.connect(lambda on: self._toggle_live(on))
        self.revert_button = QPushButton("Revert to stable…")
        self.revert_button.setObjectName("revertButton")
        self.revert_button.setStyleSheet("QPushButton#revertButton { color: white; background: #c62828; "
                                         "font-weight: bold; padding: 4px 12px; border-radius: 3px; }")
        self.revert_button.setToolTip("Send all traffic back to the stable version now (asks first)")
        self.revert_button.clicked.connect(lambda: self._ask_revert())
        bar.addWidget(self.live_button)
        bar.addWidget(self.revert_button)
        lay.addLayout(bar)
        self.tabs = QTabWidget()
        self.live = LivePanel()
        self.drift = DriftPanel()
        self.arms = ArmsPanel()
        self.alerts = AlertsPanel()
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.drift, "Drift")
        self.tabs.addTab(self.arms, "Arms")
        self.tabs.addTab(self.alerts, "Alerts")
        self.switches = SwitchesPanel()
        self.tabs.addTab(self.switches, "Switches")
        self.tabs.currentChanged.connect(lambda i: self._load_tab(i))
        lay.addWidget(self.tabs, 1)
        self.empty = QLabel("No deployments to monitor yet: deploy a model, start a router (`router start`) or a "
                            "server (`serve MODEL --detach`).")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.hide()
        lay.addWidget(self.empty)
        self.drift.refresh_button.clicked.connect(lambda: self._load_drift())
        self.drift.window_box.currentIndexChanged.connect(lambda _i: self._load_drift())
        self.arms.refresh_button.clicked.connect(lambda: self._load_arms())
        self.alerts.silence_button.clicked.connect(lambda: self._silence())
        self.alerts.ack_button.clicked.connect(lambda: self._ack())
        self.alerts.add_rule_button.clicked.connect(lambda: self._add_rule())
        self.switches.apply_button.clicked.connect(lambda: self._apply_switches())
        self.switches.reload_button.clicked.connect(lambda: self._load_switches())
        self.stored_timer = QTimer(self)
        self.stored_timer.setInterval(5000)
        self.stored_timer.timeout.connect(lambda: self.isVisible() and self._load_overview(quiet=True))
        ctx.add_action("Monitoring: revert to the stable version…", lambda: self._ask_revert())
        self._loaded_tabs: set[int] = set()
        self._warmed = False

    # -- selection ---------------------------------------------------------------------------------------------
    @property
    def deployment(self) -> str:
        return self.picker.currentText()

    def refresh(self) -> None:
        if not self._warmed:
            self._warmed = True
            self.ctx.tasks.submit(warm_imports, title="Monitoring: loading drift libraries", quiet=True,
                                  owner=self)
        self.ctx.tasks.submit(dashboard.deployments, self.ctx.workspace, title="Monitoring: deployments",
                              key="monitoring-deployments", quiet=True, owner=self,
                              on_done=lambda names: self._set_deployments(names))

    def on_workspace_changed(self) -> None:
        self._stop_monitor()
        self.refresh()

    def show_item(self, tab: str | None = None, deployment: str | None = None, **_kw: Any) -> None:
        if deployment:
            self.picker.setCurrentText(deployment)
        if tab in TABS:
            self.tabs.setCurrentIndex(TABS.index(tab))

    def _set_deployments(self, names: list[str]) -> None:
        current = self.deployment
        self.picker.blockSignals(True)
        self.picker.clear()
        self.picker.addItems(names)
        self.picker.blockSignals(False)
        has = bool(names)
        self.tabs.setVisible(has)
        self.empty.setVisible(not has)
        self.revert_button.setEnabled(has)
        self.live_button.setEnabled(has)
        if has:
            self.picker.setCurrentText(current if current in names else names[0])
            self._on_pick(self.deployment)

    def _on_pick(self, name: str) -> None:
        if not name:
            return
        if self.monitor is not None and self.monitor.deployment != name:
            self.live_button.setChecked(False)
        self._loaded_tabs = set()
        self._load_overview()
        self._load_tab(self.tabs.currentIndex())

    def _load_tab(self, index: int) -> None:
        if not self.deployment or index in self._loaded_tabs:
            return
        self._loaded_tabs.add(index)
        tab = TABS[index]
        if tab == "drift":
            self._load_drift()
        elif tab == "arms":
            self._load_arms()
        elif tab == "alerts":
            self._load_alerts()
        elif tab == "switches":
            self._load_switches()

    # -- loads -------------------------------------------------------------------------------------------------
    def _load_overview(self, quiet: bool = False) -> None:
        if self.monitor is not None or not self.deployment:
            return
        self.ctx.tasks.submit(dashboard.overview, self.ctx.workspace, self.deployment, title="Monitoring: series",
                              key="monitoring-overview", quiet=True, owner=self,
                              on_done=lambda ov: self._show_overview(ov))

    def _show_overview(self, ov: Any) -> None:
        if ov.deployment != self.deployment:
            return
        arms = ", ".join(f"{a} (version {v})" if v and v != a else a for a, v in ov.arms.items())
        stable = ov.arms.get(ov.stable) or ov.stable
        text = f"{ov.kind or '?'} · model {ov.model or '?'} · {len(ov.targets)} targets · arms {arms or '–'}" \
               f" · stable: version {stable or '?'}"
        if ov.last_ts is None:
            text += " · nothing collected yet: Watch live (or `monitor run`) collects"
        elif time.time() - ov.last_ts > 60:
            text += f" · last data {time.strftime('%Y-%m-%d %H:%M', time.localtime(ov.last_ts))}"
        self.info.setText(text if not ov.error else f"{text} — {ov.error}")
        if self.monitor is None:
            self.live.set_source(lambda: ov.series)
            if not self.stored_timer.isActive():
                self.stored_timer.start()

    def _load_drift(self) -> None:
        if not self.deployment:
            return
        self.drift.summary.setText("Computing drift…")
        self.ctx.tasks.submit(dashboard.drift_view, self.ctx.workspace, self.deployment, self.drift.window_s,
                              title=f"Drift of {self.deployment}", key="monitoring-drift", quiet=True, owner=self,
                              on_done=lambda r: self.drift.set_result(r),
                              on_error=lambda exc: self.drift.summary.setText(f"Drift: {exc}"))

    def _load_arms(self) -> None:
        if not self.deployment:
            return
        self.ctx.tasks.submit(dashboard.arms_view, self.ctx.workspace, self.deployment,
                              outcomes=self.arms.outcomes.text().strip() or None,
                              outcome_column=self.arms.outcome_column.text().strip(),
                              title=f"Arms of {self.deployment}", key="monitoring-arms", quiet=True, owner=self,
                              on_done=lambda r: self.arms.set_result(r),
                              on_error=lambda exc: self.arms.verdicts.setText(f"Arms: {exc}"))

    def _load_alerts(self) -> None:
        self.ctx.tasks.submit(dashboard.alerts_view, self.ctx.workspace, self.deployment or None,
                              title="Alerts", key="monitoring-alerts", quiet=True, owner=self,
                              on_done=lambda r: self.alerts.set_result(r))

    def _load_switches(self) -> None:
        if not self.deployment:
            return
        from mlops_desktop.monitoring import switches

        self.ctx.tasks.submit(lambda progress, ws=self.ctx.workspace, d=self.deployment: switches.state(ws, d),
                              title=f"Switches of {self.deployment}", key="monitoring-switches", quiet=True,
                              owner=self, on_done=lambda st: self.switches.set_state(st),
                              on_error=lambda exc: self.switches.set_unavailable(str(exc)))

    def _apply_switches(self) -> None:
        from mlops_desktop import audit
        from mlops_desktop.monitoring import switches

        try:
            wanted = self.switches.wanted()
        except ValueError as exc:
            QMessageBox.warning(self, "Switches", str(exc))
            return
        reason = self.switches.reason.text().strip()
        if not wanted:
            QMessageBox.information(self, "Switches", "Nothing was changed.")
            return
        if not reason:
            QMessageBox.warning(self, "Switches", "A live change needs a reason; nothing was changed.")
            return
        name, ws, who = self.deployment, self.ctx.workspace, audit.current_actor()

        def apply(progress: Any) -> Any:
            return switches.change(ws, name, actor=who, reason=reason, **wanted)

        def done(answer: Any) -> None:
            self.switches.reason.clear()
            self.switches.threshold.clear()
            kinds = ", ".join(e["kind"] for e in answer.get("changes", [])) or "nothing changed"
            self.ctx.notifications.success(f"{name}: {kinds}", reason)
            self._load_switches()

        self.ctx.tasks.submit(apply, title=f"Switches of {name}", key="monitoring-switch-change", quiet=True,
                              owner=self, on_done=done)

    # -- live --------------------------------------------------------------------------------------------------
    def _toggle_live(self, on: bool) -> None:
        if not on:
            self._stop_monitor()
            self._load_overview()
            return
        self.live_button.setText("Starting…")
        self.ctx.tasks.submit(start_monitor, self.ctx.workspace, self.deployment, 2.0,
                              title=f"Watch {self.deployment}", key="monitoring-start", quiet=True, owner=self,
                              on_done=lambda m: self._started(m),
                              on_error=lambda _e: self.live_button.setChecked(False))

    def _started(self, monitor: Any) -> None:
        if not self.live_button.isChecked() or monitor.deployment != self.deployment:
            monitor.stop()
            return
        self.stored_timer.stop()
        self.monitor = monitor
        monitor.on_transition.append(self.bridge.transition.emit)
        monitor.start()
        ring = monitor.collector.ring
        self.live.set_source(ring_source(ring), lambda: ring.version)
        self.live_button.setText("Watching live")

    def _stop_monitor(self) -> None:
        mon, self.monitor = self.monitor, None
        self.live.stop()
        self.live_button.setText("Watch live")
        if mon is not None:
            self.ctx.tasks.submit(lambda progress: mon.stop(), title="Stop watching", quiet=True)

    def _on_transition(self, tr: Any) -> None:
        if tr.event in ("firing", "resolved") and not tr.silenced:
            note = self.ctx.notifications.error if tr.event == "firing" else self.ctx.notifications.success
            note(f"Alert {tr.rule} {tr.event} on {tr.deployment}",
                 f"value {tr.value}" + (f"; reverted to {tr.action.get('to')}" if tr.action else ""))
        if 3 in self._loaded_tabs or self.tabs.currentIndex() == 3:
            self._load_alerts()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self._stop_monitor()
        super().closeEvent(event)

    # -- actions -----------------------------------------------------------------------------------------------
    def _ask_revert(self) -> None:
        name = self.deployment
        if not name:
            return
        from mlops_desktop.monitoring.revert import stable_version

        self.ctx.tasks.submit(lambda progress: stable_version(self.ctx.workspace, name), pass_progress=True,
                              title=f"Stable version of {name}", quiet=True, owner=self,
                              on_done=lambda target: self._confirm_revert(name, target))

    def _confirm_revert(self, name: str, target: dict[str, Any]) -> None:
        version = target.get("to")
        how = {"router": f"the kill switch sends every request to arm {target.get('arm')}",
               "deploy": "the deployment rolls back to its last healthy revision",
               "server": "the server restarts on that version"}.get(str(target.get("kind")), "")
        reason, ok = QInputDialog.getText(self, "Revert to the stable version",
                                          f"Revert {name} to version {version}?\n{how}.\n\nWhy (recorded):",
                                          QLineEdit.EchoMode.Normal, "")
        if not ok:
            return
        if not reason.strip():
            QMessageBox.warning(self, "Revert", "A revert needs a reason; nothing was changed.")
            return
        self.ctx.tasks.submit(do_revert, self.ctx.workspace, name, reason, title=f"Revert {name}",
                              key="monitoring-revert", owner=self,
                              on_done=lambda done: self.ctx.notifications.success(
                                  f"{name} is back on version {done.get('to')}",
                                  f"{done.get('how', '')} ({done.get('seconds')} s)"))

    def _silence(self) -> None:
        alert = self.alerts.selected_alert()
        rule = alert.rule if alert is not None else "*"
        comment, ok = QInputDialog.getText(self, "Silence alerts",
                                           f"Silence {rule} on {self.deployment or '*'} for one hour.\nWhy:")
        if not ok or not comment.strip():
            return
        from mlops_desktop.monitoring.alerts import AlertStore

        self.ctx.tasks.submit(lambda progress: AlertStore(self.ctx.workspace).silence(
            deployment=self.deployment or "*", rule=rule, duration="1h", comment=comment), title="Silence",
            quiet=True, owner=self, on_done=lambda _s: self._load_alerts())

    def _ack(self) -> None:
        alert = self.alerts.selected_alert()
        if alert is None:
            QMessageBox.information(self, "Acknowledge", "Pick an alert first.")
            return
        note, ok = QInputDialog.getText(self, "Acknowledge", f"Alert {alert.id} ({alert.rule}): what are you "
                                                            "doing about it?")
        if not ok:
            return
        from mlops_desktop.monitoring.alerts import AlertStore

        self.ctx.tasks.submit(lambda progress: AlertStore(self.ctx.workspace).ack(alert.id, note=note),
                              title="Acknowledge", quiet=True, owner=self, on_done=lambda _a: self._load_alerts())

    def _add_rule(self) -> None:
        dialog = RuleDialog(self.deployment, self)
        if dialog.exec() != RuleDialog.DialogCode.Accepted or dialog.rule is None:
            return
        from mlops_desktop.monitoring.alerts import AlertStore

        rule = dialog.rule

        def save(progress: Any) -> Any:
            return AlertStore(self.ctx.workspace).add_rule(rule)

        def saved(_r: Any) -> None:
            self._load_alerts()
            if self.monitor is not None:
                self.monitor.reload_rules()

        self.ctx.tasks.submit(save, title=f"Rule {rule.name}", quiet=True, owner=self, on_done=saved)


AREA = MonitoringView
