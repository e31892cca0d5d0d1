"""The Approvals area: the review queue, a review page (evidence panels, the labelling panel, the history of
decisions) and approve / reject with a comment; the same core calls as `reviews ...`, all in workers."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.views.approvals_evidence import CellsModel, EvidencePanel, small_table, state_color
from mlops_desktop.gui.views.approvals_labels import LabelPanel
from mlops_desktop.gui.views.base import AppContext, AreaView
from mlops_desktop.gui.views.data_panels import pad_cells

TABS = {"evidence": 0, "labels": 1, "history": 2}


def load_queue(ws: Any, show_all: bool, *, progress: Any) -> tuple[list[Any], list[Any]]:
    """Worker: the queue (or every request) and the notices not yet shown."""
    from mlops_desktop.promotion import requests, reviews

    reviews.expire_due(ws)
    if show_all:
        reqs = requests.list_requests(ws)
    else:  # what waits for a person first, then what still runs its checks
        reqs = reviews.queue(ws) + list(reversed(requests.list_requests(
            ws, states=("pending", "running", "waiting", "deploying"))))
    return reqs, requests.unread_notices(ws, mark_read=True)


def resume(ws: Any, request_id: int, *, progress: Any) -> Any:
    """Worker: run the request's checks from the first one not passed (the same call as `promote resume`)."""
    from mlops_desktop.promotion import pipeline

    return pipeline.run(ws, request_id, progress=progress)


def load_review(ws: Any, request_id: int, *, progress: Any) -> tuple[dict[str, Any], list[Any]]:
    from mlops_desktop.promotion import reviews, samples

    page = reviews.page(ws, request_id)
    return page, samples.load(ws, request_id)


def decide(ws: Any, request_id: int, decision: str, comment: str, *, progress: Any) -> Any:
    from mlops_desktop.promotion import reviews

    progress.update(0.1, f"{decision} #{request_id}")
    return reviews.decide(ws, request_id, decision, comment)


def save_label(ws: Any, request_id: int, sample: int, value: str, typed: bool, *, progress: Any) -> Any:
    from mlops_desktop.promotion import labels

    return labels.label(ws, request_id, sample, value, typed=typed)


def export_labels(ws: Any, model: str, *, progress: Any) -> Any:
    from mlops_desktop.promotion import labels

    return labels.export(ws, model)


def ago(ts: float | None) -> str:
    if not ts:
        return "–"
    delta = ts - time.time()
    span = abs(delta)
    text = f"{span / 86400:.1f} d" if span >= 86400 else f"{span / 3600:.1f} h" if span >= 3600 \
        else f"{span / 60:.0f} min"
    return f"in {text}" if delta > 0 else f"{text} ago"


