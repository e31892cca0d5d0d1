"""The main window: areas from existing modules only, navigation, palette, remembered layout, crash reports."""

from __future__ import annotations

import sys

from gui_helpers import make_runs, wait_idle

from mlops_desktop.gui import crash
from mlops_desktop.gui.views.base import available_areas


def test_only_existing_area_modules_are_shown(ctx, qtbot):
    from mlops_desktop.gui.app import make_window

    modules = [("nothing", "mlops_desktop.gui.views.no_such_view"),
               ("experiments", "mlops_desktop.gui.views.experiments_view")]
    assert [c.area_id for c in available_areas(modules)] == ["experiments"]
    win = make_window(ctx, modules)
    qtbot.addWidget(win)
    assert win.area_ids() == ["experiments"]
    assert win.sidebar.count() == 1


def test_navigation_and_palette_jump_to_a_run(window, ctx, qtbot):
    uuids = make_runs(ctx.workspace.tracking, 30)
    window.navigate("experiments")
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    assert window.current_area_id() == "experiments"
    palette = window.open_palette()
    palette.edit.setText("run-0007")
    labels = [e.label for e in palette.entries]
    assert "Run: run-0007" in labels
    palette.list.setCurrentRow(labels.index("Run: run-0007"))
    palette.activate_current()
    wait_idle(qtbot, ctx)
    assert view.current_run() is not None and view.current_run().uuid == uuids[7]
    qtbot.waitUntil(lambda: view.detail.run is not None and view.detail.run.uuid == uuids[7], timeout=5000)
    palette = window.open_palette()
    palette.edit.setText("Experiment: exp")
    assert palette.entries[0].label == "Experiment: exp"
    palette.list.setCurrentRow(0)
    palette.activate_current()
    wait_idle(qtbot, ctx)
    exp_id = ctx.workspace.tracking.get_experiment_by_name("exp").id
    assert view.current_experiment_id() == exp_id
    assert view.model.experiment_ids == [exp_id]


def test_unknown_area_is_a_warning_not_a_crash(window, ctx):
    window.navigate("deployments-that-do-not-exist")
    assert ctx.notifications.history[-1].level == "warning"


def test_layout_and_columns_are_remembered(ctx, qtbot):
    from mlops_desktop.gui.app import make_context, make_window

    make_runs(ctx.workspace.tracking, 5)
    win = make_window(ctx)
    qtbot.addWidget(win)
    win.resize(700, 500)
    view = win.area("experiments")
    wait_idle(qtbot, ctx)
    view.toggle_column("param", "batch", True)
    view.vsplit.setSizes([100, 500])
    view.table.horizontalHeader().resizeSection(1, 333)   # the user widens "Name"
    view.apply_query()
    wait_idle(qtbot, ctx)
    assert view.table.columnWidth(1) == 333, "a new query must not undo the user's column width"
    win.close()
    ctx2 = make_context(ctx.workspace)
    win2 = make_window(ctx2)
    qtbot.addWidget(win2)
    assert (win2.size().width(), win2.size().height()) == (700, 500)
    view2 = win2.area("experiments")
    assert "batch" in view2.model.chosen("param")
    assert view2.vsplit.sizes()[0] < view2.vsplit.sizes()[1]
    wait_idle(qtbot, ctx2)
    assert view2.table.columnWidth(1) == 333
    win2.close()
    ctx2.tasks.shutdown(3000)


def test_crash_report_written_and_shown_next_start(ws, tmp_path):
    handler = crash.CrashHandler(ws.paths.crash_reports)
    try:
        raise ValueError("boom at start-up")
    except ValueError as exc:
        path = handler.write_report(exc)  # what the start-up code does when an exception stops the app
    reports = crash.pending_reports(ws.paths.crash_reports)
    assert reports == [path] and "boom at start-up" in reports[0].read_text()
    crash.mark_shown(reports)
    assert crash.pending_reports(ws.paths.crash_reports) == []


def test_exception_hook_notifies_and_writes_no_report(ws):
    handler = crash.CrashHandler(ws.paths.crash_reports)
    seen = []
    handler.install()
    handler.on_exception = seen.append
    try:
        try:
            raise ValueError("boom in a slot")
        except ValueError:
            sys.excepthook(*sys.exc_info())
    finally:
        handler.uninstall()
    assert isinstance(seen[0], ValueError) and handler.caught == 1
    assert crash.pending_reports(ws.paths.crash_reports) == []


