"""The Jobs area: jobs here and on SSH hosts, kept moving by a background queue tick, with a live log tail and cancel."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.execution.models import Job
from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.base import AppContext, AreaView

TICK_MS = 500
HIDDEN_TICK_MS = 2000
TAIL_BYTES = 256 * 1024
MAX_LOG_LINES = 20_000
COLUMNS = ["ID", "State", "Host", "GPUs", "Name", "Run", "Exit", "Duration"]
STATE_COLORS = {"running": "#2f81f7", "starting": "#2f81f7", "succeeded": "#3fb950", "failed": "#f85149",
                "lost": "#d29922", "cancelled": "#8b949e", "queued": "#8b949e"}


@dataclass
class TickOutcome:
    jobs: list[Job]
    errors: list[str] = field(default_factory=list)
    log_job: int | None = None
    log_data: bytes = b""
    log_offset: int = 0


def read_log(ws: Any, job_id: int, offset: int) -> tuple[bytes, int]:
    """New bytes of a job's local log (for remote jobs, the copy streamed so far) from `offset`; a fresh read
    (offset < 0) starts at the last TAIL_BYTES, on a line boundary."""
    from mlops_desktop.execution.backends import local_job_dir
    from mlops_desktop.execution.launch import LOG

    path = Path(local_job_dir(ws, job_id)) / LOG
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            if offset < 0:
                start = max(0, size - TAIL_BYTES)
                fh.seek(start)
                data = fh.read()
                if start > 0 and b"\n" in data:
                    data = data[data.index(b"\n") + 1:]
                return data, size
            fh.seek(offset)
            data = fh.read()
            return data, offset + len(data)
    except FileNotFoundError:
        return b"", max(offset, 0)


def tick_jobs(executor: Any, lock: threading.Lock, log_job: int | None, log_offset: int, *,
              progress: Any) -> TickOutcome:
    """Worker: advance the queue, stream remote output, and read the selected job's new log bytes."""
    with lock:
        result = executor.tick()
        jobs = executor.jobs.list(limit=1000)
    outcome = TickOutcome(jobs, result.errors, log_job)
    if log_job is not None:
        outcome.log_data, outcome.log_offset = read_log(executor.ws, log_job, log_offset)
    return outcome


def cancel_job(executor: Any, lock: threading.Lock, job_id: int, *, progress: Any) -> Job:
    progress.update(0.1, f"cancelling job {job_id}")
    with lock:
        return executor.cancel(job_id)


