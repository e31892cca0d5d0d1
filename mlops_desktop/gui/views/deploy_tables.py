"""The Deployments area's two tables: targets with their checked health, deployments with replicas and health."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.deploy_tasks import DeploymentSnapshot, TargetHealth
from mlops_desktop.gui.views.deploy_widgets import state_color, state_dot, when, words

TARGET_COLUMNS = ("Target", "Kind", "Health", "Where")
T_NAME, T_KIND, T_HEALTH, T_WHERE = range(len(TARGET_COLUMNS))
DEPLOYMENT_COLUMNS = ("Deployment", "Target", "Model", "Ready", "Revision", "Updated", "Health")
D_NAME, D_TARGET, D_MODEL, D_READY, D_REVISION, D_UPDATED, D_HEALTH = range(len(DEPLOYMENT_COLUMNS))


def where(target: Any) -> str:
    if target.kind == "kubernetes":
        parts = [target.context or "current context", f"ns {target.namespace or 'default'}"]
        return " · ".join(parts)
    return target.address or "default engine ($DOCKER_HOST)"


class TargetsModel(RowTableModel):
    columns = TARGET_COLUMNS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.health: dict[str, TargetHealth] = {}
        self.checking: set[str] = set()

    def set_targets(self, targets: list[Any]) -> None:
        self.beginResetModel()
        self.rows = list(targets)
        self.endResetModel()

    def set_health(self, results: list[TargetHealth]) -> None:
        for result in results:
            self.health[result.name] = result
            self.checking.discard(result.name)
        if self.rows:
            self.dataChanged.emit(self.index(0, T_HEALTH), self.index(len(self.rows) - 1, T_HEALTH))

    def set_checking(self, names: list[str]) -> None:
        self.checking |= set(names)
        if self.rows:
            self.dataChanged.emit(self.index(0, T_HEALTH), self.index(len(self.rows) - 1, T_HEALTH))

    def state_of(self, name: str) -> tuple[str, str]:
        result = self.health.get(name)
        if result is None:
            return "unknown", "checking…" if name in self.checking else "not checked"
        return result.state, result.text

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        target = self.rows[index.row()]
        col = index.column()
        state, text = self.state_of(target.name)
        if col == T_HEALTH and role == Qt.ItemDataRole.DecorationRole:
            return state_dot(state)
        if col == T_HEALTH and role == Qt.ItemDataRole.ForegroundRole and state != "reachable":
            return state_color(state)
        if role == Qt.ItemDataRole.ToolTipRole:
            result = self.health.get(target.name)
            if col == T_HEALTH and result is not None:
                nodes = [f"{n.get('name', '?')}: {n.get('role', '')} {n.get('state', '')}".strip()
                         for n in (result.check.nodes if result.check is not None else ())]
                return "\n".join([f"{text}", f"checked {when(result.at)}", *nodes])
            return where(target) if col == T_WHERE else None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return [target.name, target.kind, text, where(target)][col]


class DeploymentsModel(RowTableModel):
    columns = DEPLOYMENT_COLUMNS
    numeric_columns = frozenset({D_READY, D_REVISION})

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.snapshots: dict[str, DeploymentSnapshot] = {}

    def set_deployments(self, deployments: list[Any]) -> None:
        names = [d.name for d in deployments]
        if names == [d.name for d in self.rows]:
            self.rows = list(deployments)
            if self.rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(self.columns) - 1))
            return
        self.beginResetModel()
        self.rows = list(deployments)
        self.snapshots = {k: v for k, v in self.snapshots.items() if k in names}
        self.endResetModel()

    def set_snapshot(self, snap: DeploymentSnapshot) -> None:
        self.snapshots[snap.name] = snap
        for row, dep in enumerate(self.rows):
            if dep.name == snap.name:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))

    def health_of(self, name: str) -> tuple[str, str]:
        """(state, words) from the last status poll; 'unknown: reason' when the engine did not answer."""
        snap = self.snapshots.get(name)
        if snap is None:
            return "unknown", "checking…"
        if snap.error:
            return "unknown", f"unknown: {snap.error}"
        if snap.status is None:
            return "unknown", "unknown"
        state = str(snap.status.state)
        if state == "unknown":
            return state, f"unknown: {snap.status.reason or 'the engine did not say'}"
        return state, words(state)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        dep = self.rows[index.row()]
        col = index.column()
        state, text = self.health_of(dep.name)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(col)
        if col == D_HEALTH and role == Qt.ItemDataRole.DecorationRole:
            return state_dot(state)
        if col == D_HEALTH and role == Qt.ItemDataRole.ForegroundRole:
            return state_color(state)
        if role == Qt.ItemDataRole.ToolTipRole:
            snap = self.snapshots.get(dep.name)
            if col == D_HEALTH and snap is not None:
                reason = snap.error or (snap.status.reason if snap.status is not None else "")
                return f"{text}" + (f"\n{reason}" if reason and reason not in text else "") + \
                    f"\nseen {when(snap.at)}"
            if col == D_MODEL:
                return f"asked for {dep.spec.model_ref}; image {dep.image or '–'}"
            return None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == D_NAME:
            return dep.name
        if col == D_TARGET:
            return dep.target
        if col == D_MODEL:
            model = dep.model or dep.spec.model
            version = dep.version or dep.spec.version
            ref = f"{model}/{version}" if model else dep.spec.model_ref
            if dep.router is not None and len(dep.router.arms) > 1:
                ref += f" +{len(dep.router.arms) - 1} arm(s)"
            return ref
        if col == D_READY:
            snap = self.snapshots.get(dep.name)
            if snap is None or snap.status is None or snap.status.state == "unknown":
                return f"?/{dep.spec.replicas}"   # not seen: never a made-up 0
            return f"{snap.status.ready}/{snap.status.desired}"
        if col == D_HEALTH:
            return text
        if col == D_REVISION:
            return str(dep.current_revision)
        if col == D_UPDATED:
            return when(dep.updated_at)
        return None
