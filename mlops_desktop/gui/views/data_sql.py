"""The SQL tab of the Data area: an editor that completes table and column names, a history, timed results that
follow the selected dataset, and errors that dim the previous result instead of replacing it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent, QKeySequence, QPalette, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.gui.views.data_panels import make_table, muted
from mlops_desktop.gui.views.data_table import RowsModel

QUERY_ROWS = 1000
HISTORY_SETTING = "data/sql_history"
HISTORY_KEEP = 50
KEYWORDS = ["SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "JOIN", "LEFT JOIN", "INNER JOIN",
            "ON", "AS", "AND", "OR", "NOT", "IN", "IS NULL", "IS NOT NULL", "BETWEEN", "LIKE", "DISTINCT", "COUNT",
            "SUM", "AVG", "MIN", "MAX", "CASE", "WHEN", "THEN", "ELSE", "END", "DESC", "ASC", "UNION", "WITH", "CAST"]
_WORD_CHARS = re.compile(r"[A-Za-z0-9_@]")


def run_query(ws: Any, sql: str, *, progress: Any) -> tuple[Any, float]:
    """Worker: the first rows of a query over the lake and how long it took."""
    from mlops_desktop.data.query import query

    progress.update(0.1, "running query")
    started = time.perf_counter()
    page = query(ws, sql, limit=QUERY_ROWS)
    progress.check()  # a query cannot be stopped half-way; a cancel asked meanwhile drops its rows
    return page, time.perf_counter() - started


def export_query(ws: Any, sql: str, path: str, *, progress: Any) -> Any:
    from mlops_desktop.data.query import export

    progress.update(0.1, f"exporting to {path}")
    return export(ws, sql, path)


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


class SqlEditor(QPlainTextEdit):
    """A plain-text SQL editor whose completer offers dataset names, column names and keywords.

    The list pops up after two letters of a word (or on Ctrl+Space); Enter or Tab takes the highlighted name.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.words = QStringListModel(KEYWORDS, self)
        self.completer = QCompleter(self.words, self)
        self.completer.setWidget(self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchStartsWith)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.completer.activated.connect(self.insert_completion)

    def set_names(self, tables: list[str], columns: list[str]) -> None:
        names = sorted(set(tables), key=str.lower) + sorted(set(columns) - set(tables), key=str.lower)
        self.words.setStringList(names + KEYWORDS)

    def names(self) -> list[str]:
        return self.words.stringList()

    def word_before_cursor(self) -> str:
        cursor = self.textCursor()
        text = cursor.block().text()[:cursor.positionInBlock()]
        start = len(text)
        while start > 0 and _WORD_CHARS.match(text[start - 1]):
            start -= 1
        return text[start:]

    def insert_completion(self, word: str) -> None:
        prefix = self.word_before_cursor()
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.Left, QTextCursor.MoveMode.KeepAnchor, len(prefix))
        cursor.insertText(word)
        self.setTextCursor(cursor)
        self.completer.popup().hide()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        popup = self.completer.popup()
        if popup.isVisible() and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab,
                                                 Qt.Key.Key_Escape, Qt.Key.Key_Backtab):
            if event.key() == Qt.Key.Key_Escape:
                popup.hide()
                return
            index = popup.currentIndex()
            if index.isValid():
                self.insert_completion(str(index.data()))
            else:
                popup.hide()
            return
        forced = event.key() == Qt.Key.Key_Space and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        if not forced:
            super().keyPressEvent(event)
        self.update_completion(bool(forced), event.text())

    def update_completion(self, forced: bool = False, typed: str = "") -> None:
        prefix = self.word_before_cursor()
        if not forced and (len(prefix) < 2 or not typed or not _WORD_CHARS.match(typed[-1:])):
            self.completer.popup().hide()
            return
        self.completer.setCompletionPrefix(prefix)
        if self.completer.completionCount() == 0 or (
                self.completer.completionCount() == 1 and self.completer.currentCompletion() == prefix):
            self.completer.popup().hide()
            return
        self.completer.popup().setCurrentIndex(self.completer.completionModel().index(0, 0))
        rect = self.cursorRect()
        rect.setWidth(max(220, self.completer.popup().sizeHintForColumn(0) + 30))
        self.completer.complete(rect)


