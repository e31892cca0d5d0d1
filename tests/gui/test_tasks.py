"""The task runner: results, progress only on change, cancel, errors routed to the notification channel."""

from __future__ import annotations

import threading
import time

from mlops_desktop.errors import UsageError
from mlops_desktop.gui.tasks import CANCELLED, FAILED, SUCCEEDED


def test_result_and_progress_arrive_in_gui_thread(ctx, qtbot):
    seen_threads = []
    progress_values = []

    def job(n, *, progress):
        for i in range(n):
            progress.update(i / n, "working")
            progress.update(i / n, "working")  # unchanged: must not be reported twice
        return threading.get_ident()

    task = ctx.tasks.submit(job, 5, title="count")
    task.progressed.connect(lambda f, m: progress_values.append((f, m)))
    task.succeeded.connect(lambda r: seen_threads.append((r, threading.get_ident())))
    qtbot.waitUntil(lambda: task.state == SUCCEEDED, timeout=5000)
    worker, gui = seen_threads[0]
    assert worker != gui == threading.get_ident()
    assert len(progress_values) == len(set(progress_values))
    assert any(n.level == "success" and "count" in n.title for n in ctx.notifications.history)


def test_cancel_stops_the_job(ctx, qtbot):
    started = threading.Event()

    def job(*, progress):
        started.set()
        for _ in range(1000):
            time.sleep(0.005)
            progress.check()
        return "finished anyway"

    task = ctx.tasks.submit(job, title="long")
    assert started.wait(5)
    task.cancel()
    qtbot.waitUntil(lambda: task.state == CANCELLED, timeout=5000)
    assert task.result is None


def test_work_that_finishes_despite_a_late_cancel_still_delivers_its_result(ctx, qtbot):
    """A cancel that arrives after the last check cannot undo the work (e.g. a committed version): say so."""
    release, past_checks = threading.Event(), threading.Event()
    results = []

    def job(*, progress):
        progress.check()
        past_checks.set()
        release.wait(5)  # past its last cancellation point
        return "stored"

    task = ctx.tasks.submit(job, title="commit", on_done=results.append)
    assert past_checks.wait(5)
    task.cancel()
    release.set()
    qtbot.waitUntil(lambda: task.state != "running", timeout=5000)
    assert task.state == SUCCEEDED and results == ["stored"]


def test_errors_go_to_the_notification_channel(ctx, qtbot):
    def user_error(*, progress):
        raise UsageError("column 'x' missing in file data.csv")

    def bug(*, progress):
        return 1 / 0

    t1 = ctx.tasks.submit(user_error, title="Import")
    t2 = ctx.tasks.submit(bug, title="Compute")
    qtbot.waitUntil(lambda: t1.state == FAILED and t2.state == FAILED, timeout=5000)
    errors = {n.title: n for n in ctx.notifications.history if n.level == "error"}
    assert errors["Import"].message == "column 'x' missing in file data.csv"
    assert errors["Import"].details == ""
    assert "a bug" in errors["Compute"].message and "ZeroDivisionError" not in errors["Compute"].message
    assert "Traceback" in errors["Compute"].details and "ZeroDivisionError" in errors["Compute"].details


def test_same_key_replaces_the_older_task(ctx, qtbot):
    release = threading.Event()
    results = []

    def slow(value, *, progress):
        release.wait(5)
        return value

    first = ctx.tasks.submit(slow, "old", key="view", on_done=results.append, quiet=True)
    second = ctx.tasks.submit(slow, "new", key="view", on_done=results.append, quiet=True)
    release.set()
    qtbot.waitUntil(lambda: not first.running and not second.running, timeout=5000)
    assert results == ["new"]
    assert first.discarded
