"""The run detail panel: attributes, notes, params, editable tags, metric summary, artifacts and dataset inputs."""

from __future__ import annotations

import html
import shutil
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.runs_model import is_stale, last_update, run_duration
from mlops_desktop.gui.theme import status_color
from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.textfmt import fmt_duration, fmt_number
from mlops_desktop.tracking.entities import Run


def load_detail(store: Any, uuid: str, *, progress: Any = None) -> dict[str, Any]:
    """Worker: everything the panel shows about one run."""
    run = store.get_run(uuid)
    exp = store.get_experiment(run.experiment_id)
    return {"run": run, "experiment": exp.name, "artifacts": store.list_artifacts(uuid),
            "inputs": store.list_inputs(uuid)}


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setDefaultSectionSize(24)
    return table


def _item(text: str, editable: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
    if editable:
        flags |= Qt.ItemFlag.ItemIsEditable
    item.setFlags(flags)
    return item


class RunDetail(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.run: Run | None = None
        self.artifacts: list[Any] = []
        self._filling = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        self.header = QLabel("Select a run to see its details.")
        self.header.setObjectName("heading")
        self.header.setTextFormat(Qt.TextFormat.PlainText)  # names come from training code: never rich text
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.header)
        self.failure = FailureBox()
        outer.addWidget(self.failure)
        split = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(split, 1)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 8, 0)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.fields: dict[str, QLabel] = {}
        for key, label in (("status", "Status"), ("experiment", "Experiment"), ("uuid", "Run id"),
                           ("started", "Started"), ("duration", "Duration"), ("host", "Host"), ("user", "User"),
                           ("command", "Command"), ("git", "Git commit"), ("parent", "Parent run"),
                           ("inputs", "Datasets")):
            value = QLabel("")
            value.setTextFormat(Qt.TextFormat.RichText if key == "parent" else Qt.TextFormat.PlainText)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            self.fields[key] = value
            form.addRow(label, value)
        self.fields["parent"].setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.fields["parent"].linkActivated.connect(lambda uuid: self.ctx.navigate("experiments", run_uuid=uuid))
        left_layout.addLayout(form)
        left_layout.addWidget(QLabel("Notes"))
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes about this run…")
        self.notes.setMaximumHeight(90)
        left_layout.addWidget(self.notes)
        self.save_notes = QPushButton("Save notes")
        self.save_notes.clicked.connect(self._save_notes)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.save_notes)
        left_layout.addLayout(row)
        left_layout.addStretch(1)
        split.addWidget(left)

        self.tabs = QTabWidget()
        self.metrics = _table(["Metric", "Last", "Min", "Max", "Points", "Last step"])
        self.params = _table(["Param", "Value"])
        tags_box = QWidget()
        tags_layout = QVBoxLayout(tags_box)
        tags_layout.setContentsMargins(0, 0, 0, 0)
        self.tags = _table(["Tag", "Value"])
        self.tags.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.tags.itemChanged.connect(self._tag_edited)
        tag_buttons = QHBoxLayout()
        add_tag = QPushButton("Add tag")
        add_tag.clicked.connect(self._add_tag_row)
        del_tag = QPushButton("Remove tag")
        del_tag.clicked.connect(self._remove_tag)
        tag_buttons.addWidget(add_tag)
        tag_buttons.addWidget(del_tag)
        tag_buttons.addStretch(1)
        tags_layout.addWidget(self.tags)
        tags_layout.addLayout(tag_buttons)
        art_box = QWidget()
        art_layout = QVBoxLayout(art_box)
        art_layout.setContentsMargins(0, 0, 0, 0)
        self.artifacts_table = _table(["Artifact", "Size"])
        art_buttons = QHBoxLayout()
        self.open_artifact = QPushButton("Open")
        self.open_artifact.clicked.connect(self._open_artifact)
        self.export_artifact = QPushButton("Export…")
        self.export_artifact.clicked.connect(self._export_artifact)
        art_buttons.addWidget(self.open_artifact)
        art_buttons.addWidget(self.export_artifact)
        art_buttons.addStretch(1)
        art_layout.addWidget(self.artifacts_table)
        art_layout.addLayout(art_buttons)
        self.tabs.addTab(self.metrics, "Metrics")
        self.tabs.addTab(self.params, "Params")
        self.tabs.addTab(tags_box, "Tags")
        self.tabs.addTab(art_box, "Artifacts")
        split.addWidget(self.tabs)
        split.setSizes([380, 620])
        self.splitter = split

    # -- loading ---------------------------------------------------------------------------------------------
    def show_run(self, uuid: str | None) -> None:
        if uuid is None:
            self.run = None
            self.header.setText("Select a run to see its details.")
            self.failure.show_run(None)
            return
        self.ctx.tasks.submit(load_detail, self.ctx.workspace.tracking, uuid, title="Load run",
                              key=f"_detail_{id(self)}", quiet=True, owner=self, on_done=self._fill)

    def reload(self) -> None:
        if self.run is not None:
            self.show_run(self.run.uuid)

    def _fill(self, detail: dict[str, Any]) -> None:
        run: Run = detail["run"]
        same_run = self.run is not None and self.run.uuid == run.uuid
        self.run = run
        self._filling = True
        self.header.setText(run.name or run.uuid[:8])
        self.failure.show_run(run)
        f = self.fields
        f["status"].setText(run.status)
        f["status"].setStyleSheet(f"color: {status_color(run.status).name()}; font-weight: 600;")
        f["experiment"].setText(detail["experiment"])
        f["uuid"].setText(run.uuid)
        f["started"].setText(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.start_time)))
        duration = fmt_duration(run_duration(run))
        if is_stale(run):
            quiet = time.time() - last_update(run)
            duration += (f" (no update since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last_update(run)))}"
                         f", {fmt_duration(quiet)} ago)")
            f["status"].setText("running, no update since "
                                + time.strftime("%H:%M:%S", time.localtime(last_update(run))))
        elif run.status == "running":
            duration += " (running)"
        f["duration"].setText(duration)
        f["host"].setText(run.host)
        f["user"].setText(run.user)
        f["command"].setText(run.command or "—")
        git = run.git_commit or "—"
        if run.git_commit and run.git_dirty:
            git += " (uncommitted changes)"
        f["git"].setText(git)
        parent = html.escape(run.parent_uuid or "", quote=True)
        f["parent"].setText(f'<a href="{parent}">{parent[:12]}</a>' if parent else "—")
        f["inputs"].setText(", ".join(f"{i.dataset}@{i.version}" for i in detail["inputs"]) or "—")
        if not same_run or not self.notes.document().isModified():
            self.notes.setPlainText(run.notes)
            self.notes.document().setModified(False)
        self.metrics.setRowCount(0)
        for key, s in sorted(run.metrics.items()):
            r = self.metrics.rowCount()
            self.metrics.insertRow(r)
            for c, text in enumerate((key, fmt_number(s.last), fmt_number(s.min), fmt_number(s.max), str(s.count),
                                      str(s.last_step))):
                item = _item(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.metrics.setItem(r, c, item)
        self.params.setRowCount(0)
        for key, value in sorted(run.params.items()):
            r = self.params.rowCount()
            self.params.insertRow(r)
            self.params.setItem(r, 0, _item(key))
            self.params.setItem(r, 1, _item(value))
        self.tags.setRowCount(0)
        for key, value in sorted(run.tags.items()):
            r = self.tags.rowCount()
            self.tags.insertRow(r)
            self.tags.setItem(r, 0, _item(key))
            self.tags.setItem(r, 1, _item(value, editable=True))
        self.artifacts = detail["artifacts"]
        self.artifacts_table.setRowCount(0)
        for art in self.artifacts:
            r = self.artifacts_table.rowCount()
            self.artifacts_table.insertRow(r)
            self.artifacts_table.setItem(r, 0, _item(art.path))
            self.artifacts_table.setItem(r, 1, _item(_size(art.size)))
        for table in (self.metrics, self.params, self.tags, self.artifacts_table):
            table.resizeColumnsToContents()
        self.tabs.setTabText(3, f"Artifacts ({len(self.artifacts)})")
        self._filling = False

    # -- editing ---------------------------------------------------------------------------------------------
    def _write(self, title: str, fn: Any, *args: Any) -> None:
        def job(*a: Any, progress: Any) -> None:
            fn(*a)

        self.ctx.tasks.submit(job, *args, title=title, quiet=True, owner=self, on_done=lambda _r: self.reload())

    def _save_notes(self) -> None:
        if self.run is None:
            return
        self.notes.document().setModified(False)
        self._write("Save notes", lambda u, n: self.ctx.workspace.tracking.update_run(u, notes=n),
                    self.run.uuid, self.notes.toPlainText())

    def _tag_edited(self, item: QTableWidgetItem) -> None:
        if self._filling or self.run is None:
            return
        row = item.row()
        key_item, value_item = self.tags.item(row, 0), self.tags.item(row, 1)
        key = key_item.text().strip() if key_item else ""
        value = value_item.text() if value_item else ""
        if not key:
            return
        self._write("Set tag", lambda u, k, v: self.ctx.workspace.tracking.set_tags(u, {k: v}),
                    self.run.uuid, key, value)

    def _add_tag_row(self) -> None:
        self._filling = True
        r = self.tags.rowCount()
        self.tags.insertRow(r)
        self.tags.setItem(r, 0, _item("", editable=True))
        self.tags.setItem(r, 1, _item("", editable=True))
        self._filling = False
        self.tabs.setCurrentIndex(2)
        item = self.tags.item(r, 0)
        if item is not None:
            self.tags.editItem(item)

    def _remove_tag(self) -> None:
        row = self.tags.currentRow()
        if self.run is None or row < 0 or self.tags.item(row, 0) is None:
            return
        key = self.tags.item(row, 0).text()
        self._write("Remove tag", self.ctx.workspace.tracking.delete_tag, self.run.uuid, key)

    def _selected_artifact(self) -> Any | None:
        row = self.artifacts_table.currentRow()
        return self.artifacts[row] if 0 <= row < len(self.artifacts) else None

    def _open_artifact(self) -> None:
        art = self._selected_artifact()
        if art is None or self.run is None:
            return
        try:
            target = open_copy_path(self.ctx.workspace.root / "cache" / "open" / self.run.uuid[:12], art.path)
        except ValueError as exc:
            self.ctx.notifications.error("Not opened", str(exc))
            return
        blob = self.ctx.workspace.tracking.artifact_file(self.run.uuid, art.path)
        # blobs are named by digest: give the copy its real name so the desktop picks the right program
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blob, target)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))

    def _export_artifact(self) -> None:
        art = self._selected_artifact()
        if art is None or self.run is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export artifact", str(Path.home() / Path(art.path).name))
        if not path:
            return
        blob = self.ctx.workspace.tracking.artifact_file(self.run.uuid, art.path)
        self._write(f"Export {art.path}", shutil.copyfile, blob, path)