class Dimmer:
    """Greys a table's text (the rows stay readable, scrollable and selectable) to say they are not the answer to
    the query in the editor; ``setEnabled(True)`` dims, ``setEnabled(False)`` restores."""

    def __init__(self, table: QWidget) -> None:
        self.table = table
        self.enabled = False

    def isEnabled(self) -> bool:  # noqa: N802 - reads like the Qt effect it replaces
        return self.enabled

    def setEnabled(self, on: bool) -> None:  # noqa: N802
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            palette = QPalette(self.table.palette())
            grey = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
            for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
                palette.setColor(group, QPalette.ColorRole.Text, grey)
            self.table.setPalette(palette)
        else:
            self.table.setPalette(QPalette())  # back to the application's (theme's) palette
        self.table.setToolTip("rows of the previous query" if on else "")


class SqlPanel(QWidget):
    """An SQL editor over the lake (NAME = latest version, NAME@N = pinned) with the first rows of the result."""

    ran = Signal(object)  # QueryPage

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.editor = SqlEditor()
        self.editor.setObjectName("sql")
        self.editor.setPlaceholderText("SELECT * FROM my_dataset LIMIT 100        (Ctrl+Enter runs; NAME@3 pins a "
                                       "version; Ctrl+Space completes names)")
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.editor.setFont(font)
        self.editor.setMaximumHeight(110)
        self.editor.textChanged.connect(self._edited)
        self.history_box = QComboBox()
        self.history_box.setToolTip("earlier queries (newest first); pick one to put it back in the editor")
        self.history_box.setMinimumWidth(220)
        self.history_box.setMaximumWidth(420)
        self.history_box.activated.connect(self._history_chosen)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Run the query (Ctrl+Enter)")
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(lambda: self.export())
        self.status = muted()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.model = RowsModel(self)
        self.table = make_table(self.model)
        self.dim = Dimmer(self.table)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("History"))
        bar.addWidget(self.history_box)
        bar.addStretch(1)
        bar.addWidget(self.export_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.editor)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        self.last: Any = None        # the last result shown
        self.error: str = ""          # the last query's error, while its rows are dimmed
        self.task: Any = None
        self.auto_sql: str | None = None  # the query the panel wrote for the selected dataset, while unedited
        self.last_sql: str | None = None  # the query whose rows are shown
        self.history: list[str] = self._load_history()
        self._fill_history()
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self.editor)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(lambda: self.run())

    # -- the editor ------------------------------------------------------------------------------------------
    def set_sql(self, sql: str) -> None:
        self.editor.setPlainText(sql)

    def sql(self) -> str:
        return self.editor.toPlainText().strip()

    def set_catalog(self, datasets: list[Any]) -> None:
        """Offer the lake's dataset names and their columns to the completer."""
        self.editor.set_names([v.name for v in datasets], [c for v in datasets for c in v.schema])

    def follow(self, dataset: str) -> bool:
        """The selected dataset changed: an empty editor, or one still holding the query written for the previous
        dataset, gets the query for this one (True); a query the user wrote stays as it is (False)."""
        text = self.sql()
        if text and text != self.auto_sql:
            return False
        sql = f"SELECT * FROM {dataset} LIMIT 100"
        if sql != text:
            self.set_sql(sql)
        self.auto_sql = sql
        return True

    def needs_run(self) -> bool:
        """Whether showing the tab should run the query: nothing shown yet, or the query written for a newly
        selected dataset (never a query the user is still typing)."""
        text = self.sql()
        return bool(text) and (self.last is None or (text == self.auto_sql and text != self.last_sql))

    def _edited(self) -> None:
        if self.error:  # the user is fixing the query: the old error no longer describes what is typed
            self._set_status("", error=False)

    # -- running ---------------------------------------------------------------------------------------------
    def run(self) -> None:
        sql = self.sql()
        if not sql:
            return
        self._set_status("running…", error=False)
        self.cancel_button.setEnabled(True)
        self.task = self.ctx.tasks.submit(run_query, self.ctx.workspace, sql, title="SQL query", key="data-sql",
                                          quiet=True, owner=self,
                                          on_done=lambda result, q=sql: self._on_result(q, result),
                                          on_error=lambda exc, q=sql: self._on_error(q, exc))
        self.task.was_cancelled.connect(self._on_cancelled)

    def cancel(self) -> None:
        """Cancel the running query (here or in the Tasks panel): polars cannot stop half-way, so the worker ends
        when the query does, and its rows are dropped."""
        if self.task is not None and self.task.running:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("cancelling…", error=False)

    def _on_cancelled(self) -> None:
        self.cancel_button.setEnabled(False)
        self._set_status("cancelled" + (": the dimmed rows below are from before" if self.last is not None else ""),
                         error=False)
        self.dim.setEnabled(self.last is not None)

    def _on_result(self, sql: str, result: tuple[Any, float]) -> None:
        page, seconds = result
        self.cancel_button.setEnabled(False)
        self.last, self.last_sql = page, sql
        self.dim.setEnabled(False)
        self.model.set_rows(page.columns, page.rows)
        self.table.resizeColumnsToContents()
        for c in range(self.model.columnCount()):
            self.table.setColumnWidth(c, min(self.table.columnWidth(c) + 10, 320))
        shown = len(page.rows)
        total = page.total if page.total is not None else shown
        more = f" (first {shown:,} shown; Export… writes all)" if total > shown else ""
        tables = ", ".join(f"{k} = {v}" for k, v in page.tables.items())
        self._set_status(f"{total:,} rows{more} in {fmt_seconds(seconds)}" + (f"   ·   {tables}" if tables else ""),
                         error=False)
        self.remember(sql)
        self.ran.emit(page)

    def _on_error(self, sql: str, exc: BaseException) -> None:
        from mlops_desktop.gui.notify import describe

        self.cancel_button.setEnabled(False)
        before = " — the dimmed rows below are from the previous query" if self.last is not None else ""
        self._set_status(f"error: {describe(exc)}{before}", error=True)
        self.dim.setEnabled(self.last is not None)
        self.remember(sql)  # a query with a typo is still worth getting back to fix

    def _set_status(self, text: str, *, error: bool) -> None:
        self.error = text if error else ""
        self.status.setObjectName("error" if error else "muted")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.status.setText(text)
        self.status.setToolTip(text if error else "")

    def clear_error(self) -> None:
        """The user moved on (another dataset or tab): an error about the old query is stale."""
        if self.error:
            self._set_status("", error=False)

    # -- history ---------------------------------------------------------------------------------------------
    def _load_history(self) -> list[str]:
        raw = self.ctx.settings.value(HISTORY_SETTING, "")
        try:
            items = json.loads(str(raw)) if raw else []
        except ValueError:
            items = []
        return [q for q in items if isinstance(q, str)][:HISTORY_KEEP]

    def remember(self, sql: str) -> None:
        if self.history and self.history[0] == sql:
            return
        self.history = [sql] + [q for q in self.history if q != sql][:HISTORY_KEEP - 1]
        self.ctx.settings.setValue(HISTORY_SETTING, json.dumps(self.history))
        self._fill_history()

    def _fill_history(self) -> None:
        self.history_box.blockSignals(True)
        self.history_box.clear()
        if not self.history:
            self.history_box.addItem("no queries yet")
            self.history_box.setEnabled(False)
        else:
            self.history_box.setEnabled(True)
            self.history_box.addItem(f"{len(self.history)} earlier quer{'y' if len(self.history) == 1 else 'ies'}")
            for q in self.history:
                one_line = " ".join(q.split())
                self.history_box.addItem(one_line if len(one_line) <= 90 else one_line[:89] + "…", q)
                self.history_box.setItemData(self.history_box.count() - 1, q, Qt.ItemDataRole.ToolTipRole)
        self.history_box.setCurrentIndex(0)
        self.history_box.blockSignals(False)

    def _history_chosen(self, index: int) -> None:
        sql = self.history_box.itemData(index)
        if isinstance(sql, str):
            self.set_sql(sql)
            self.auto_sql = None
            self.editor.setFocus()
        self.history_box.setCurrentIndex(0)

    # -- export ----------------------------------------------------------------------------------------------
    def export(self) -> None:
        if not self.sql():
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export query result", "result.parquet",
                                              "Parquet (*.parquet);;CSV (*.csv)")
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        self.ctx.tasks.submit(export_query, self.ctx.workspace, self.sql(), path, title=f"Export to {path}",
                              owner=self, on_done=lambda r: self._set_status(
                                  f"wrote {r['rows']:,} rows to {r['output']}", error=False))