def test_fatal_crash_log_becomes_a_report(ws):
    ws.paths.crash_reports.mkdir(parents=True, exist_ok=True)
    (ws.paths.crash_reports / crash.FAULT_LOG).write_text("Fatal Python error: Segmentation fault\n")
    reports = crash.pending_reports(ws.paths.crash_reports)
    assert len(reports) == 1 and "Segmentation fault" in reports[0].read_text()


def test_run_management_rename_tag_move_delete(window, ctx, qtbot, monkeypatch):
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    uuids = make_runs(ctx.workspace.tracking, 3)
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    store = ctx.workspace.tracking
    run = store.get_run(uuids[0])
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("renamed", True))
    view.rename_run(run)
    wait_idle(qtbot, ctx)
    assert store.get_run(uuids[0]).name == "renamed"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("stage=prod", True))
    view.tag_runs([run])
    wait_idle(qtbot, ctx)
    assert store.get_run(uuids[0]).tags["stage"] == "prod"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("no equals sign", True))
    view.tag_runs([run])
    assert ctx.notifications.history[-1].level == "error"
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("other-exp", True))
    view.move_runs([run])
    wait_idle(qtbot, ctx)
    assert store.get_run(uuids[0]).experiment_id == store.get_experiment_by_name("other-exp").id
    view.table.selectRow(view.model.row_of(uuids[1]))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    view.delete_selected()
    wait_idle(qtbot, ctx)
    assert store.search_runs().total == 3
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    view.delete_selected()
    wait_idle(qtbot, ctx)
    assert uuids[1] not in {r.uuid for r in store.search_runs().runs}
    qtbot.waitUntil(lambda: view.model.row_of(uuids[1]) < 0, timeout=5000)


def test_crash_report_dialog_at_start(window, ctx):
    crash_dir = ctx.workspace.paths.crash_reports
    crash_dir.mkdir(parents=True, exist_ok=True)
    (crash_dir / "crash-20260101-000000-1.txt").write_text("Traceback: KeyError 'lr' in runs_model.py\n")
    reports = crash.pending_reports(crash_dir)
    window.show_crash_reports(reports)
    assert "KeyError 'lr'" in window.crash_box.detailedText()
    assert ctx.notifications.history[-1].level == "warning"
    window.crash_box.close()


def test_broken_area_shows_a_message_not_a_crash(ctx, qtbot, tmp_path, monkeypatch):
    import types

    from mlops_desktop.gui.app import make_window

    module = types.ModuleType("mlops_desktop.gui.views.broken_test_view")

    from PySide6.QtWidgets import QWidget

    class BrokenView(QWidget):
        area_id, title, icon_name = "broken", "Broken", ""

        def __init__(self, ctx, parent=None):
            raise RuntimeError("missing table 'models'")

    BrokenView.__module__ = module.__name__
    module.AREA = BrokenView
    monkeypatch.setitem(sys.modules, module.__name__, module)
    win = make_window(ctx, [("broken", module.__name__)])
    qtbot.addWidget(win)
    win.navigate("broken")
    assert "The Broken area could not open" in win.area("broken").text()
    note = ctx.notifications.history[-1]
    assert note.level == "error" and "missing table 'models'" in note.details  # the bug's words: in the details


def test_empty_workspace_says_how_to_start_and_demo_action_fills_it(window, ctx, qtbot):
    """A first start explains itself; File ▸ Fill with demo data runs the demo in a worker and refreshes."""
    from mlops_desktop.gui.charts_panel import ChartsPanel
    from mlops_desktop.gui.tasks import SUCCEEDED

    window.navigate("experiments")
    charts = window.area("experiments").findChildren(ChartsPanel)[0]
    assert "No runs in this workspace yet" in charts.empty.text()
    window.fill_demo()
    task = next(t for t in ctx.tasks.tasks if t.title == "Fill with demo data")
    # ~60 s on a quiet machine; over 120 s when 8 engineers share the 2 cores
    qtbot.waitUntil(lambda: task.state != "running", timeout=420_000)
    assert task.state == SUCCEEDED, task.error
    assert ctx.workspace.tracking.search_runs().total >= 20
    model = window.area("experiments").model
    qtbot.waitUntil(lambda: model.rowCount() >= 20, timeout=10_000)  # the area refreshed itself
    assert charts._nothing_selected_text().startswith("Select one or more runs")
