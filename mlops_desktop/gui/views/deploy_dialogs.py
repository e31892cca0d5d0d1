"""Create / Update deployment and Add target dialogs: the fields of `deploy create|update` and `targets add`, checked
as they are typed by the core's own validation (deploy/names.py); OK asks the view to run the core call and the
dialog stays open, with the reason, when that fails."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from mlops_desktop.gui.views.deploy_widgets import muted


def _problem(check: Any, *args: Any) -> str:
    from mlops_desktop.errors import MlopsError

    try:
        check(*args)
    except MlopsError as exc:
        return str(exc)
    return ""


def parse_env_text(text: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments skipped) -> mapping, checked like `--env`."""
    from mlops_desktop.deploy.names import parse_env

    return parse_env([line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")])


class _FormDialog(QDialog):
    submitted = Signal(dict)

    def __init__(self, title: str, ok_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(540)
        self.form = QFormLayout(self)
        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.buttons.accepted.connect(lambda: self.submit())
        self.buttons.rejected.connect(lambda: self.reject())

    def finish_form(self) -> None:
        self.form.addRow(self.error)
        self.form.addRow(self.buttons)
        self.validate()

    def values(self) -> dict[str, Any]:
        raise NotImplementedError

    def problem(self) -> str:
        raise NotImplementedError

    def validate(self) -> bool:
        problem = self.problem()
        self.error.setText(problem)
        self.ok_button.setEnabled(not problem)
        return not problem

    def submit(self) -> None:
        if self.validate():
            self.ok_button.setEnabled(False)
            self.error.setText("")
            self.submitted.emit(self.values())

    def failed(self, message: str) -> None:
        """The core refused or the rollout failed to start: keep the dialog open and say why."""
        self.error.setText(message)
        self.ok_button.setEnabled(True)


class ResourceFields:
    """Replicas, CPU, memory, GPUs, port and env: shared by Create and Update."""

    def __init__(self, form: QFormLayout, on_change: Any, spec: Any = None) -> None:
        self.replicas = QSpinBox()
        self.replicas.setRange(0, 1000)
        self.replicas.setValue(spec.replicas if spec is not None else 1)
        self.cpu = QDoubleSpinBox()
        self.cpu.setRange(0.0, 1024.0)
        self.cpu.setDecimals(2)
        self.cpu.setSingleStep(0.25)
        self.cpu.setSpecialValueText("no limit")
        self.cpu.setValue((spec.cpu or 0.0) if spec is not None else 0.0)
        self.memory = QLineEdit(_memory_text(spec.memory) if spec is not None and spec.memory else "")
        self.memory.setPlaceholderText("no limit; e.g. 512Mi, 2Gi")
        self.gpus = QSpinBox()
        self.gpus.setRange(0, 64)
        self.gpus.setValue(spec.gpus if spec is not None else 0)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(spec.port if spec is not None else 8080)
        self.env = QPlainTextEdit("\n".join(f"{k}={v}" for k, v in (spec.env if spec is not None else {}).items()))
        self.env.setPlaceholderText("KEY=VALUE, one per line")
        self.env.setMaximumHeight(72)
        form.addRow("Replicas", self.replicas)
        form.addRow("CPU per replica", self.cpu)
        form.addRow("Memory per replica", self.memory)
        form.addRow("GPUs per replica", self.gpus)
        form.addRow("Container port", self.port)
        form.addRow("Environment", self.env)
        self.memory.textChanged.connect(lambda _t: on_change())
        self.env.textChanged.connect(lambda: on_change())

    def values(self) -> dict[str, Any]:
        return {"replicas": self.replicas.value(), "cpu": self.cpu.value() or None,
                "memory": self.memory.text().strip() or None, "gpus": self.gpus.value(), "port": self.port.value(),
                "env_text": self.env.toPlainText()}

    def problem(self) -> str:
        from mlops_desktop.deploy import names

        v = self.values()
        return (_problem(names.check_memory, v["memory"]) or _problem(parse_env_text, v["env_text"])
                or _problem(names.check_cpu, v["cpu"]))


def _memory_text(value: int) -> str:
    for unit, size in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


class CreateDeploymentDialog(_FormDialog):
    """`deploy create NAME --target T --model REF [--replicas N ...]`."""

    def __init__(self, targets: list[str], refs: list[str], parent: QWidget | None = None) -> None:
        super().__init__("Create deployment", "Deploy", parent)
        self.name = QLineEdit()
        self.name.setPlaceholderText("churn-api (lowercase letters, digits and -)")
        self.target = QComboBox()
        self.target.addItems(targets)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(refs)
        self.model.lineEdit().setPlaceholderText("MODEL@ALIAS or MODEL/VERSION, e.g. churn@production")
        self.form.addRow("Name", self.name)
        self.form.addRow("Target", self.target)
        self.form.addRow("Model", self.model)
        self.resources = ResourceFields(self.form, self.validate)
        self.form.addRow(muted("The rollout waits until every replica answers its readiness check; one that does "
                               "not within the deadline is rolled back."))
        self.name.textChanged.connect(lambda _t: self.validate())
        self.model.currentTextChanged.connect(lambda _t: self.validate())
        self.target.currentTextChanged.connect(lambda _t: self.validate())
        self.finish_form()

    def values(self) -> dict[str, Any]:
        return {"name": self.name.text().strip(), "target": self.target.currentText(),
                "model_ref": self.model.currentText().strip(), **self.resources.values()}

    def problem(self) -> str:
        from mlops_desktop.deploy import names

        v = self.values()
        if not v["name"]:
            return "Give the deployment a name."
        if not v["target"]:
            return "Add a target first (Targets ▸ Add target…)."
        if not v["model_ref"]:
            return "Choose the model to serve."
        return (_problem(names.check_deployment_name, v["name"]) or _problem(names.check_model_ref, v["model_ref"])
                or self.resources.problem())


class UpdateDeploymentDialog(_FormDialog):
    """`deploy update NAME --model REF [...]`: a new revision, rolled out health-checked."""

    def __init__(self, deployment: Any, refs: list[str], parent: QWidget | None = None) -> None:
        super().__init__(f"Update {deployment.name}", "Roll out", parent)
        self.deployment = deployment
        spec = deployment.spec
        now = QLabel(f"Serving {spec.model}/{spec.version} (asked as {spec.model_ref}) on {deployment.target}, "
                     f"revision {deployment.current_revision}")
        now.setTextFormat(Qt.TextFormat.PlainText)
        now.setWordWrap(True)
        self.form.addRow(now)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(refs)
        self.model.setCurrentText(spec.model_ref)
        self.form.addRow("Model", self.model)
        self.resources = ResourceFields(self.form, self.validate, spec)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("why (kept in the revision history and the audit log)")
        self.form.addRow("Reason", self.reason)
        self.model.currentTextChanged.connect(lambda _t: self.validate())
        self.finish_form()

    def values(self) -> dict[str, Any]:
        return {"name": self.deployment.name, "model_ref": self.model.currentText().strip(),
                "reason": self.reason.text().strip(), **self.resources.values()}

    def problem(self) -> str:
        from mlops_desktop.deploy import names

        v = self.values()
        if not v["model_ref"]:
            return "Choose the model to serve."
        return _problem(names.check_model_ref, v["model_ref"]) or self.resources.problem()


class AddTargetDialog(_FormDialog):
    """`targets add NAME --local | --swarm DOCKER_HOST | --kubernetes [--context C --namespace N]`."""

    KINDS = (("local", "Local Docker engine"), ("swarm", "Docker Swarm manager"), ("kubernetes", "Kubernetes"))

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Add deploy target", "Add target", parent)
        self.name = QLineEdit()
        self.name.setPlaceholderText("swarm-lab")
        self.kind = QComboBox()
        for kind, label in self.KINDS:
            self.kind.addItem(label, kind)
        self.address = QLineEdit()
        self.context = QLineEdit()
        self.context.setPlaceholderText("the kubeconfig's current context")
        self.namespace = QLineEdit()
        self.namespace.setPlaceholderText("default")
        self.form.addRow("Name", self.name)
        self.form.addRow("Kind", self.kind)
        self.form.addRow("Docker host", self.address)
        self.form.addRow("Context", self.context)
        self.form.addRow("Namespace", self.namespace)
        self.form.addRow(muted("Credentials stay in Docker's config and the kubeconfig; nothing secret is stored."))
        for edit in (self.name, self.address, self.context, self.namespace):
            edit.textChanged.connect(lambda _t: self.validate())
        self.kind.currentIndexChanged.connect(lambda _i: self._kind_changed())
        self._kind_changed()
        self.finish_form()

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        docker = kind in ("local", "swarm")
        self.address.setEnabled(docker)
        self.address.setPlaceholderText("unix:///var/run/docker.sock or ssh://user@host (empty: $DOCKER_HOST)"
                                        if docker else "")
        self.context.setEnabled(kind == "kubernetes")
        self.namespace.setEnabled(kind == "kubernetes")
        self.validate()

    def values(self) -> dict[str, Any]:
        kind = self.kind.currentData()
        return {"name": self.name.text().strip(), "kind": kind,
                "address": self.address.text().strip() or None if kind != "kubernetes" else None,
                "context": self.context.text().strip() or None if kind == "kubernetes" else None,
                "namespace": self.namespace.text().strip() or None if kind == "kubernetes" else None}

    def problem(self) -> str:
        from mlops_desktop.deploy import names

        v = self.values()
        if not v["name"]:
            return "Give the target a name."
        return (_problem(names.check_target_name, v["name"])
                or (_problem(names.check_context, v["context"]) if v["context"] else "")
                or (_problem(names.check_namespace, v["namespace"]) if v["namespace"] else ""))
