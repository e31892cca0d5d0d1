"""The Models area's "Try it" panel: send the input example or rows from a lake dataset (editable JSON) to the
version, through the running local server or in-process through the same app, and show the answer or the
server's refusal in words."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views import models_data as data
from mlops_desktop.gui.views.data_panels import pad_cells
from mlops_desktop.gui.views.models_widgets import bad_color, good_color

if TYPE_CHECKING:
    from mlops_desktop.gui.views.base import AppContext
    from mlops_desktop.registry.entities import ModelVersion
    from mlops_desktop.serving.manager import ManagedServer

EXAMPLE = "Input example"
MAX_SHOWN_ROWS = 200


def list_datasets(ws: Any, *, progress: Any) -> list[str]:
    from mlops_desktop.data import catalog

    return sorted(v.ref for v in catalog.list_datasets(ws.db))


class TryPanel(QWidget):
    """Try a version. The area calls ``set_version(mv)``; the Serve panel's server (if it serves that version) is
    where the request goes, else an in-process app built by the same factory answers it."""

    def __init__(self, ctx: AppContext, server_of: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.server_of = server_of or (lambda: None)    # -> ManagedServer | None (the Serve panel's)
        self.version: ModelVersion | None = None
        self.result: data.TryResult | None = None
        self.sending = False

        self.source = QComboBox()
        self.source.addItem(EXAMPLE)
        self.source.setToolTip("what to send: the version's input example, or rows of a lake dataset")
        self.source.setMinimumWidth(200)
        self.source.currentTextChanged.connect(lambda _t: self.load_payload())
        self.rows = QSpinBox()
        self.rows.setRange(1, data.MAX_TRY_ROWS)
        self.rows.setValue(10)
        self.rows.setSuffix(" rows")
        self.rows.valueChanged.connect(lambda _v: self.load_payload() if self.source.currentText() != EXAMPLE
                                       else None)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(lambda: self.send())
        self.target = QLabel("")
        self.target.setObjectName("muted")
        self.target.setTextFormat(Qt.TextFormat.PlainText)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Send"))
        bar.addWidget(self.source)
        bar.addWidget(self.rows)
        bar.addWidget(self.send_button)
        bar.addWidget(self.target, 1)

        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.payload = QPlainTextEdit()
        self.payload.setFont(mono)
        self.payload.setPlaceholderText('{"dataframe_split": {"columns": [...], "data": [[...]]}}  '
                                        "(any MLflow payload: dataframe_split, dataframe_records, instances, inputs)")
        send_key = QShortcut(QKeySequence("Ctrl+Return"), self.payload)
        send_key.activated.connect(lambda: self.send())
        self.send_button.setToolTip("send the request body (Ctrl+Enter)")
        self.status = QLabel("")
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.answer = QTableWidget(0, 0)
        self.answer.verticalHeader().setDefaultSectionSize(22)
        self.answer.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.answer.setAlternatingRowColors(True)
        self.answer.setShowGrid(False)
        self.answer.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        pad_cells(self.answer)
        self.raw = QPlainTextEdit()
        self.raw.setReadOnly(True)
        self.raw.setFont(mono)
        self.raw.setMaximumHeight(90)
        self.raw.setPlaceholderText("the raw answer")

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_title = QLabel("Request body (editable)")
        left_title.setObjectName("muted")
        left_layout.addWidget(left_title)
        left_layout.addWidget(self.payload, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_title = QLabel("Answer")
        right_title.setObjectName("muted")
        right_layout.addWidget(right_title)
        right_layout.addWidget(self.status)
        right_layout.addWidget(self.answer, 1)
        right_layout.addWidget(self.raw)
        self.right_layout = right_layout
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([500, 500])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._loaded_for: tuple[str, str, int] | None = None
        self._update()

    # ------------------------------------------------------------------------------------------------ inputs
    def refresh_datasets(self) -> None:
        def done(refs: list[str]) -> None:
            current = self.source.currentText()
            self.source.blockSignals(True)
            self.source.clear()
            self.source.addItem(EXAMPLE)
            for ref in refs:
                self.source.addItem(ref)
            self.source.setCurrentText(current if current in [EXAMPLE, *refs] else EXAMPLE)
            self.source.blockSignals(False)

        self.ctx.tasks.submit(list_datasets, self.ctx.workspace, title="List datasets", quiet=True, owner=self,
                              key=f"try-datasets-{id(self)}", on_done=done)

    def set_version(self, mv: ModelVersion | None) -> None:
        changed = mv is None or self.version is None or mv.ref != self.version.ref
        self.version = mv
        if changed:
            self.result = None
            self._show_result(None)
            self._loaded_for = None
            if self.isVisible():
                self.load_payload()
        self._update()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.refresh_datasets()
        if self._loaded_for is None:
            self.load_payload()
        self._update()
        super().showEvent(event)

    def server(self) -> ManagedServer | None:
        """The running local server of this version, if any."""
        server = self.server_of()
        v = self.version
        if server is None or v is None or server.state != "running":
            return None
        return server if (server.model, server.version) == (v.name, str(v.version)) else None

    def _update(self) -> None:
        v = self.version
        server = self.server()
        self.rows.setVisible(self.source.currentText() != EXAMPLE)
        self.send_button.setEnabled(v is not None and not self.sending)
        if v is None:
            self.target.setText("select a version")
        elif server is not None:
            self.target.setText(f"→ the local server at {server.url} (v{server.version})")
        else:
            self.target.setText(f"→ v{v.version} in-process (no local server runs it): the server's own app, "
                                "loaded for this request")

    # ------------------------------------------------------------------------------------------------ actions
    def load_payload(self) -> None:
        v = self.version
        if v is None:
            return
        source = self.source.currentText()
        key = (v.ref, source, self.rows.value())
        self._loaded_for = key
        self._update()
        ws = self.ctx.workspace
        if source == EXAMPLE:
            args: tuple = (data.example_payload, ws, v.name, v.version)
        else:
            args = (data.dataset_payload, ws, v.name, v.version, source, self.rows.value())

        def done(text: str) -> None:
            if self._loaded_for == key:
                self.payload.setPlainText(text)

        def failed(exc: BaseException) -> None:
            from mlops_desktop.gui.notify import describe

            if self._loaded_for == key:
                self.payload.setPlainText("")
                self._show_error_text(describe(exc))

        self.ctx.tasks.submit(*args, title=f"Rows for {v.ref}", quiet=True, owner=self, key=f"try-load-{id(self)}",
                              on_done=done, on_error=failed)

    def send(self) -> None:
        v = self.version
        if v is None or self.sending:
            return
        body = self.payload.toPlainText()
        if not body.strip():
            self._show_error_text("the request body is empty: load the input example or dataset rows first")
            return
        server = self.server()
        self.sending = True
        self._update()
        self.status.setText("sending…")
        if server is not None:
            fn: Any = data.send_request
            args: tuple = (server.url, body)
        else:
            fn, args = data.send_in_process, (self.ctx.workspace, v.name, v.version, body)

        def done(result: data.TryResult) -> None:
            self.sending = False
            self._show_result(result)
            self._update()

        def failed(exc: BaseException) -> None:
            from mlops_desktop.gui.notify import describe

            self.sending = False
            self._show_error_text(describe(exc))
            self._update()

        self.ctx.tasks.submit(fn, *args, title=f"Try {v.ref}", quiet=True, owner=self, key=f"try-send-{id(self)}",
                              on_done=done, on_error=failed)

    # ------------------------------------------------------------------------------------------------ showing
    def _show_error_text(self, text: str) -> None:
        from html import escape

        self.status.setText(f"<span style='color:{bad_color()}'><b>{escape(text, quote=False)}</b></span>")

    def _show_result(self, result: data.TryResult | None) -> None:
        from html import escape

        self.result = result
        self.answer.clear()
        self.answer.setRowCount(0)
        self.answer.setColumnCount(0)
        if result is None:
            self.status.setText("")
            self.raw.setPlainText("")
            return
        self.raw.setPlainText(result.body[:20_000])
        where = "in-process" if result.target == "in-process" else result.target
        timing = f"{result.seconds * 1000:.1f} ms · {escape(where)}"
        self.answer.setVisible(result.predictions is not None)
        self.raw.setMaximumHeight(90 if result.predictions is not None else 16_777_215)
        self.right_layout.setStretchFactor(self.raw, 0 if result.predictions is not None else 1)
        if result.predictions is None:
            red = bad_color()
            self.status.setText(f"<span style='color:{red}'><b>{result.status} {data.status_phrase(result.status)}"
                                f"</b><br>{escape(result.message, quote=False)}</span>"
                                f"<br><span style='color:gray'>{timing}</span>")
            return
        self.status.setText(f"<span style='color:{good_color()}'><b>{result.status} OK</b></span> &nbsp; "
                            f"{len(result.predictions)} prediction{'s' if len(result.predictions) != 1 else ''}"
                            f" <span style='color:gray'>· {timing}</span>")
        self._fill_answer(result.predictions)

    def _fill_answer(self, predictions: list[Any]) -> None:
        try:
            split = json.loads(self.payload.toPlainText()).get("dataframe_split") or {}
        except (ValueError, AttributeError):
            split = {}
        columns = [str(c) for c in split.get("columns") or []]
        rows = split.get("data") or []
        shown = predictions[:MAX_SHOWN_ROWS]
        self.answer.setColumnCount(1 + len(columns))
        self.answer.setHorizontalHeaderLabels(["prediction", *columns])
        self.answer.setRowCount(len(shown))
        bold = QFont(self.answer.font())
        bold.setBold(True)
        for r, value in enumerate(shown):
            item = QTableWidgetItem(_cell(value))
            item.setFont(bold)
            self.answer.setItem(r, 0, item)
            if r < len(rows) and isinstance(rows[r], list):
                for c, cell in enumerate(rows[r][:len(columns)]):
                    self.answer.setItem(r, 1 + c, QTableWidgetItem(_cell(cell)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
