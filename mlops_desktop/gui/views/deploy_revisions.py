"""The revision timeline: every revision of a deployment, newest first, with a Roll back button on each earlier one."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPen
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.deploy_widgets import StateChip, heading, muted, state_color, when, words


def model_label(rev: Any) -> str:
    return f"{rev.model}/{rev.version}"


def current_revision(revisions: list[Any]) -> int | None:
    """The revision that serves now: the newest one seen healthy or still rolling out; a failed or rolled-back
    attempt after it does not replace it."""
    for rev in sorted(revisions, key=lambda r: r.number, reverse=True):
        if rev.outcome in ("healthy", "pending"):
            return int(rev.number)
    return None


class _Rail(QWidget):
    """The timeline's line and the revision's dot in its outcome's colour."""

    def __init__(self, outcome: str, first: bool, last: bool, current: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outcome, self.first, self.last, self.current = outcome, first, last, current
        self.setFixedWidth(26)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(26, 40)

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        x, y = self.width() // 2, 20
        line = self.palette().mid().color()
        painter.setPen(QPen(line, 2))
        painter.drawLine(x, 0 if not self.first else y, x, self.height() if not self.last else y)
        color = state_color(self.outcome)
        painter.setPen(QPen(color, 2))
        painter.setBrush(color if self.current else self.palette().base().color())
        radius = 7 if self.current else 6
        painter.drawEllipse(x - radius, y - radius, 2 * radius, 2 * radius)
        painter.end()


class RevisionCard(QFrame):
    """One revision: number, model version, outcome, who/when/why, image, and (earlier ones) Roll back."""

    def __init__(self, rev: Any, *, current: bool, first: bool, last: bool, can_roll_back: bool,
                 on_roll_back: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.revision = rev
        self.setObjectName("revisionCard")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 6, 0)
        row.setSpacing(8)
        row.addWidget(_Rail(str(rev.outcome), first, last, current))
        body = QVBoxLayout()
        body.setContentsMargins(0, 6, 0, 8)
        body.setSpacing(2)
        title_row = QHBoxLayout()
        title_row.setSpacing(8)
        title = QLabel(f"Revision {rev.number}  ·  {model_label(rev)}")
        title.setTextFormat(Qt.TextFormat.PlainText)
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        title_row.addWidget(title)
        self.chip = StateChip(str(rev.outcome))
        title_row.addWidget(self.chip)
        if current:
            serving = StateChip("healthy", "serving now")
            title_row.addWidget(serving)
        if getattr(rev, "alerting", None):
            alert = StateChip("failed", f"alerting: {rev.alerting}")
            alert.setToolTip("monitoring flagged this revision; revert skips it")
            title_row.addWidget(alert)
        title_row.addStretch(1)
        body.addLayout(title_row)
        who = f"{when(rev.at)} by {rev.actor or 'unknown'}"
        why = f" — {rev.reason}" if rev.reason else ""
        line = muted(who + why)
        body.addWidget(line)
        details = [str(rev.image)] if rev.image else []
        if rev.detail:
            details.append(str(rev.detail))
        if details:
            info = muted("  ·  ".join(details))
            info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            body.addWidget(info)
        row.addLayout(body, 1)
        self.button: QPushButton | None = None
        if can_roll_back:
            self.button = QPushButton(f"Roll back to {rev.number}")
            self.button.setToolTip(f"Serve {model_label(rev)} again (revision {rev.number}'s spec and image) "
                                   "as a new revision")
            self.button.clicked.connect(lambda: on_roll_back(int(rev.number)))
            row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)


class RevisionTimeline(QWidget):
    """Newest revision on top. ``rollback_requested(number)`` when a Roll back button is pressed."""

    rollback_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = heading("Revisions")
        self.note = muted("")
        self.inner = QWidget()
        self.rows = QVBoxLayout(self.inner)
        self.rows.setContentsMargins(4, 4, 4, 4)
        self.rows.setSpacing(0)
        self.rows.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.note)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        self.cards: list[RevisionCard] = []
        self.revisions: list[Any] = []
        self.current: int | None = None
        self.busy = False

    def show_revisions(self, revisions: list[Any], current: int | None = None) -> None:
        ordered = sorted(revisions, key=lambda r: r.number, reverse=True)
        key = [(r.number, r.outcome, r.alerting) for r in ordered]
        self.current = current if current is not None else current_revision(ordered)
        if key == [(r.number, r.outcome, r.alerting) for r in self.revisions] and self.cards:
            self.revisions = ordered
            return  # nothing changed: keep the widgets (and the scroll position)
        self.revisions = ordered
        for card in self.cards:
            self.rows.removeWidget(card)
            card.deleteLater()
        self.cards = []
        for i, rev in enumerate(ordered):
            is_current = rev.number == self.current
            card = RevisionCard(rev, current=is_current, first=i == 0, last=i == len(ordered) - 1,
                                can_roll_back=self.can_roll_back_to(rev),
                                on_roll_back=lambda n: self.rollback_requested.emit(n))
            self.rows.insertWidget(self.rows.count() - 1, card)
            self.cards.append(card)
        self.note.setText(f"{len(ordered)} revision(s)" if ordered else "no revisions yet")
        self.set_busy(self.busy)

    def can_roll_back_to(self, rev: Any) -> bool:
        """Earlier revisions than the one serving (all but a rollout in progress when none serves)."""
        if rev.number == self.current or rev.outcome == "pending":
            return False
        return self.current is None or rev.number < self.current

    def set_busy(self, busy: bool) -> None:
        """While a rollout runs no second one can start from here."""
        self.busy = busy
        for card in self.cards:
            if card.button is not None:
                card.button.setEnabled(not busy)

    def revision(self, number: int) -> Any:
        return next(r for r in self.revisions if r.number == number)

    def on_theme_changed(self) -> None:
        for card in self.cards:
            card.chip.restyle()
            card.update()


class RollbackDialog(QDialog):
    """Names the deployment, the revision it leaves and the one it goes to (with their model versions) and asks why;
    the reason is required (it goes to the revision and the audit log)."""

    def __init__(self, deployment: str, target: Any, current: Any | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Roll back {deployment}")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        frm = (f"revision {current.number} ({model_label(current)}, {words(str(current.outcome))})"
               if current is not None else "what runs now")
        text = QLabel(f"Roll back {deployment} from {frm}\nto revision {target.number}: {model_label(target)}"
                      + (f" ({target.image})" if target.image else "") + "?")
        text.setTextFormat(Qt.TextFormat.PlainText)
        text.setWordWrap(True)
        layout.addWidget(text)
        layout.addWidget(muted("The rollout is health-checked; it becomes a new revision in the history."))
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why? e.g. p99 latency doubled after revision "
                                       f"{current.number if current is not None else ''}".rstrip())
        layout.addWidget(QLabel("Reason"))
        layout.addWidget(self.reason)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(f"Roll back to {target.number} ({model_label(target)})")
        self.ok_button.setEnabled(False)
        self.buttons.accepted.connect(lambda: self.accept() if self.reason.text().strip() else None)
        self.buttons.rejected.connect(lambda: self.reject())
        self.reason.textChanged.connect(lambda t: self.ok_button.setEnabled(bool(t.strip())))
        layout.addWidget(self.buttons)
        self.target_number = int(target.number)

    def reason_text(self) -> str:
        return self.reason.text().strip()
