"""The Jobs area: jobs here and on SSH hosts, kept moving by a background queue tick, with a live log tail and cancel."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QIcon, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.execution.models import Job
from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.data_panels import pad_cells

TICK_MS = 500
HIDDEN_TICK_MS = 2000
TAIL_BYTES = 256 * 1024
MAX_LOG_LINES = 20_000
COLUMNS = ["ID", "State", "Experiment", "Name", "Command", "Host", "GPUs", "Started", "Duration", "Exit", "Run"]
(C_ID, C_STATE, C_EXPERIMENT, C_NAME, C_COMMAND, C_HOST, C_GPUS, C_STARTED, C_DURATION, C_EXIT,
 C_RUN) = range(len(COLUMNS))
STATE_COLORS = {
    "light": {"running": "#0969da", "starting": "#0969da", "succeeded": "#1a7f37", "failed": "#cf222e",
              "lost": "#9a6700", "cancelled": "#6e7781", "queued": "#6e7781"},
    "dark": {"running": "#58a6ff", "starting": "#58a6ff", "succeeded": "#3fb950", "failed": "#f85149",
             "lost": "#d29922", "cancelled": "#8b949e", "queued": "#8b949e"},
}
LINK_COLORS = {"light": "#0969da", "dark": "#58a6ff"}


def state_color(state: str) -> QColor:
    from mlops_desktop.gui.theme import current_mode

    return QColor(STATE_COLORS[current_mode()].get(state, "#8b949e"))


_DOTS: dict[tuple[str, str], QIcon] = {}


def state_dot(state: str) -> QIcon:
    """A small filled circle in the state's colour (cached per theme and state)."""
    from mlops_desktop.gui.theme import current_mode

    key = (current_mode(), state)
    if key not in _DOTS:
        pixmap = QPixmap(20, 20)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(state_color(state))
        painter.drawEllipse(4, 4, 12, 12)
        painter.end()
        _DOTS[key] = QIcon(pixmap)
    return _DOTS[key]


def fmt_started(ts: float | None, now: float | None = None) -> str:
    """'14:03:12' today, 'Mar 02 14:03' this year, '2024-03-02' before."""
    if ts is None:
        return ""
    import time

    t, today = time.localtime(ts), time.localtime(now or time.time())
    if t[:3] == today[:3]:
        return time.strftime("%H:%M:%S", t)
    if t.tm_year == today.tm_year:
        return time.strftime("%b %d %H:%M", t)
    return time.strftime("%Y-%m-%d", t)


_PLAIN_ARG = re.compile(r"^[A-Za-z0-9_@%+=:,./{}\[\]-]+$")


def command_text(job: Job) -> str:
    """What the job runs, as one readable line: the interpreter shortened (recipes and scripts run the app's own),
    an argument quoted only when it must be, with the quote that reads best, and line breaks shown as ⏎."""
    argv = list(job.argv)
    if job.kind == "recipe" and "mlops_desktop.recipes" in argv:
        # python -u -m mlops_desktop.recipes NAME --param k=v ...  ->  recipe NAME k=v ...
        rest = argv[argv.index("mlops_desktop.recipes") + 1:]
        argv = ["recipe"] + [a for a in rest if a != "--param"]
    if argv and ("python" in Path(argv[0]).name):
        argv[0] = "python"
    if argv[1:2] == ["-u"]:
        del argv[1]

    def show(arg: str) -> str:
        arg = arg.replace("\n", " ⏎ ")
        if arg and _PLAIN_ARG.match(arg):
            return arg
        if "'" not in arg:
            return f"'{arg}'"
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'

    return " ".join(show(a) for a in argv)


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


def submit_jobs(executor: Any, lock: threading.Lock, request: Any, *, progress: Any) -> list[Job]:
    """Worker: the core call of `jobs submit` (one job per sweep point), then start what fits now."""
    progress.update(0.1, "submitting")
    with lock:
        jobs = executor.submit(request)
        progress.check()
        executor.start_ready()
        return [executor.jobs.get(j.id) for j in jobs]


def cancel_job(executor: Any, lock: threading.Lock, job_id: int, *, progress: Any) -> Job:
    progress.update(0.1, f"cancelling job {job_id}")
    with lock:
        return executor.cancel(job_id)