class JobsModel(RowTableModel):
    columns = tuple(COLUMNS)

    @property
    def jobs(self) -> list[Job]:
        return self.rows

    def set_jobs(self, jobs: list[Job]) -> None:
        if [(j.id, j.state, j.exit_code, j.run_uuid, j.gpu_ids) for j in jobs] == \
                [(j.id, j.state, j.exit_code, j.run_uuid, j.gpu_ids) for j in self.rows]:
            self.rows = jobs  # same rows: only durations moved
            if jobs:
                self.dataChanged.emit(self.index(0, 7), self.index(len(jobs) - 1, 7))
            return
        self.beginResetModel()
        self.rows = jobs
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        j = self.jobs[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return QColor(STATE_COLORS.get(j.state, "#8b949e"))
        if role == Qt.ItemDataRole.ToolTipRole:
            return j.error or None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        from mlops_desktop.textfmt import fmt_duration

        values = [j.id, j.state, j.host, j.gpu_ids or (f"{j.gpus_requested}" if j.gpus_requested else ""), j.name,
                  (j.run_uuid or "")[:8], "" if j.exit_code is None else j.exit_code, fmt_duration(j.duration)]
        return str(values[col])


class JobsView(AreaView):
    area_id = "jobs"
    title = "Jobs"
    icon_name = "jobs"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._lock = threading.Lock()
        self._executor_box: list[Any] = [None]  # shared with the destroyed handler, which outlives self
        self._ticking = False
        self._log_job: int | None = None
        self._log_offset = -1
        self._posted_errors: set[str] = set()
        self.model = JobsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(MAX_LOG_LINES)
        self.log.setFont(QFont("monospace"))
        self.log.setPlaceholderText("Select a job to follow its output")
        self.log_title = QLabel("Output")
        self.log_title.setObjectName("heading")
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.clicked.connect(lambda: self.cancel_selected())
        self.open_run_button = QPushButton("Open run")
        self.open_run_button.clicked.connect(self.open_run)
        self.status = QLabel("")
        self.status.setObjectName("muted")
        bar = QHBoxLayout()
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.open_run_button)
        bar.addStretch(1)
        bar.addWidget(self.status)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.log_title)
        lower_layout.addWidget(self.log, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes([300, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        # Replaceable in tests: asks the user a yes/no question.
        self.confirm = lambda title, text: QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
        ctx.add_action("Jobs: cancel the selected job", lambda: self.cancel_selected())
        self.destroyed.connect(lambda *_a, box=self._executor_box, lock=self._lock: _close_on_exit(box, lock))
        self._update_buttons()
        self.tick()

    @property
    def executor(self) -> Any:
        if self._executor_box[0] is None:
            from mlops_desktop.execution import Executor

            self._executor_box[0] = Executor(self.ctx.workspace)
        return self._executor_box[0]

    def refresh(self) -> None:
        self.tick()

    def on_workspace_changed(self) -> None:
        old, self._executor_box[0] = self._executor_box[0], None
        if old is not None:
            lock = self._lock
            self.ctx.tasks.submit(lambda *, progress: _close(old, lock), title="Close SSH connections", quiet=True)
        self._log_job, self._log_offset = None, -1
        self.log.clear()
        self.model.set_jobs([])
        self.tick()

    def showEvent(self, event: Any) -> None:  # noqa: N802
        self.timer.setInterval(TICK_MS)
        super().showEvent(event)

    def hideEvent(self, event: Any) -> None:  # noqa: N802
        self.timer.setInterval(HIDDEN_TICK_MS)  # the queue keeps moving, more slowly, while another area shows
        super().hideEvent(event)

    # ------------------------------------------------------------------------------------------------ tick
    def tick(self) -> None:
        if self._ticking:
            return
        self._ticking = True
        self.ctx.tasks.submit(tick_jobs, self.executor, self._lock, self._log_job, self._log_offset,
                              title="Jobs", quiet=True, owner=self, on_done=self._ticked, on_error=self._tick_failed)

    def _tick_failed(self, _exc: BaseException) -> None:
        self._ticking = False  # the error itself went to the notification channel

    def _ticked(self, outcome: TickOutcome) -> None:
        self._ticking = False
        selected = self.selected_job()
        first_fill = not self.model.jobs and outcome.jobs and selected is None
        self.model.set_jobs(outcome.jobs)
        if first_fill:
            self.table.selectRow(0)  # the newest job: its output shows at once
        elif selected is not None:
            for row, job in enumerate(outcome.jobs):
                if job.id == selected.id:
                    if self.table.currentIndex().row() != row:
                        self.table.selectRow(row)
                    break
        if outcome.log_job == self._log_job and outcome.log_job is not None:
            if self._log_offset < 0:
                self.log.clear()
            if outcome.log_data:
                self.log.moveCursor(self.log.textCursor().MoveOperation.End)
                self.log.insertPlainText(outcome.log_data.decode("utf-8", "replace"))
                self.log.ensureCursorVisible()
            self._log_offset = outcome.log_offset
        for err in outcome.errors:
            if err not in self._posted_errors:
                self._posted_errors.add(err)
                self.ctx.notifications.warning(err.splitlines()[0])
        running = sum(1 for j in outcome.jobs if j.state in ("starting", "running"))
        queued = sum(1 for j in outcome.jobs if j.state == "queued")
        self.status.setText(f"{running} running · {queued} queued")
        self._update_buttons()

    # ------------------------------------------------------------------------------------------------ selection
    def selected_job(self) -> Job | None:
        index = self.table.currentIndex()
        if not index.isValid() or index.row() >= len(self.model.jobs):
            return None
        return self.model.jobs[index.row()]

    def select_job(self, job_id: int) -> None:
        for row, job in enumerate(self.model.jobs):
            if job.id == job_id:
                self.table.selectRow(row)
                return

    def show_item(self, job_id: int | None = None, **_kw: Any) -> None:
        if job_id is not None:
            self.select_job(job_id)

    def _selection_changed(self) -> None:
        job = self.selected_job()
        new = job.id if job else None
        if new != self._log_job:
            self._log_job, self._log_offset = new, -1
            self.log.clear()
            self.log_title.setText(f"Output of job {new}: {job.name}" if job else "Output")
            self.tick()
        self._update_buttons()

    def _update_buttons(self) -> None:
        job = self.selected_job()
        self.cancel_button.setEnabled(job is not None and not job.is_final)
        self.open_run_button.setEnabled(job is not None and bool(job.run_uuid))

    # ------------------------------------------------------------------------------------------------ actions
    def cancel_selected(self, ask: bool = True) -> None:
        job = self.selected_job()
        if job is None or job.is_final:
            return
        if ask and not self.confirm("Cancel job", f"Cancel job {job.id} ({job.name})? It gets SIGTERM, then "
                                                  f"SIGKILL after {self.executor.grace_s:.0f} s."):
            return
        self.status.setText(f"cancelling job {job.id}…")
        self.ctx.tasks.submit(cancel_job, self.executor, self._lock, job.id, title=f"Cancel job {job.id}",
                              owner=self, on_done=lambda _j: self.tick())

    def open_run(self) -> None:
        job = self.selected_job()
        if job is not None and job.run_uuid:
            self.ctx.navigate("experiments", run_uuid=job.run_uuid)


def _close(executor: Any, lock: threading.Lock) -> None:
    with lock:
        executor.close()


def _close_on_exit(box: list[Any], lock: threading.Lock) -> None:
    """Close SSH connections when the view goes; never wait for a running tick (its sockets die with it)."""
    executor, box[0] = box[0], None
    if executor is not None and lock.acquire(timeout=0.05):
        try:
            executor.close()
        finally:
            lock.release()


AREA = JobsView