ERROR_TAGS = ("mlops.error", "mlops.error.type", "mlops.error.message", "mlops.error.traceback",
              "mlops.error.exit_code", "mlops.error.output_tail")


def failure_summary(run: Run) -> tuple[str, str, str] | None:
    """(headline, message, details) saying why a run did not finish, from the mlops.error.* tags (the tracking
    client writes type, message and traceback on an exception; the job executor the exit code and the output's
    last lines); None for a run that finished or still runs."""
    tags = run.tags
    if run.status in ("finished", "running") and not tags.get("mlops.error"):
        return None
    kind = tags.get("mlops.error.type", "")
    message = tags.get("mlops.error.message", "")
    summary = tags.get("mlops.error", "")
    code = tags.get("mlops.error.exit_code", "")
    if run.status == "killed":
        headline = "Stopped by a signal (Ctrl+C, SIGTERM or a cancelled job)"
    elif run.status == "lost":
        headline = "Lost: its process ended without ending the run (killed, crashed or the machine restarted)"
    else:
        headline = "Failed"
    if kind:
        headline += f": {kind}"
    if code:
        headline += f" (exit code {code})"
    message = message or summary
    if not message and run.status == "failed":
        message = ("It recorded no reason: runs record the exception when they fail inside "
                   "mlops_desktop.tracking.start_run, and jobs their exit code and last output.")
    details = []
    if tags.get("mlops.error.traceback"):
        details.append("Traceback (last frames):\n" + tags["mlops.error.traceback"].rstrip())
    if tags.get("mlops.error.output_tail"):
        details.append("Last lines of the output:\n" + tags["mlops.error.output_tail"].rstrip())
    return headline, message, "\n\n".join(details)