class JobsModel(RowTableModel):
    columns = tuple(COLUMNS)
    numeric_columns = frozenset({C_ID, C_GPUS, C_DURATION, C_EXIT})

    @property
    def jobs(self) -> list[Job]:
        return self.rows

    def set_jobs(self, jobs: list[Job]) -> None:
        if [(j.id, j.state, j.exit_code, j.run_uuid, j.gpu_ids, j.started_at) for j in jobs] == \
                [(j.id, j.state, j.exit_code, j.run_uuid, j.gpu_ids, j.started_at) for j in self.rows]:
            self.rows = jobs  # same rows: only durations moved
            if jobs:
                self.dataChanged.emit(self.index(0, C_DURATION), self.index(len(jobs) - 1, C_DURATION))
            return
        self.beginResetModel()
        self.rows = jobs
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        j = self.jobs[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(col)
        if col == C_STATE and role == Qt.ItemDataRole.ForegroundRole:
            return state_color(j.state)
        if col == C_STATE and role == Qt.ItemDataRole.DecorationRole:
            return state_dot(j.state)
        if col == C_RUN and role == Qt.ItemDataRole.ForegroundRole and j.run_uuid:
            from mlops_desktop.gui.theme import current_mode

            return QColor(LINK_COLORS[current_mode()])
        if col == C_RUN and role == Qt.ItemDataRole.FontRole and j.run_uuid:
            font = QFont()
            font.setUnderline(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(j, col)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        from mlops_desktop.textfmt import fmt_duration

        values = [j.id, j.state, j.experiment, j.name, command_text(j), j.host,
                  j.gpu_ids or (f"{j.gpus_requested}" if j.gpus_requested else ""), fmt_started(j.started_at),
                  fmt_duration(j.duration), "" if j.exit_code is None else j.exit_code, (j.run_uuid or "")[:8]]
        return str(values[col])

    def _tooltip(self, j: Job, col: int) -> str | None:
        from mlops_desktop.textfmt import fmt_time

        if col == C_RUN and j.run_uuid:
            return f"Open run {j.run_uuid} in Experiments"
        if col == C_COMMAND:
            return command_text(j)
        if col == C_STARTED:
            return (f"queued {fmt_time(j.created_at)}" + (f"\nstarted {fmt_time(j.started_at)}" if j.started_at else "")
                    + (f"\nended {fmt_time(j.ended_at)}" if j.ended_at else ""))
        if col == C_GPUS and j.gpus_requested:
            return f"asked for {j.gpus_requested} GPU(s)" + (f"; got GPU {j.gpu_ids}" if j.gpu_ids else "")
        return j.error or None


class JobsView(AreaView):
    area_id = "jobs"
    title = "Jobs"
    icon_name = "jobs"
    shortcuts = (("Ctrl+N", "New job…"), ("Enter", "Open the selected job's run"))

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._lock = threading.Lock()
        self._executor_box: list[Any] = [None]  # shared with the destroyed handler, which outlives self
        self._ticking = False
        self._log_job: int | None = None
        self._log_offset = -1
        self._posted_errors: set[str] = set()
        self._pending_select: int | None = None
        self.model = JobsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setMouseTracking(True)
        self.table.verticalHeader().hide()
        pad_cells(self.table)
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(C_COMMAND, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        self._sized = False
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        self.table.clicked.connect(self._cell_clicked)
        self.table.activated.connect(lambda _index: self.open_run())   # Enter or double-click on a row
        self.table.entered.connect(self._cell_hovered)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(MAX_LOG_LINES)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.log.setFont(font)
        self.log.setPlaceholderText("Select a job to follow its output")
        self.log_title = QLabel("Output")
        self.log_title.setObjectName("heading")
        self.new_button = QPushButton("New job…")
        self.new_button.setToolTip("Run a recipe, a script or a command here or on an SSH host (Ctrl+N)")
        self.new_button.clicked.connect(lambda: self.open_new_job())
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.clicked.connect(lambda: self.cancel_selected())
        self.open_run_button = QPushButton("Open run")
        self.open_run_button.clicked.connect(lambda: self.open_run())
        self.status = QLabel("")
        self.status.setObjectName("muted")
        bar = QHBoxLayout()
        bar.addWidget(self.new_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.open_run_button)
        bar.addStretch(1)
        bar.addWidget(self.status)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.log_title)
        lower_layout.addWidget(self.log, 1)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.table)
        self.split.addWidget(lower)
        self.split.setSizes([300, 400])
        self.empty = self._empty_state()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.split)
        self.pages.addWidget(self.empty)
        self.pages.setCurrentWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.pages, 1)
        self.new_shortcut = QShortcut(QKeySequence.StandardKey.New, self)
        self.new_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)  # only while Jobs is shown: Qt skips
        # the shortcuts of hidden widgets
        self.new_shortcut.activated.connect(lambda: self.open_new_job())
        self.new_job_dialog: Any = None
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        # Replaceable in tests: asks the user a yes/no question.
        self.confirm = lambda title, text: QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes
        ctx.add_action("Jobs: cancel the selected job", lambda: self.cancel_selected())
        ctx.add_action("New job…", lambda: (ctx.navigate("jobs"), self.open_new_job()))
        self.destroyed.connect(lambda *_a, box=self._executor_box, lock=self._lock: _close_on_exit(box, lock))
        self._update_buttons()
        self.tick()

    def _empty_state(self) -> QWidget:
        page = QWidget()
        title = QLabel("No jobs yet")
        title.setObjectName("heading")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel("A job runs a built-in training recipe, a Python script or any command, here or on an SSH "
                      "host, with the GPUs it needs; each job is a tracked run, and a sweep makes one job per "
                      "parameter set.")
        text.setObjectName("muted")
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setMinimumWidth(420)
        text.setMaximumWidth(600)
        text_row = QHBoxLayout()
        text_row.addStretch(1)
        text_row.addWidget(text, 4)
        text_row.addStretch(1)
        start = QPushButton("New job…")
        start.clicked.connect(lambda: self.open_new_job())
        cli = QLabel("or from a terminal:  mlops-desktop jobs submit --recipe sklearn --param data=lake:NAME …")
        cli.setObjectName("muted")
        cli.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        cli.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_button = start
        layout = QVBoxLayout(page)
        layout.addStretch(2)
        layout.addWidget(title)
        layout.addLayout(text_row)
        layout.addSpacing(8)
        layout.addWidget(start, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(4)
        layout.addWidget(cli)
        layout.addStretch(3)
        return page

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
        self.pages.setCurrentWidget(self.split if outcome.jobs else self.empty)
        if outcome.jobs and not self._sized:
            self._size_columns()
        pending, self._pending_select = self._pending_select, None
        if pending is not None and any(j.id == pending for j in outcome.jobs):
            self.select_job(pending)  # the job just submitted: its output shows at once
        elif first_fill:
            # the newest job that has output (a running one first): its log shows at once
            live = [r for r, j in enumerate(outcome.jobs) if j.state in ("running", "starting")]
            started = [r for r, j in enumerate(outcome.jobs) if j.started_at is not None]
            self.table.selectRow((live or started or [0])[0])
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
            self.log.setPlaceholderText(
                "Select a job to follow its output" if job is None else
                f"Job {job.id} waits in the queue: its output shows here once it starts" if job.state == "queued"
                else f"Job {job.id} printed nothing")
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

    def open_run(self, job: Job | None = None) -> None:
        job = job or self.selected_job()
        if job is not None and job.run_uuid:
            self.ctx.navigate("experiments", run_uuid=job.run_uuid)

    def _cell_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and index.column() == C_RUN and index.row() < len(self.model.jobs):
            self.open_run(self.model.jobs[index.row()])  # the Run cell is a link

    def _cell_hovered(self, index: QModelIndex) -> None:
        link = (index.isValid() and index.column() == C_RUN and index.row() < len(self.model.jobs)
                and bool(self.model.jobs[index.row()].run_uuid))
        self.table.viewport().setCursor(Qt.CursorShape.PointingHandCursor if link else Qt.CursorShape.ArrowCursor)

    def _size_columns(self) -> None:
        """Fit the columns to the first rows once; the command takes what is left (the user's widths then stay)."""
        self._sized = True
        self.table.resizeColumnsToContents()
        for col, most in ((C_EXPERIMENT, 180), (C_NAME, 280), (C_HOST, 140)):
            self.table.setColumnWidth(col, min(self.table.columnWidth(col) + 12, most))
        widest_state = max(self.fontMetrics().horizontalAdvance(s) for s in STATE_COLORS["light"])
        self.table.setColumnWidth(C_STATE, widest_state + 44)  # any state fits, not only the first ones seen

    # ------------------------------------------------------------------------------------------------ new job
    def open_new_job(self) -> None:
        """Read what the dialog offers (datasets, hosts, experiments) in a worker, then open it."""
        from mlops_desktop.gui.views.jobs_dialog import read_choices

        if self.new_job_dialog is not None and self.new_job_dialog.isVisible():
            self.new_job_dialog.raise_()
            return
        self.ctx.tasks.submit(read_choices, self.ctx.workspace, title="New job", key=f"jobs-choices-{id(self)}",
                              quiet=True, owner=self, on_done=self._show_new_job)

    def _show_new_job(self, choices: Any) -> Any:
        from mlops_desktop.gui.views.jobs_dialog import NewJobDialog

        dialog = NewJobDialog(choices, self)
        dialog.submitted.connect(lambda req, d=dialog: self.submit(req, d))
        dialog.finished.connect(lambda _r, d=dialog: self._dialog_closed(d))
        dialog.open()
        self.new_job_dialog = dialog
        return dialog

    def _dialog_closed(self, dialog: Any) -> None:
        if self.new_job_dialog is dialog:
            self.new_job_dialog = None
        dialog.deleteLater()

    def submit(self, request: Any, dialog: Any = None) -> None:
        """Submit a JobRequest (from the dialog) through the same core call as `jobs submit`."""
        def done(jobs: list[Job]) -> None:
            if dialog is not None:
                dialog.accept()
            self.ctx.notifications.success(
                f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} submitted",
                ", ".join(f"{j.id} ({j.state})" for j in jobs[:8]) + ("…" if len(jobs) > 8 else ""))
            self._pending_select = jobs[0].id if jobs else None
            self.tick()

        def failed(exc: BaseException) -> None:
            from mlops_desktop.gui.notify import describe

            if dialog is not None:
                dialog.failed(describe(exc))

        self.ctx.tasks.submit(submit_jobs, self.executor, self._lock, request, title="Submit job", owner=self,
                              quiet=True, on_done=done, on_error=failed)


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