class QueueModel(RowTableModel):
    columns = ("#", "Candidate", "Champion", "State", "Approvals", "Registered by", "Started", "Expires")
    numeric_columns = frozenset({0})

    def set_requests(self, reqs: list[Any]) -> None:
        self.beginResetModel()
        self.rows = list(reqs)
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(r.id), r.ref, r.champion_ref or "–", r.state, f"{len(r.approvals)}/{r.approvals_needed}",
                    r.candidate_by, ago(r.created_at), ago(r.expires_at) if r.state == "review" else "–")[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            return state_color(r.state)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return r.message
        return None


class ApprovalsView(AreaView):
    area_id = "approvals"
    title = "Approvals"
    icon_name = "approvals"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.queue = QueueModel(self)
        self.table = QTableView()
        self.table.setModel(self.queue)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        pad_cells(self.table)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._selected())
        self.show_all = QCheckBox("Show decided")
        self.show_all.setToolTip("every request, newest first: the history of decisions")
        self.show_all.toggled.connect(lambda _on: self.refresh())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.resume_button = QPushButton("Run checks")
        self.resume_button.setToolTip("run the selected request's checks from the first one not passed (a shadow "
                                      "check waiting for traffic, a cancelled run)")
        self.resume_button.clicked.connect(lambda: self.resume_selected())
        self.resume_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        top = QHBoxLayout()
        title = QLabel("Review queue")
        title.setObjectName("heading")
        top.addWidget(title)
        top.addWidget(self.show_all)
        top.addWidget(self.refresh_button)
        top.addWidget(self.resume_button)
        top.addStretch(1)
        top.addWidget(self.status)
        self.evidence = EvidencePanel()
        self.labels = LabelPanel()
        self.labels.labelled.connect(self.label_sample)
        self.labels.save_requested.connect(self.save_labels)
        self.history_model = CellsModel(("When", "Who", "What", "From", "To", "Why"), self)
        self.history = small_table(self.history_model)
        self.history.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.evidence, "Evidence")
        self.tabs.addTab(self.labels, "Label samples")
        self.tabs.addTab(self.history, "History")
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("comment (required): why you approve or reject")
        self.comment.returnPressed.connect(lambda: None)
        self.approve_button = QPushButton("Approve")
        self.approve_button.clicked.connect(lambda: self.decide("approve"))
        self.reject_button = QPushButton("Reject")
        self.reject_button.clicked.connect(lambda: self.decide("reject"))
        self.decision_note = QLabel("")
        self.decision_note.setObjectName("muted")
        decide_bar = QHBoxLayout()
        decide_bar.addWidget(self.comment, 1)
        decide_bar.addWidget(self.approve_button)
        decide_bar.addWidget(self.reject_button)
        page = QWidget()
        page_layout = QVBoxLayout(page)
        page_layout.setContentsMargins(0, 0, 0, 0)
        page_layout.addWidget(self.tabs, 1)
        page_layout.addLayout(decide_bar)
        page_layout.addWidget(self.decision_note)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(page)
        split.setStretchFactor(1, 1)
        split.setSizes([150, 650])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.page: dict[str, Any] | None = None
        self._wanted: int | None = None
        self._decided: int | None = None
        self._set_decidable(False, "")
        ctx.add_action("Approvals: show the review queue", lambda: ctx.navigate("approvals"))
        ctx.add_action("Approvals: label samples of the selected review",
                       lambda: (ctx.navigate("approvals"), self.show_item(tab="labels")))
        self.refresh()

    # ------------------------------------------------------------------------------------------------ data
    def refresh(self) -> None:
        self.ctx.tasks.submit(load_queue, self.ctx.workspace, self.show_all.isChecked(), title="Load reviews",
                              key=f"approvals-queue-{id(self)}", quiet=True, owner=self, on_done=self._set_queue)

    def on_workspace_changed(self) -> None:
        self.page = None
        self.evidence.clear()
        self.refresh()

    def show_item(self, request_id: int | None = None, tab: str | None = None, **_: Any) -> None:
        if request_id is not None:
            self._wanted = int(request_id)
            if not any(r.id == self._wanted for r in self.queue.rows):
                self.show_all.setChecked(True)
            self._select(self._wanted)
        if tab is not None and tab in TABS:
            self.tabs.setCurrentIndex(TABS[tab])
            if tab == "labels":
                self.labels.table.setFocus()

    def _set_queue(self, result: tuple[list[Any], list[Any]]) -> None:
        reqs, notices = result
        for n in notices:
            post = {"error": self.ctx.notifications.error, "warning": self.ctx.notifications.warning}.get(
                n.level, self.ctx.notifications.info)
            post(f"Promotion #{n.request_id}", n.message)
        current = self.page["request"]["id"] if self.page else None
        self.queue.set_requests(reqs)
        waiting = sum(1 for r in reqs if r.state == "review")
        checking = sum(1 for r in reqs if r.state in ("pending", "running", "waiting"))
        self.status.setText((f"{waiting} waiting for review" if waiting else "nothing waits for review")
                            + (f" · {checking} running or waiting for checks" if checking else ""))
        ids = [r.id for r in reqs]
        if self._wanted in ids:
            want: int | None = self._wanted
        elif current in ids:
            want = current
        elif current is not None and current == self._decided:
            want = None  # the request just decided left the queue: its page stays up with the outcome
        else:
            want = ids[0] if ids else None
        if want is not None:
            self._select(want)
        elif current is None or current != self._decided:
            self.page = None
            self.evidence.clear()
            self.labels.set_samples([], editable=False)
            self.history_model.set_rows([])
            self._set_decidable(False, "")

    def _select(self, request_id: int) -> None:
        for row, r in enumerate(self.queue.rows):
            if r.id == request_id:
                if self.table.currentIndex().row() != row:
                    self.table.selectRow(row)
                else:
                    self._selected()
                return

    def selected(self) -> Any:
        index = self.table.currentIndex()
        return self.queue.rows[index.row()] if index.isValid() and index.row() < len(self.queue.rows) else None

    def _selected(self) -> None:
        req = self.selected()
        if req is None:
            return
        self.ctx.clear_status()
        self.ctx.tasks.submit(load_review, self.ctx.workspace, req.id, title=f"Load review #{req.id}",
                              key=f"approvals-page-{id(self)}", quiet=True, owner=self, on_done=self._show_page)

    def _show_page(self, result: tuple[dict[str, Any], list[Any]]) -> None:
        page, kept = result
        self.page = page
        self._wanted = None
        req = page["request"]
        self.evidence.show_page(page)
        in_review = req["state"] == "review"
        self.labels.set_samples(kept, editable=req["state"] in ("review", "waiting", "approved", "deploying"))
        self.history_model.set_rows([(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["ts"])), e["actor"],
                                      e["kind"].removeprefix("promotion."), e["from_value"], e["to_value"],
                                      e["reason"]) for e in page["history"]])
        if in_review:
            note = f"{req['approvals_given']} of {req['approvals_needed']} approval(s); " \
                   f"expires {ago(req['expires_at'])}"
            if not req["policy_data"].get("allow_self_approval"):
                note += f"; {req['candidate_by']} registered it and cannot approve it"
        else:
            note = f"{req['state']}: {req['message']}"
        self._set_decidable(in_review, note)
        self.resume_button.setEnabled(req["state"] in ("pending", "waiting", "deploying"))

    def _set_decidable(self, on: bool, note: str) -> None:
        for w in (self.comment, self.approve_button, self.reject_button):
            w.setEnabled(on)
        self.decision_note.setText(note)

    # ------------------------------------------------------------------------------------------------ actions
    def decide(self, decision: str) -> None:
        if self.page is None:
            return
        comment = self.comment.text().strip()
        if not comment:
            self.decision_note.setText("write a comment first: it is recorded with your decision")
            self.comment.setFocus()
            return
        rid = int(self.page["request"]["id"])
        self._set_decidable(False, f"{decision}…")

        def done(req: Any) -> None:
            self.comment.clear()
            self.ctx.notifications.success(f"Promotion #{req.id}: {req.state}", req.message)
            self._decided = req.id  # its page stays up with the outcome, though it left the queue
            self.refresh()
            self.ctx.tasks.submit(load_review, self.ctx.workspace, req.id, title=f"Load review #{req.id}",
                                  key=f"approvals-page-{id(self)}", quiet=True, owner=self,
                                  on_done=self._show_page)

        def failed(exc: BaseException) -> None:
            from mlops_desktop.gui.notify import describe

            self._set_decidable(True, describe(exc).splitlines()[0])

        self.ctx.tasks.submit(decide, self.ctx.workspace, rid, decision, comment, title=f"{decision.title()} #{rid}",
                              quiet=True, owner=self, on_done=done, on_error=failed)

    def resume_selected(self) -> None:
        if self.page is None:
            return
        rid = int(self.page["request"]["id"])
        self.resume_button.setEnabled(False)

        def done(req: Any) -> None:
            self._wanted = req.id
            self.refresh()

        self.ctx.tasks.submit(resume, self.ctx.workspace, rid, title=f"Checks of promotion #{rid}",
                              key=f"approvals-resume-{rid}", owner=self, on_done=done,
                              on_error=lambda _exc: self.refresh())

    def label_sample(self, sample: int, value: str, typed: bool) -> None:
        if self.page is None:
            return
        rid = int(self.page["request"]["id"])
        self.ctx.tasks.submit(save_label, self.ctx.workspace, rid, sample, value, typed,
                              title=f"Label sample {sample} of #{rid}", quiet=True, owner=self,
                              on_done=self.labels.labelled_ok)

    def save_labels(self) -> None:
        if self.page is None:
            return
        model = str(self.page["request"]["model"])

        def done(version: Any) -> None:
            self.ctx.notifications.success("Labels saved", f"lake dataset {version.ref}" if version is not None
                                           else "no labels yet")

        self.ctx.tasks.submit(export_labels, self.ctx.workspace, model, title=f"Save labels of {model}", quiet=True,
                              owner=self, on_done=done)


AREA = ApprovalsView
