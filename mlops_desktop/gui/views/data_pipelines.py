"""The pipeline panel: a project's mlops.toml steps with their inputs, outputs and last outcome; run with progress."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.gui.views.data_panels import make_table, muted
from mlops_desktop.gui.views.data_table import RowsModel

SETTING = "data/project"


def _describe(ws: Any, folder: str, *, progress: Any) -> list[tuple[str, ...]]:
    """Steps in run order with what they read and write and the output's latest version."""
    from pathlib import Path

    from mlops_desktop.data import catalog
    from mlops_desktop.data.pipeline import plan
    from mlops_desktop.data.project import load_project

    project = load_project(Path(folder))
    known = {v.name for v in catalog.list_datasets(ws.db)}
    rows: list[tuple[str, ...]] = []
    for step, refs in plan(project, None, known):
        latest = catalog.latest(ws.db, step.output)
        rows.append((step.qualified, "sql" if step.sql else f"python {step.python}", ", ".join(refs),
                     step.output, latest.ref if latest else "-",
                     (latest.producer_step or latest.mode) if latest else "never built"))
    return rows


def _run(ws: Any, folder: str, target: str | None, force: bool, *, progress: Any) -> Any:
    from pathlib import Path

    from mlops_desktop.data.pipeline import run_pipelines
    from mlops_desktop.data.project import load_project

    return run_pipelines(ws, load_project(Path(folder)), target, force=force, progress=progress)


class PipelinesPanel(QWidget):
    """Declared in a project's mlops.toml; each step makes a dataset version; unchanged steps are skipped."""

    ran = Signal(list)  # StepOutcome list

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.task: Any = None
        self.outcomes: dict[str, Any] = {}
        self.folder = QLineEdit(str(ctx.settings.value(SETTING, "") or ""))
        self.folder.setPlaceholderText("project folder holding mlops.toml")
        self.folder.returnPressed.connect(self.reload)
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse())
        self.force = QCheckBox("rebuild unchanged steps")
        self.run_all = QPushButton("Run all")
        self.run_all.clicked.connect(lambda: self.run(None))
        self.run_selected = QPushButton("Run selected step")
        self.run_selected.clicked.connect(lambda: self._run_selected())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.task.cancel() if self.task is not None else None)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status = muted()
        self.model = RowsModel(self)
        self.table = make_table(self.model)
        top = QHBoxLayout()
        top.addWidget(self.folder, 1)
        top.addWidget(browse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.force)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.run_selected)
        buttons.addWidget(self.run_all)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.rows: list[tuple[str, ...]] = []

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder (with mlops.toml)", self.folder.text())
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str) -> None:
        self.folder.setText(folder)
        self.ctx.settings.setValue(SETTING, folder)
        self.reload()

    def reload(self) -> None:
        folder = self.folder.text().strip()
        if not folder:
            self.status.setText("choose a project folder whose mlops.toml declares [pipelines.NAME.steps.STEP]")
            return
        self.ctx.tasks.submit(_describe, self.ctx.workspace, folder, title="Read pipelines", key="data-pipelines",
                              quiet=True, owner=self, on_done=self._on_steps,
                              on_error=lambda exc: self.status.setText(str(exc)))

    def _on_steps(self, rows: list[tuple[str, ...]]) -> None:
        self.rows = rows
        shown = []
        for row in rows:
            outcome = self.outcomes.get(row[0])
            last = f"{outcome.status} {outcome.message}".strip() if outcome else ""
            shown.append(row + (last,))
        self.model.set_rows(["step", "kind", "inputs", "output", "latest", "made by", "last run"], shown)
        self.table.resizeColumnsToContents()
        if self.task is None:  # after a run the status keeps its outcome
            self.status.setText(f"{len(rows)} steps in dependency order")

    def _run_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.run(self.rows[rows[0].row()][0])

    def run(self, target: str | None) -> None:
        folder = self.folder.text().strip()
        if not folder or (self.task is not None and self.task.running):
            return
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.task = self.ctx.tasks.submit(_run, self.ctx.workspace, folder, target, self.force.isChecked(),
                                          title="Run pipelines" if target is None else f"Run {target}",
                                          owner=self, on_done=self._on_ran, on_error=self._on_failed)
        self.task.progressed.connect(lambda f, m: (self.progress.setValue(int(f * 1000)), self.status.setText(m)))
        self.task.was_cancelled.connect(lambda: self._finish("cancelled; finished steps keep their versions"))

    def _on_ran(self, outcomes: list[Any]) -> None:
        self.outcomes.update({o.step: o for o in outcomes})
        failed = [o for o in outcomes if o.status in ("failed", "blocked")]
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        self._finish(summary + (f". First failure: {failed[0].message}" if failed else ""))
        if failed:
            self.ctx.notifications.error("Pipeline step failed", failed[0].message)
        self.ran.emit(outcomes)
        self.reload()

    def _on_failed(self, exc: BaseException) -> None:
        self._finish(f"not run: {exc}")

    def _finish(self, message: str) -> None:
        self.progress.hide()
        self.cancel_button.setEnabled(False)
        self.status.setText(message)
