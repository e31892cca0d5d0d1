"""Tasks panel (progress and cancel), notifications, in-app log, theme switching."""

from __future__ import annotations

import logging
import threading
import time

from mlops_desktop.gui.tasks import CANCELLED


def test_tasks_panel_lists_work_and_cancels_it(window, ctx, qtbot):
    started = threading.Event()

    def job(*, progress):
        started.set()
        for i in range(2000):
            progress.update(i / 2000, f"item {i}")
            time.sleep(0.002)
        return None

    task = ctx.tasks.submit(job, title="Ingest lake")
    assert started.wait(5)
    qtbot.waitUntil(lambda: task.fraction > 0 and bool(window.tasks_panel.rows()), timeout=5000)
    row = window.tasks_panel.rows()[0]
    assert row.label.text() == "Ingest lake"
    assert "running task" in window.task_button.text()
    qtbot.waitUntil(lambda: row.bar.value() > 0, timeout=5000)
    row.cancel.click()
    qtbot.waitUntil(lambda: task.state == CANCELLED, timeout=5000)
    assert "cancelled" in row.message.text() and not row.cancel.isEnabled()
    assert window.task_button.text() == "No tasks"


def test_notifications_and_log_view(window, ctx, qtbot):
    ctx.notifications.error("Deploy failed", "port 8080 is in use")
    assert window.notifications_panel.item(0).text().endswith("Deploy failed\nport 8080 is in use")
    assert "port 8080 is in use" in window.status_message.text()
    logging.getLogger("mlops_desktop.test").warning("disk almost full")
    qtbot.waitUntil(lambda: "disk almost full" in window.log_view.toPlainText(), timeout=2000)


def test_theme_switch(window, ctx, qapp):
    from mlops_desktop.gui import theme

    window.set_theme("dark")
    assert theme.current_mode() == "dark" and ctx.settings.value("theme") == "dark"
    assert qapp.palette().color(qapp.palette().ColorRole.Window).lightness() < 80
    window.set_theme("light")
    assert theme.current_mode() == "light"


def test_quick_tasks_are_not_listed_but_failures_are(window, ctx, qtbot):
    def quick(*, progress):
        return 1

    def broken(*, progress):
        raise OSError(113, "No route to host", "gpu-1")

    ok = ctx.tasks.submit(quick, title="Refresh")
    bad = ctx.tasks.submit(broken, title="Inspect gpu-1")
    qtbot.waitUntil(lambda: not ok.running and not bad.running, timeout=5000)
    qtbot.wait(400)
    titles = [r.label.text() for r in window.tasks_panel.rows()]
    assert titles == ["Inspect gpu-1"]
    assert "no route to host: gpu-1" in window.tasks_panel.rows()[0].message.text()
