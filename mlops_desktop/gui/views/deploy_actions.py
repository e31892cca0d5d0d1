"""The Deployments area's actions: each state-changing core call (create, update, rollback, resume, scale, restart,
delete, split, shadow, add target, build) run in a worker, with its dialog or question first."""

from __future__ import annotations

from typing import Any, cast

from PySide6.QtWidgets import QWidget

from mlops_desktop.gui.views import deploy_tasks as tasks
from mlops_desktop.gui.views.deploy_dialogs import (
    AddTargetDialog,
    CreateDeploymentDialog,
    UpdateDeploymentDialog,
    parse_env_text,
)
from mlops_desktop.gui.views.deploy_revisions import RollbackDialog

TABS = ("rollout", "revisions", "logs", "traffic", "build")


class DeploymentActions:
    """Mixed into DeploymentsView (which provides the widgets and state named here)."""

    ctx: Any
    svc: Any
    tabs: Any
    rollout: Any
    timeline: Any
    build: Any
    build_ref: Any
    build_base: Any
    build_button: Any
    targets: list[Any]
    refs: list[str]
    action_task: Any
    dialog: Any
    pending_select: str | None
    polling: bool
    checked_at: float
    confirm: Any
    ask_int: Any

    def _widget(self) -> QWidget:
        return cast(QWidget, self)   # the view itself: the dialogs' parent

    def selected(self) -> Any:
        raise NotImplementedError

    def load(self) -> None:
        raise NotImplementedError

    def poll_selected(self) -> None:
        raise NotImplementedError

    def _update_buttons(self) -> None:
        raise NotImplementedError

    def run_action(self, title: str, method: str, *args: Any, dialog: Any = None, select: str | None = None,
                   **kwargs: Any) -> Any:
        """A state-changing core call in a worker; its progress drives the rollout panel; the area reloads after."""
        if self.action_task is not None and self.action_task.running:
            self.ctx.notifications.warning("One change at a time", f"{self.action_task.title} is still running")
            return None

        def done(result: Any) -> None:
            self.rollout.show_action(None)
            if dialog is not None:
                dialog.accept()
            outcome = getattr(result, "outcome", None)
            if outcome in ("rolled_back", "failed", "unknown"):
                detail = getattr(result, "detail", "") or ""
                self.ctx.notifications.warning(f"{title}: {outcome.replace('_', ' ')}", detail)
            else:
                self.ctx.notifications.success(f"{title}: done", getattr(result, "detail", "") or "")
            self._after_action(select)

        def failed(exc: BaseException) -> None:
            from mlops_desktop.gui.notify import describe

            self.rollout.show_action(None)
            if dialog is not None:
                dialog.failed(describe(exc))
            self._after_action(select)

        if method not in ("split", "shadow", "add_target"):
            self.tabs.setCurrentIndex(TABS.index("rollout"))
        self.rollout.show_action(f"{title}…", 0.0)
        task = self.ctx.tasks.submit(tasks.run_action, self.svc, method, *args, title=title, quiet=True,
                                     owner=self, on_done=done, on_error=failed, **kwargs)
        task.progressed.connect(lambda f, m: self.rollout.show_action(f"{title}: {m}" if m else title, f))
        task.was_cancelled.connect(lambda: (self.rollout.show_action(None), self._after_action(select)))
        self.action_task = task
        self._update_buttons()
        self.poll_selected()
        return task

    def _after_action(self, select: str | None) -> None:
        self.action_task = None
        if select:
            self.pending_select = select
        self._update_buttons()
        self.load()
        self.polling = False
        self.poll_selected()

    def stop_waiting(self) -> None:
        """Cancel the running action's worker: the service records the revision as unknown (resumable)."""
        if self.action_task is not None and self.action_task.running:
            self.action_task.cancel()
            self.rollout.show_action("stopping…", 0.0)

    def resume_selected(self) -> Any:
        dep = self.selected()
        if dep is None:
            return None
        return self.run_action(f"Resume {dep.name}", "resume", dep.name, select=dep.name)

    def open_create_dialog(self) -> CreateDeploymentDialog:
        dialog = CreateDeploymentDialog([t.name for t in self.targets], self.refs, self._widget())
        dialog.submitted.connect(lambda v, d=dialog: self.create_deployment(v, d))
        self._open(dialog)
        return dialog

    def create_deployment(self, values: dict[str, Any], dialog: Any = None) -> Any:
        v = dict(values)
        env = parse_env_text(v.pop("env_text", ""))
        name = v.pop("name")
        return self.run_action(f"Deploy {name}", "create", name, dialog=dialog, select=name,
                               target=v.pop("target"), model_ref=v.pop("model_ref"), env=env, **v)

    def open_update_dialog(self) -> UpdateDeploymentDialog | None:
        dep = self.selected()
        if dep is None:
            return None
        dialog = UpdateDeploymentDialog(dep, self.refs, self._widget())
        dialog.submitted.connect(lambda v, d=dialog: self.update_deployment(v, d))
        self._open(dialog)
        return dialog

    def update_deployment(self, values: dict[str, Any], dialog: Any = None) -> Any:
        v = dict(values)
        env = parse_env_text(v.pop("env_text", ""))
        name = v.pop("name")
        return self.run_action(f"Update {name}", "update", name, dialog=dialog, select=name,
                               model_ref=v.pop("model_ref"), env=env, **v)

    def open_add_target_dialog(self) -> AddTargetDialog:
        dialog = AddTargetDialog(self._widget())
        dialog.submitted.connect(lambda v, d=dialog: self.add_target(v, d))
        self._open(dialog)
        return dialog

    def add_target(self, values: dict[str, Any], dialog: Any = None) -> Any:
        v = dict(values)
        name = v.pop("name")
        self.checked_at = 0.0   # check the new one at once
        return self.run_action(f"Add target {name}", "add_target", name, dialog=dialog, **v)

    def _open(self, dialog: Any) -> None:
        """Window-modal, not blocking: the event loop (and the polls) go on while it is open."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.reject()
        self.dialog = dialog
        dialog.finished.connect(lambda _r, d=dialog: self._dialog_closed(d))
        dialog.open()

    def _dialog_closed(self, dialog: Any) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    def ask_rollback(self, number: int) -> RollbackDialog | None:
        dep = self.selected()
        if dep is None:
            return None
        target = self.timeline.revision(number)
        current = next((r for r in self.timeline.revisions if r.number == self.timeline.current), None)
        dialog = RollbackDialog(dep.name, target, current, self._widget())
        dialog.accepted.connect(lambda d=dialog, name=dep.name: self.rollback(name, d.target_number,
                                                                              d.reason_text()))
        self._open(dialog)
        return dialog

    def rollback(self, name: str, to: int, reason: str) -> Any:
        return self.run_action(f"Roll back {name} to revision {to}", "rollback", name, select=name, to=to,
                               reason=reason)

    def scale_selected(self) -> Any:
        dep = self.selected()
        if dep is None:
            return None
        replicas, ok = self.ask_int(f"Scale {dep.name}", "Replicas:", dep.spec.replicas)
        if not ok:
            return None
        return self.run_action(f"Scale {dep.name} to {replicas}", "scale", dep.name, replicas, select=dep.name)

    def restart_selected(self) -> Any:
        dep = self.selected()
        if dep is None or not self.confirm(f"Restart {dep.name}",
                                           f"Replace every replica of {dep.name}, one at a time?"):
            return None
        return self.run_action(f"Restart {dep.name}", "restart", dep.name, select=dep.name)

    def delete_selected(self) -> Any:
        dep = self.selected()
        if dep is None or not self.confirm(
                f"Delete {dep.name}", f"Delete {dep.name} from {dep.target}? Its replicas (and its router) stop and "
                "are removed; its revision history stays in the audit log."):
            return None
        return self.run_action(f"Delete {dep.name}", "delete", dep.name)

    def split_selected(self, weights: dict[str, int], sticky: str | None) -> Any:
        dep = self.selected()
        if dep is None:
            return None
        return self.run_action(f"Split {dep.name}", "split", dep.name, weights, select=dep.name,
                               sticky_header=sticky)

    def shadow_selected(self, ref: str, percent: float) -> Any:
        dep = self.selected()
        if dep is None:
            return None
        return self.run_action(f"Shadow {dep.name}", "shadow", dep.name, ref, select=dep.name, percent=percent)

    def start_build(self) -> Any:
        ref = self.build_ref.text().strip()
        if not ref:
            self.build.state.setText("Type the model reference to build (MODEL@ALIAS or MODEL/VERSION).")
            return None
        self.build_button.setEnabled(False)
        task = self.build.start(ref, self.build_base.text().strip() or None, self.build_engine())
        task.ended.connect(lambda: self.build_button.setEnabled(True))
        return task

    def build_engine(self) -> str | None:
        """The Docker engine of the selected deployment's target (local or Swarm), where its images must be."""
        dep = self.selected()
        target = next((t for t in self.targets if dep is not None and t.name == dep.target), None)
        if target is None and len(self.targets) == 1:
            target = self.targets[0]
        return target.address if target is not None and target.kind in ("local", "swarm") else None
