"""The back-test launch form: dataset, time column, versions to replay, window lengths, walk-forward refit; it builds
the same BacktestSpec as `backtest run` and says in words what is wrong before anything runs."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.errors import UsageError

TIME_TYPES = ("date", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")


def form_choices(ws: Any, *, progress: Any) -> dict[str, Any]:
    """Worker: the datasets (with their schemas) and the model versions the form offers."""
    from mlops_desktop import registry
    from mlops_desktop.data import catalog

    datasets = {v.name: dict(v.schema) for v in catalog.list_datasets(ws.db)}
    store = registry.store(ws)
    versions = []
    for model in store.list_models():
        versions += [v.ref for v in store.list_versions(model.name)]
    return {"datasets": datasets, "versions": versions}


class LaunchForm(QWidget):
    """Emits `run_requested(spec)` with a checked BacktestSpec; shows progress and a Cancel button while one runs."""

    run_requested = Signal(object)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schemas: dict[str, dict[str, str]] = {}
        self.dataset = QComboBox()
        self.dataset.currentTextChanged.connect(self._dataset_changed)
        self.time_col = QComboBox()
        self.target = QComboBox()
        self.versions = QListWidget()
        self.versions.setMaximumHeight(96)
        # the style's own check boxes vanish on the dark palette: draw them from the palette's colours
        self.versions.setStyleSheet("QListWidget::indicator { width: 12px; height: 12px; border: 1px solid "
                                    "palette(text); border-radius: 2px; background: palette(base); }"
                                    "QListWidget::indicator:checked { background: palette(highlight); }")
        self.versions.setToolTip("the registered versions to replay as they are (no refit)")
        self.test_window = QLineEdit("7d")
        self.stride = QLineEdit("")
        self.stride.setPlaceholderText("= test window")
        self.train_window = QLineEdit("")
        self.train_window.setPlaceholderText("expanding")
        self.gap = QLineEdit("")
        self.gap.setPlaceholderText("none")
        for edit in (self.test_window, self.stride, self.train_window, self.gap):
            edit.setToolTip("7d, 12h, 30m, 90s, 2w, 500rows, or a number in the time column's unit")
        self.recipe = QLineEdit("")
        self.recipe.setPlaceholderText("e.g. sklearn.linear_model.LogisticRegression:max_iter=300")
        self.recipe.setToolTip("walk-forward: a scikit-learn estimator refitted on each train window")
        self.refit_every = QSpinBox()
        self.refit_every.setRange(1, 1000)
        self.refit_every.setValue(1)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Dataset", self.dataset)
        form.addRow("Time column", self.time_col)
        form.addRow("Target", self.target)
        form.addRow("Versions", self.versions)
        lengths = QHBoxLayout()
        for label, edit in (("test", self.test_window), ("stride", self.stride)):
            lengths.addWidget(QLabel(label))
            lengths.addWidget(edit, 1)
        form.addRow("Windows", lengths)
        train = QHBoxLayout()
        for label, edit in (("train", self.train_window), ("gap", self.gap)):
            train.addWidget(QLabel(label))
            train.addWidget(edit, 1)
        form.addRow("", train)
        refit = QHBoxLayout()
        refit.addWidget(self.recipe, 1)
        refit.addWidget(QLabel("every"))
        refit.addWidget(self.refit_every)
        form.addRow("Refit", refit)
        self.run_button = QPushButton("Run back-test")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(lambda: self.request_run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self.cancel_requested.emit())
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setVisible(False)
        self.message = QLabel("")
        self.message.setObjectName("muted")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

    # ------------------------------------------------------------------------------------------------ choices
    def set_choices(self, choices: dict[str, Any]) -> None:
        current = self.dataset.currentText()
        checked = set(self.checked_versions())
        self.schemas = choices.get("datasets", {})
        self.dataset.blockSignals(True)
        self.dataset.clear()
        self.dataset.addItems(sorted(self.schemas))
        if current in self.schemas:
            self.dataset.setCurrentText(current)
        self.dataset.blockSignals(False)
        self._dataset_changed(self.dataset.currentText())
        self.versions.clear()
        for ref in choices.get("versions", []):
            item = QListWidgetItem(ref)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if ref in checked else Qt.CheckState.Unchecked)
            self.versions.addItem(item)
        if not self.schemas:
            self.message.setText("No datasets yet: ingest a time-ordered table first (Data ▸ Ingest).")

    def _dataset_changed(self, name: str) -> None:
        schema = self.schemas.get(name, {})
        times = [c for c, t in schema.items() if t.startswith("datetime") or t in TIME_TYPES]
        self.time_col.clear()
        self.time_col.addItems(times)
        datetimes = [c for c in times if schema[c].startswith("datetime") or schema[c] == "date"]
        if datetimes:
            self.time_col.setCurrentText(datetimes[0])
        self.target.clear()
        self.target.addItem("(from the versions' runs)", None)
        for column in schema:
            self.target.addItem(column, column)

    def checked_versions(self) -> list[str]:
        out = []
        for i in range(self.versions.count()):
            item = self.versions.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.text())
        return out

    def check_versions(self, refs: list[str]) -> None:
        for i in range(self.versions.count()):
            item = self.versions.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in refs else Qt.CheckState.Unchecked)

    # ------------------------------------------------------------------------------------------------ spec
    def spec(self) -> Any:
        """The BacktestSpec the fields describe; UsageError names the field that is wrong."""
        from mlops_desktop.backtest.api import BacktestSpec
        from mlops_desktop.backtest.refit import parse_recipe
        from mlops_desktop.backtest.windows import parse_length

        dataset = self.dataset.currentText().strip()
        if not dataset:
            raise UsageError("choose a dataset")
        time_col = self.time_col.currentText().strip()
        if not time_col:
            raise UsageError(f"{dataset} has no date, time or number column to order its rows by")
        versions = self.checked_versions()
        recipe = self.recipe.text().strip() or None
        if not versions and not recipe:
            raise UsageError("tick the versions to replay, or give a recipe to refit walk-forward")
        test = self.test_window.text().strip()
        parse_length(test, "test window")
        parse_length(self.stride.text().strip() or None, "stride")
        parse_length(self.train_window.text().strip() or None, "train window")
        parse_length(self.gap.text().strip() or None, "gap", allow_zero=True)
        if recipe:
            parse_recipe(recipe)
        return BacktestSpec(dataset=dataset, time_col=time_col, versions=versions, test_window=test,
                            stride=self.stride.text().strip() or test,
                            train_window=self.train_window.text().strip() or None,
                            gap=self.gap.text().strip() or None,
                            refit_every=self.refit_every.value() if recipe else None, recipe=recipe,
                            target=self.target.currentData())

    def request_run(self) -> None:
        try:
            spec = self.spec()
        except UsageError as exc:
            self.message.setText(str(exc))
            return
        self.message.setText("")
        self.run_requested.emit(spec)

    # ------------------------------------------------------------------------------------------------ running
    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        if running:
            self.progress.setValue(0)

    def show_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.message.setText(message)
