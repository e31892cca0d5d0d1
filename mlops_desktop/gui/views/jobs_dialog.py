"""The New job dialog: a recipe, script or command, its dataset and parameters, a host and GPUs, and a sweep.

Everything `jobs submit` takes, checked while it is typed by the same parsers (parameters, sweeps, argv), and
submitted through the same core call (``Executor.submit``) in a worker; a refusal keeps the dialog open with why.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.errors import MlopsError

RECIPE_HELP = {
    "sklearn": "Fits a scikit-learn estimator (by class path) on a table; logs metrics and saves the model.",
    "torch-mlp": "Trains a PyTorch multi-layer perceptron on a table (GPU when given one); early stopping.",
}
ESTIMATORS = ["sklearn.ensemble.RandomForestClassifier", "sklearn.ensemble.HistGradientBoostingClassifier",
              "sklearn.linear_model.LogisticRegression", "sklearn.ensemble.RandomForestRegressor",
              "sklearn.ensemble.HistGradientBoostingRegressor", "sklearn.linear_model.Ridge"]
NO_DATASET = "(none)"


@dataclass
class Choices:
    """What the dialog offers, read in a worker: lake datasets with their columns, hosts with their GPUs, and the
    experiments that exist."""

    datasets: dict[str, list[str]] = field(default_factory=dict)
    hosts: list[tuple[str, int, str]] = field(default_factory=list)   # name, GPUs known, address
    experiments: list[str] = field(default_factory=list)
    default_experiment: str = ""


def read_choices(ws: Any, *, progress: Any) -> Choices:
    from mlops_desktop.data import catalog
    from mlops_desktop.execution import HostRegistry

    datasets = {v.name: list(v.schema) for v in catalog.list_datasets(ws.db)}
    hosts = [(h.name, len(h.inventory.gpus) if h.inventory else 0, h.address) for h in HostRegistry(ws).list()]
    experiments = [e.name for e in ws.tracking.list_experiments()]
    return Choices(datasets, hosts, experiments, ws.settings.default_experiment)


class NewJobDialog(QDialog):
    """Emits ``submitted(JobRequest)`` when the fields make a valid request; the view submits it and calls
    ``done_ok()`` or ``failed(message)``."""

    submitted = Signal(object)

    def __init__(self, choices: Choices, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.choices = choices
        self.setWindowTitle("New job")
        self.setMinimumWidth(620)

        self.kind_group = QButtonGroup(self)
        kinds = QHBoxLayout()
        self.kind_buttons: dict[str, QRadioButton] = {}
        for kind, label in (("recipe", "Built-in recipe"), ("script", "Python script"), ("command", "Command")):
            button = QRadioButton(label)
            self.kind_group.addButton(button)
            self.kind_buttons[kind] = button
            kinds.addWidget(button)
            button.toggled.connect(lambda on, k=kind: on and self._kind_changed(k))
        kinds.addStretch(1)

        # what to run, one page per kind
        self.recipe = QComboBox()
        from mlops_desktop.recipes import RECIPES

        self.recipe.addItems(sorted(RECIPES))
        self.recipe_help = QLabel("")
        self.recipe_help.setObjectName("muted")
        self.recipe_help.setWordWrap(True)
        self.estimator = QComboBox()
        self.estimator.setEditable(True)
        self.estimator.addItems(ESTIMATORS)
        self.estimator_label = QLabel("Estimator")
        recipe_page = QWidget()
        rf = QFormLayout(recipe_page)
        rf.setContentsMargins(0, 0, 0, 0)
        rf.addRow("Recipe", self.recipe)
        rf.addRow("", self.recipe_help)
        rf.addRow(self.estimator_label, self.estimator)
        self.script = QLineEdit()
        self.script.setPlaceholderText("train.py (in the project folder) or an absolute path")
        browse_script = QPushButton("Browse…")
        browse_script.clicked.connect(lambda: self._browse_script())
        script_page = QWidget()
        sf = QHBoxLayout(script_page)
        sf.setContentsMargins(0, 0, 0, 0)
        sf.addWidget(QLabel("Script"))
        sf.addWidget(self.script, 1)
        sf.addWidget(browse_script)
        self.command = QLineEdit()
        self.command.setPlaceholderText("python train.py --lr {lr}     ({name} is replaced by the parameter's value)")
        command_page = QWidget()
        cf = QHBoxLayout(command_page)
        cf.setContentsMargins(0, 0, 0, 0)
        cf.addWidget(QLabel("Command"))
        cf.addWidget(self.command, 1)
        self.pages = QStackedWidget()
        for page in (recipe_page, script_page, command_page):
            self.pages.addWidget(page)

        # data and parameters
        self.dataset = QComboBox()
        self.dataset.addItem(NO_DATASET)
        self.dataset.addItems(sorted(choices.datasets))
        self.target = QComboBox()
        self.target.setEditable(True)
        self.params = QPlainTextEdit()
        self.params.setPlaceholderText("one key=value per line, e.g.\nn_estimators=200\nmax_depth=8")
        self.params.setFixedHeight(78)
        self.sweep = QLineEdit()
        self.sweep.setPlaceholderText("grid:lr=0.1,0.01;depth=3,5    or    random:20:lr=loguniform(1e-4,1e-1)")
        self.sweep_info = QLabel("")
        self.sweep_info.setObjectName("muted")
        self.sweep_info.setWordWrap(True)

        # where
        self.host = QComboBox()
        for name, gpus, address in choices.hosts:
            self.host.addItem(f"{name}  ({address}{f', {gpus} GPU' + ('s' if gpus != 1 else '') if gpus else ''})",
                              name)
        self.gpus = QSpinBox()
        self.gpus.setRange(0, 64)
        self.gpu_info = QLabel("")
        self.gpu_info.setObjectName("muted")
        self.priority = QSpinBox()
        self.priority.setRange(-100, 100)
        self.project = QLineEdit()
        self.project.setPlaceholderText("project folder (copied to SSH hosts); empty: none")
        browse_project = QPushButton("Browse…")
        browse_project.clicked.connect(lambda: self._browse_project())
        self.experiment = QComboBox()
        self.experiment.setEditable(True)
        self.experiment.addItems(choices.experiments)
        self.experiment.setCurrentText(choices.default_experiment or (choices.experiments[0]
                                                                      if choices.experiments else "default"))
        self.name = QLineEdit()
        self.name.setPlaceholderText("optional: a name for the run")

        what = QGroupBox("What to run")
        wl = QVBoxLayout(what)
        wl.addLayout(kinds)
        wl.addWidget(self.pages)
        data = QGroupBox("Data and parameters")
        dl = QFormLayout(data)
        data_row = QHBoxLayout()
        data_row.addWidget(self.dataset, 1)
        data_row.addWidget(QLabel("target column"))
        data_row.addWidget(self.target, 1)
        dl.addRow("Dataset", data_row)
        dl.addRow("Parameters", self.params)
        sweep_row = QVBoxLayout()
        sweep_row.addWidget(self.sweep)
        sweep_row.addWidget(self.sweep_info)
        dl.addRow("Sweep", sweep_row)
        where = QGroupBox("Where")
        hl = QFormLayout(where)
        host_row = QHBoxLayout()
        host_row.addWidget(self.host, 1)
        host_row.addWidget(QLabel("GPUs"))
        host_row.addWidget(self.gpus)
        host_row.addWidget(QLabel("priority"))
        host_row.addWidget(self.priority)
        hl.addRow("Host", host_row)
        hl.addRow("", self.gpu_info)
        project_row = QHBoxLayout()
        project_row.addWidget(self.project, 1)
        project_row.addWidget(browse_project)
        hl.addRow("Project", project_row)
        track = QHBoxLayout()
        track.addWidget(self.experiment, 1)
        track.addWidget(QLabel("name"))
        track.addWidget(self.name, 1)
        hl.addRow("Experiment", track)

        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.summary = QLabel("")
        self.summary.setObjectName("muted")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Submit")
        self.buttons.accepted.connect(lambda: self.submit())
        self.buttons.rejected.connect(lambda: self.reject())
        for message in (self.summary, self.error):
            message.setMinimumHeight(2 * message.fontMetrics().height() + 4)
            message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.addWidget(what)
        layout.addWidget(data)
        layout.addWidget(where)
        layout.addWidget(self.summary)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        for signal in (self.recipe.currentTextChanged, self.estimator.currentTextChanged, self.script.textChanged,
                       self.command.textChanged, self.target.currentTextChanged, self.sweep.textChanged,
                       self.experiment.currentTextChanged, self.project.textChanged):
            signal.connect(lambda *_: self.validate())
        self.params.textChanged.connect(lambda: self.validate())
        self.gpus.valueChanged.connect(lambda *_: self.validate())
        self.host.currentIndexChanged.connect(lambda *_: self.validate())
        self.dataset.currentIndexChanged.connect(lambda *_: self._dataset_changed())
        self.kind_buttons["recipe"].setChecked(True)
        self._dataset_changed()

    # -- inputs ------------------------------------------------------------------------------------------------
    def kind(self) -> str:
        return next(k for k, b in self.kind_buttons.items() if b.isChecked())

    def set_kind(self, kind: str) -> None:
        self.kind_buttons[kind].setChecked(True)

    def _kind_changed(self, kind: str) -> None:
        self.pages.setCurrentIndex(["recipe", "script", "command"].index(kind))
        self.validate()

    def _dataset_changed(self) -> None:
        name = self.dataset.currentText()
        keep = self.target.currentText()
        self.target.blockSignals(True)
        self.target.clear()
        columns = self.choices.datasets.get(name, [])
        self.target.addItems(columns)
        guess = next((c for c in (keep, "target", "label", "y", "class") if c in columns), columns[-1] if columns
                     else "")
        self.target.setCurrentText(guess if name != NO_DATASET else "")
        self.target.setEnabled(name != NO_DATASET)
        self.target.blockSignals(False)
        self.validate()

    def _browse_script(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training script", self.project.text(), "Python (*.py)")
        if path:
            self.script.setText(path)
            if not self.project.text().strip():
                self.project.setText(str(Path(path).parent))

    def _browse_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder", self.project.text())
        if folder:
            self.project.setText(folder)

    def host_name(self) -> str:
        return str(self.host.currentData() or "local")

    def host_gpus(self) -> int:
        return next((g for n, g, _a in self.choices.hosts if n == self.host_name()), 0)

    # -- the request -------------------------------------------------------------------------------------------
    def request(self) -> Any:
        """The JobRequest the fields describe; raises MlopsError (worded for the user) when they do not make one."""
        from mlops_desktop.errors import UsageError
        from mlops_desktop.execution import JobRequest
        from mlops_desktop.execution.launch import build_argv, parse_params
        from mlops_desktop.execution.sweeps import expand

        kind = self.kind()
        lines = [ln.strip() for ln in self.params.toPlainText().splitlines() if ln.strip() and
                 not ln.strip().startswith("#")]
        params = parse_params(lines)
        dataset = self.dataset.currentText()
        if dataset != NO_DATASET:
            params.setdefault("data", f"lake:{dataset}")
            target = self.target.currentText().strip()
            if target:
                params.setdefault("target", target)
        command: list[str] | None = None
        recipe = script = None
        if kind == "recipe":
            recipe = self.recipe.currentText()
            if recipe == "sklearn":
                estimator = self.estimator.currentText().strip()
                if not estimator:
                    raise UsageError("the sklearn recipe needs an estimator class path")
                params.setdefault("estimator", estimator)
            if "data" not in params:
                raise UsageError(f"the {recipe} recipe needs data: choose a dataset (or a data=FILE parameter)")
            if "target" not in params:
                raise UsageError(f"the {recipe} recipe needs the target column to predict")
        elif kind == "script":
            script = self.script.text().strip()
            if not script:
                raise UsageError("choose the Python script to run")
            path = Path(script).expanduser()
            if not path.is_absolute() and self.project.text().strip():
                path = Path(self.project.text().strip()).expanduser() / path
            if not path.is_file():
                raise UsageError(f"the script {path} does not exist")
        else:
            text = self.command.text().strip()
            if not text:
                raise UsageError("type the command to run")
            try:
                command = shlex.split(text)
            except ValueError as exc:
                raise UsageError(f"the command cannot be read: {exc} (check its quotes)") from None
        sweep = self.sweep.text().strip() or None
        points = expand(sweep) if sweep else [{}]
        for point in points[:1]:
            build_argv(kind, python="python3", command=command, script=script, recipe=recipe,
                       params={**params, **point})
        gpus = self.gpus.value()
        if gpus and gpus > self.host_gpus():
            raise UsageError(f"host {self.host_name()} has {self.host_gpus()} GPU(s) known; the job asks for {gpus}",
                             hint="inspect the host in the Hosts area if it has more")
        project = self.project.text().strip()
        if project and not Path(project).expanduser().is_dir():
            raise UsageError(f"the project folder {project} does not exist")
        return JobRequest(host=self.host_name(), kind=kind, command=command, script=script, recipe=recipe,
                          params=params, sweep=sweep, gpus=gpus, priority=self.priority.value(),
                          experiment=self.experiment.currentText().strip(), name=self.name.text().strip(),
                          project_dir=project)

    def validate(self) -> Any:
        """Check the fields; returns the request or None, and says what is wrong under the form."""
        gpus = self.host_gpus()
        self.gpu_info.setText(f"{gpus} GPU{'s' if gpus != 1 else ''} known on {self.host_name()}" if gpus else
                              f"no GPU known on {self.host_name()} (inspect it in Hosts)")
        self.recipe_help.setText(RECIPE_HELP.get(self.recipe.currentText(), ""))
        sklearn = self.kind() == "recipe" and self.recipe.currentText() == "sklearn"
        self.estimator.setVisible(sklearn)
        self.estimator_label.setVisible(sklearn)
        try:
            req = self.request()
        except MlopsError as exc:
            self.error.setText(str(exc))
            self.summary.setText("")
            self.ok_button.setEnabled(False)
            self.sweep_info.setText("")
            return None
        count = 1
        if req.sweep:
            from mlops_desktop.execution.sweeps import expand

            points = expand(req.sweep)
            count = len(points)
            swept = sorted({k for p in points for k in p} & set(req.params))
            note = (f"; the sweep sets {', '.join(swept)}: the parameter's own value is not used" if swept else "")
            self.sweep_info.setText(f"{count} jobs, one child run each, under one parent run{note}")
        else:
            self.sweep_info.setText("")
        self.error.setText("")
        what = {"recipe": f"recipe {req.recipe}", "script": f"script {Path(req.script or '').name}",
                "command": "the command"}[req.kind]
        self.summary.setText(f"{count} job{'s' if count != 1 else ''} of {what} on {req.host}"
                             + (f" with {req.gpus} GPU(s)" if req.gpus else "")
                             + f", tracked in experiment {req.experiment or 'default'}")
        self.ok_button.setEnabled(True)
        return req

    def submit(self) -> None:
        req = self.validate()
        if req is not None:
            self.ok_button.setEnabled(False)
            self.summary.setText("submitting…")
            self.submitted.emit(req)

    def failed(self, message: str) -> None:
        self.error.setText(message)
        self.summary.setText("not submitted")
        self.ok_button.setEnabled(True)