class FailureBox(QFrame):
    """Why a run failed, at the top of its details: the exception, its message, the last frames and output."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failure")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.headline = QLabel("")
        self.headline.setObjectName("error")
        self.headline.setTextFormat(Qt.TextFormat.PlainText)
        self.headline.setWordWrap(True)
        font = self.headline.font()
        font.setBold(True)
        self.headline.setFont(font)
        self.message = QLabel("")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setMaximumHeight(150)
        mono = self.details.font()
        mono.setFamily("monospace")
        mono.setStyleHint(mono.StyleHint.Monospace)
        self.details.setFont(mono)
        layout.addWidget(self.headline)
        layout.addWidget(self.message)
        layout.addWidget(self.details)
        self.hide()

    def show_run(self, run: Run | None) -> None:
        summary = failure_summary(run) if run is not None else None
        if summary is None:
            self.hide()
            return
        headline, message, details = summary
        self.headline.setText(headline)
        self.message.setText(message)
        self.message.setVisible(bool(message))
        self.details.setPlainText(details)
        self.details.setVisible(bool(details))
        if details:   # the end of a traceback or output is what says most
            self.details.verticalScrollBar().setValue(self.details.verticalScrollBar().maximum())
        self.show()


# Artifacts come from training code; opening these with the desktop's default handler could run them.
RUNNABLE_SUFFIXES = {".desktop", ".sh", ".bash", ".zsh", ".exe", ".bat", ".cmd", ".com", ".msi", ".app", ".jar",
                     ".py", ".pyw", ".appimage", ".run", ".bin", ".command", ".ps1", ".vbs", ".scr", ".lnk"}


def open_copy_path(cache_dir: Path, artifact_path: str) -> Path:
    """Where to put a copy of an artifact before opening it; refuses paths that leave ``cache_dir`` and files the
    desktop would execute rather than show (export those and open them deliberately)."""
    target = (cache_dir / artifact_path).resolve()
    if not target.is_relative_to(cache_dir.resolve()):
        raise ValueError(f"artifact path {artifact_path!r} points outside the run's folder")
    if target.suffix.lower() in RUNNABLE_SUFFIXES:
        raise ValueError(f"{artifact_path} could run as a program when opened; use Export… and open it yourself")
    return target


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
