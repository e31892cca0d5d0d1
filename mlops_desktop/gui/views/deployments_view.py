"""The Deployments area: targets and their health, deployments with replicas and health, and for the selected one
its rollout, revision timeline (with rollback), live logs, A/B / shadow traffic and image builds."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views import deploy_tasks as tasks
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.data_panels import pad_cells
from mlops_desktop.gui.views.deploy_actions import TABS, DeploymentActions
from mlops_desktop.gui.views.deploy_logs import BuildLogPane, LiveLogsPane
from mlops_desktop.gui.views.deploy_revisions import RevisionTimeline
from mlops_desktop.gui.views.deploy_rollout import RolloutPanel
from mlops_desktop.gui.views.deploy_tables import T_HEALTH, DeploymentsModel, TargetsModel
from mlops_desktop.gui.views.deploy_traffic import TrafficPanel
from mlops_desktop.gui.views.deploy_widgets import empty_state, heading, muted

POLL_MS = 1500          # the selected deployment's status while the area shows
LIST_POLL_MS = 6000     # every deployment's status (the table) and the list itself
TARGET_CHECK_S = 30.0   # targets are checked again on show when older than this


def _table() -> QTableView:
    table = QTableView()
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(24)
    pad_cells(table)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    header.setHighlightSections(False)
    return table


class DeploymentsView(DeploymentActions, AreaView):
    area_id = "deployments"
    title = "Deployments"
    icon_name = "deployments"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.targets_model = TargetsModel(self)
        self.targets_table = _table()
        self.targets_table.setModel(self.targets_model)
        self.deployments_model = DeploymentsModel(self)
        self.deployments_table = _table()
        self.deployments_table.setModel(self.deployments_model)
        for table, model in ((self.targets_table, self.targets_model),
                             (self.deployments_table, self.deployments_model)):
            # the last column takes what is left and elides; the whole text is in the tooltip
            table.horizontalHeader().setSectionResizeMode(len(model.columns) - 1, QHeaderView.ResizeMode.Stretch)
        targets_header = self.targets_table.horizontalHeader()
        targets_header.setSectionResizeMode(T_HEALTH, QHeaderView.ResizeMode.Interactive)
        targets_header.resizeSection(T_HEALTH, 300)
        self.deployments_table.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        # -- toolbar; every button goes through a lambda (clicked(bool) must never reach a slot's first parameter)
        self.new_button = self._button("New deployment…", lambda: self.open_create_dialog(),
                                       "Deploy a model version to a target (deploy create)")
        self.update_button = self._button("Update…", lambda: self.open_update_dialog(),
                                          "Roll out another version or other resources (deploy update)")
        self.scale_button = self._button("Scale…", lambda: self.scale_selected(), "deploy scale")
        self.restart_button = self._button("Restart", lambda: self.restart_selected(),
                                           "Replace every replica, one at a time (deploy restart)")
        self.delete_button = self._button("Delete…", lambda: self.delete_selected(), "deploy delete")
        self.resume_button = self._button("Resume", lambda: self.resume_selected(),
                                          "Continue the last rollout that was never seen to finish (deploy resume)")
        self.add_target_button = self._button("Add target…", lambda: self.open_add_target_dialog(), "targets add")
        self.check_button = self._button("Check targets", lambda: self.check_targets(), "targets check")
        self.status = muted("", wrap=False)
        bar = QHBoxLayout()
        for b in (self.new_button, self.update_button, self.scale_button, self.restart_button, self.resume_button,
                  self.delete_button):
            bar.addWidget(b)
        bar.addSpacing(16)
        bar.addWidget(self.add_target_button)
        bar.addWidget(self.check_button)
        bar.addStretch(1)
        bar.addWidget(self.status)
        # -- detail tabs
        self.rollout = RolloutPanel()
        self.rollout.stop_button.clicked.connect(lambda: self.stop_waiting())
        self.timeline = RevisionTimeline()
        self.timeline.rollback_requested.connect(lambda n: self.ask_rollback(n))
        self.logs = LiveLogsPane(ctx, lambda name: self.svc.logs(name, follow=True))
        self.traffic = TrafficPanel()
        self.traffic.split_requested.connect(lambda w, sticky: self.split_selected(w, sticky))
        self.traffic.shadow_requested.connect(lambda ref, pct: self.shadow_selected(ref, pct))
        self.build = BuildLogPane(ctx)
        self.build_ref = QLineEdit()
        self.build_ref.setPlaceholderText("MODEL@ALIAS or MODEL/VERSION to build")
        self.build_base = QLineEdit()
        self.build_base.setPlaceholderText("base image (empty: the default Debian base)")
        self.build_button = self._button("Build image", lambda: self.start_build(), "images build")
        self.build.built.connect(lambda _rec: self.build_button.setEnabled(True))
        build_page = QWidget()
        build_layout = QVBoxLayout(build_page)
        build_layout.setContentsMargins(0, 0, 0, 0)
        build_row = QHBoxLayout()
        build_row.addWidget(self.build_ref, 2)
        build_row.addWidget(self.build_base, 2)
        build_row.addWidget(self.build_button)
        build_layout.addLayout(build_row)
        build_layout.addWidget(self.build, 1)
        self.tabs = QTabWidget()
        for page, label in ((self.rollout, "Rollout"), (self.timeline, "Revisions"), (self.logs, "Logs"),
                            (self.traffic, "A/B and shadow"), (build_page, "Build")):
            holder = QWidget()
            inner = QVBoxLayout(holder)
            inner.setContentsMargins(8, 8, 8, 8)
            inner.addWidget(page)
            self.tabs.addTab(holder, label)
        # -- layout: targets and deployments side by side on top, the selected deployment's tabs below
        targets_box = QWidget()
        targets_layout = QVBoxLayout(targets_box)
        targets_layout.setContentsMargins(0, 0, 0, 0)
        targets_layout.addWidget(heading("Targets"))
        targets_layout.addWidget(self.targets_table, 1)
        deployments_box = QWidget()
        deployments_layout = QVBoxLayout(deployments_box)
        deployments_layout.setContentsMargins(0, 0, 0, 0)
        deployments_layout.addWidget(heading("Deployments"))
        deployments_layout.addWidget(self.deployments_table, 1)
        self.top_split = QSplitter(Qt.Orientation.Horizontal)
        self.top_split.addWidget(targets_box)
        self.top_split.addWidget(deployments_box)
        self.top_split.setStretchFactor(0, 2)
        self.top_split.setStretchFactor(1, 3)
        self.top_split.setSizes([560, 900])
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.top_split)
        self.split.addWidget(self.tabs)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 5)
        self.split.setSizes([240, 600])
        self.empty = empty_state(
            "No deploy targets yet",
            "A target is where models run: a container on this machine's Docker engine, a Docker Swarm, or a "
            "Kubernetes cluster. Add one, then deploy a registered model version to it.",
            "or from a terminal:  mlops-desktop targets add local --local")
        self.empty_button = QPushButton("Add target…")
        self.empty_button.clicked.connect(lambda: self.open_add_target_dialog())
        self.empty.layout().insertWidget(self.empty.layout().count() - 2, self.empty_button, 0,
                                         Qt.AlignmentFlag.AlignHCenter)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.split)
        self.pages.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.pages, 1)
        # -- state
        self._svc_box: list[Any] = [None]   # shared with the destroyed handler, which outlives self
        self.destroyed.connect(lambda *_a, box=self._svc_box: tasks.close_service(box[0]))
        self.targets: list[Any] = []
        self.deployments: list[Any] = []
        self.refs: list[str] = []
        self.snapshot: tasks.DeploymentSnapshot | None = None
        self.action_task: Any = None
        self.polling = False
        self.listing = False
        self.checked_at = 0.0
        self.pending_select: str | None = None
        self.pending_tab: str | None = None
        self.dialog: Any = None
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self.poll_selected)
        self.list_timer = QTimer(self)
        self.list_timer.setInterval(LIST_POLL_MS)
        self.list_timer.timeout.connect(self.load)
        # Replaceable in tests: yes/no question; a whole number.
        self.confirm = lambda title, text: QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
        self.ask_int = lambda title, label, value: QInputDialog.getInt(self, title, label, value, 0, 1000)
        ctx.add_action("Deployments: new deployment…", lambda: (ctx.navigate("deployments"),
                                                                self.open_create_dialog()))
        ctx.add_action("Deployments: check targets", lambda: self.check_targets())
        self._update_buttons()
        self.load()

    @property
    def svc(self) -> Any:
        """The DeploymentService of the current workspace (made on first use, again after a workspace switch)."""
        box = self._svc_box
        if box[0] is None or box[0].ws is not self.ctx.workspace:
            tasks.close_service(box[0])
            box[0] = tasks.service(self.ctx.workspace)
        return box[0]

    def close_service(self) -> None:
        """Close the engine connections (another workspace, the area closing, a test's end)."""
        svc, self._svc_box[0] = self._svc_box[0], None
        tasks.close_service(svc)

    def _button(self, text: str, slot: Any, tip: str = "") -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        if tip:
            button.setToolTip(tip)
        return button

    # ------------------------------------------------------------------------------------------------ loading
    def refresh(self) -> None:
        self.load()

    def on_workspace_changed(self) -> None:
        self.logs.follow(None)
        self.close_service()
        self.snapshot = None
        self.targets_model.health.clear()
        self.deployments_model.snapshots.clear()
        self.checked_at = 0.0
        self.load()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.poll_timer.start()
        self.list_timer.start()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.poll_timer.stop()   # nothing polls an engine for an area nobody looks at
        self.list_timer.stop()
        super().hideEvent(event)

    def load(self) -> None:
        """Targets, deployments and model refs from the workspace (no engine calls), then the engine reads."""
        if self.listing:
            return
        self.listing = True

        def read(svc: Any, *, progress: Any) -> tuple[list[Any], list[Any], list[str]]:
            return (tasks.list_targets(svc, progress=progress), tasks.list_deployments(svc, progress=progress),
                    tasks.model_refs(svc.ws, progress=progress))

        self.ctx.tasks.submit(read, self.svc, title="Load deployments", key=f"deploy-list-{id(self)}",
                              quiet=True, owner=self, on_done=self._loaded,
                              on_error=lambda _e: setattr(self, "listing", False))

    def _loaded(self, result: tuple[list[Any], list[Any], list[str]]) -> None:
        self.listing = False
        targets, deployments, refs = result
        selected = self.pending_select or (self.selected().name if self.selected() is not None else None)
        if [t.name for t in targets] != [t.name for t in self.targets]:
            self.targets_model.set_targets(targets)
        self.targets, self.deployments, self.refs = targets, deployments, refs
        self.deployments_model.set_deployments(deployments)
        self.pages.setCurrentWidget(self.split if targets or deployments else self.empty)
        names = [d.name for d in deployments]
        if selected not in names:
            selected = names[0] if names else None
        if selected is not None and (self.selected() is None or self.selected().name != selected):
            self.deployments_table.selectRow(names.index(selected))
        self.pending_select = None
        if self.pending_tab:
            self.show_item(tab=self.pending_tab)
            self.pending_tab = None
        self._selection_changed(reload=False)
        if targets and time.time() - self.checked_at > TARGET_CHECK_S:
            self.check_targets()
        if deployments:
            self.ctx.tasks.submit(tasks.statuses, self.svc, names, title="Deployment status",
                                  key=f"deploy-statuses-{id(self)}", quiet=True, owner=self,
                                  on_done=self._statuses)

    def _statuses(self, snaps: list[tasks.DeploymentSnapshot]) -> None:
        for snap in snaps:
            current = self.deployments_model.snapshots.get(snap.name)
            if current is not None and current.at > snap.at:
                continue
            if current is not None and not snap.revisions:
                snap.revisions = current.revisions
            self.deployments_model.set_snapshot(snap)

    def check_targets(self) -> None:
        names = [t.name for t in self.targets]
        if not names:
            return
        self.checked_at = time.time()
        self.targets_model.set_checking(names)
        self.ctx.tasks.submit(tasks.check_targets, self.svc, names, title="Check deploy targets",
                              key=f"deploy-check-{id(self)}", quiet=True, owner=self,
                              on_done=self.targets_model.set_health)

    # ------------------------------------------------------------------------------------------------ selection
    def selected(self) -> Any:
        index = self.deployments_table.currentIndex()
        if not index.isValid() or index.row() >= len(self.deployments_model.rows):
            return None
        return self.deployments_model.rows[index.row()]

    def _selection_changed(self, reload: bool = True) -> None:
        dep = self.selected()
        name = dep.name if dep is not None else None
        if self.snapshot is not None and self.snapshot.name != name:
            self.snapshot = None
            self.ctx.clear_status()
        if dep is None:
            self.rollout.clear("Select a deployment to see its replicas." if self.deployments else
                               "No deployments yet: New deployment… serves a registered model on a target.")
            self.timeline.show_revisions([])
            self.traffic.show_deployment(None, [])
            self.logs.follow(None)
        else:
            self.traffic.show_deployment(dep, tasks.versions_of(self.refs, dep.spec.model))
            self.logs.follow(name)   # streams only while the Logs tab shows
            if not self.build.building and not self.build_ref.text():
                self.build_ref.setText(dep.spec.model_ref)
            known = self.deployments_model.snapshots.get(dep.name)
            if known is not None and (self.snapshot is None or self.snapshot.name != name):
                self._show_snapshot(known)
            if reload or self.snapshot is None:
                self.poll_selected()
        self._update_buttons()

    def poll_selected(self) -> None:
        dep = self.selected()
        if dep is None or self.polling:
            return
        self.polling = True
        name = dep.name
        self.ctx.tasks.submit(tasks.snapshot, self.svc, name, True, title=f"Status of {name}",
                              key=f"deploy-poll-{id(self)}", quiet=True, owner=self,
                              on_done=self._polled, on_error=lambda _e: setattr(self, "polling", False))

    def _polled(self, snap: tasks.DeploymentSnapshot) -> None:
        self.polling = False
        self.deployments_model.set_snapshot(snap)
        dep = self.selected()
        if dep is None or dep.name != snap.name:
            return
        self._show_snapshot(snap)

    def _show_snapshot(self, snap: tasks.DeploymentSnapshot) -> None:
        if self.snapshot is None or self.snapshot.name != snap.name:
            self.rollout.clear("")   # another deployment: nothing of the last one's replicas may linger
        self.snapshot = snap
        if snap.error:
            self.rollout.show_unknown(snap.error)
        elif snap.status is not None and snap.status.state == "unknown":
            self.rollout.show_unknown(snap.status.reason or "the engine did not say")
        elif snap.status is not None:
            self.rollout.show_status(snap.status, snap.at)
        if snap.events:
            self.rollout.show_log(snap.events)
        if snap.revisions:
            dep = self.selected()
            self.timeline.show_revisions(snap.revisions, dep.current_revision if dep is not None else None)
        self._update_buttons()

    def show_item(self, tab: str | None = None, deployment: str | None = None, **_kw: Any) -> None:
        """navigate("deployments", deployment=NAME, tab="revisions"); `--view deployments:logs`."""
        if deployment is not None:
            names = [d.name for d in self.deployments]
            if deployment in names:
                self.deployments_table.selectRow(names.index(deployment))
            else:
                self.pending_select = deployment
        if tab:
            if tab not in TABS:
                from mlops_desktop.errors import UsageError

                raise UsageError(f"no such Deployments tab {tab!r}; choose from {', '.join(TABS)}")
            self.tabs.setCurrentIndex(TABS.index(tab))

    def _update_buttons(self) -> None:
        dep = self.selected()
        busy = self.action_task is not None and self.action_task.running
        for b in (self.update_button, self.scale_button, self.restart_button, self.delete_button):
            b.setEnabled(dep is not None and not busy)
        self.new_button.setEnabled(bool(self.targets) and not busy)
        revisions = self.snapshot.revisions if self.snapshot is not None and dep is not None else []
        unfinished = bool(revisions) and revisions[-1].outcome in ("pending", "unknown")
        self.resume_button.setVisible(unfinished)
        self.resume_button.setEnabled(unfinished and not busy)
        self.check_button.setEnabled(bool(self.targets))
        self.timeline.set_busy(busy)
        self.traffic.set_busy(busy)

    def on_theme_changed(self) -> None:
        self.rollout.on_theme_changed()
        self.timeline.on_theme_changed()


AREA = DeploymentsView
