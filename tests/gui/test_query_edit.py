"""The filter bar completes the word under the cursor with param/metric/tag keys and attributes."""

from __future__ import annotations

from PySide6.QtCore import Qt

from mlops_desktop.gui.query_edit import QueryEdit


def test_completion_of_the_current_word(qtbot):
    edit = QueryEdit()
    qtbot.addWidget(edit)
    edit.show()
    edit.set_keys(["lr", "batch size"], ["val_acc", "val_loss"], ["stage"], ["status", "name"])
    qtbot.keyClicks(edit, "status = finished and metrics.val_a")
    assert edit.current_word() == "metrics.val_a"
    assert edit.completer_.completionCount() == 1
    assert edit.completer_.currentCompletion() == "metrics.val_acc"
    popup = edit.completer_.popup()
    assert popup.isVisible()
    popup.setCurrentIndex(edit.completer_.completionModel().index(0, 0))
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert edit.text() == "status = finished and metrics.val_acc "
    edit.clear()
    qtbot.keyClicks(edit, "params.bat")
    assert edit.completer_.currentCompletion() == "params.batch size"
    edit.insert_completion(edit.completer_.currentCompletion())
    assert edit.text() == "params.`batch size` "


def test_every_example_in_the_filter_help_is_valid():
    import re

    from mlops_desktop.gui.views.experiments_view import QUERY_HELP
    from mlops_desktop.tracking.query import compile_filter

    examples = [line.strip() for line in QUERY_HELP.splitlines()[1:-1]]
    for line in examples:
        for example in re.split(r"\s{3,}", re.sub(r"\(\.last.*\)", "", line)):
            compile_filter(example.strip())
