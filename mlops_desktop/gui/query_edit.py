"""The filter bar's line edit: completes params./metrics./tags. keys and attributes for the word being typed."""

from __future__ import annotations

import re

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QCompleter, QLineEdit, QWidget

KEYWORDS = ["and", "or", "not", "in", "like", "is null", "is not null"]
_WORD = re.compile(r"[\w.`\-]*$")


class QueryEdit(QLineEdit):
    """Completion applies to the token under the cursor, not the whole line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("query")
        self.words = QStringListModel(self)
        self.completer_ = QCompleter(self.words, self)
        self.completer_.setWidget(self)
        self.completer_.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer_.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer_.activated.connect(self.insert_completion)
        self.textEdited.connect(self._update_popup)
        self._quoted: dict[str, str] = {}

    def set_keys(self, params: list[str], metrics: list[str], tags: list[str], attributes: list[str]) -> None:
        def q(key: str) -> str:
            return key if re.fullmatch(r"[A-Za-z_][\w\-]*", key) else f"`{key}`"

        # matched and listed without quotes (typing `params.bat` finds `batch size`), inserted quoted when needed
        self._quoted = {f"{prefix}.{k}": f"{prefix}.{q(k)}"
                        for prefix, keys in (("params", params), ("metrics", metrics), ("tags", tags)) for k in keys}
        self.words.setStringList(list(self._quoted) + attributes + KEYWORDS)

    def current_word(self) -> str:
        match = _WORD.search(self.text()[: self.cursorPosition()])
        return match.group(0) if match else ""

    def _update_popup(self, _text: str) -> None:
        word = self.current_word()
        if len(word) < 1:
            self.completer_.popup().hide()
            return
        self.completer_.setCompletionPrefix(word.replace("`", ""))
        if self.completer_.completionCount() == 0 or (self.completer_.completionCount() == 1
                                                       and self._quoted.get(self.completer_.currentCompletion(),
                                                                            self.completer_.currentCompletion()) == word):
            self.completer_.popup().hide()
            return
        rect = self.cursorRect()
        rect.setWidth(max(260, self.completer_.popup().sizeHintForColumn(0) + 30))
        self.completer_.complete(rect)

    def insert_completion(self, completion: str) -> None:
        completion = self._quoted.get(completion, completion)
        pos = self.cursorPosition()
        before, after = self.text()[:pos], self.text()[pos:]
        word = self.current_word()
        before = before[: len(before) - len(word)] + completion + " "
        self.setText(before + after)
        self.setCursorPosition(len(before))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        popup = self.completer_.popup()
        if popup.isVisible() and event.key() in (Qt.Key.Key_Enter, Qt.Key.Key_Return, Qt.Key.Key_Tab,
                                                 Qt.Key.Key_Escape):
            if event.key() == Qt.Key.Key_Escape:
                popup.hide()
                return
            index = popup.currentIndex()
            if index.isValid():
                self.insert_completion(index.data())
                popup.hide()
                return
            popup.hide()
        super().keyPressEvent(event)
