"""Worker threads keep their thread-locals between tasks: one SQLite connection per pool thread, not per task."""

from __future__ import annotations

import threading

from gui_helpers import make_runs, wait_idle


def test_thread_locals_survive_from_task_to_task(ctx, qtbot):
    local = threading.local()
    seen: list[tuple[int, bool]] = []

    def task(*, progress):
        seen.append((threading.get_ident(), getattr(local, "mark", False)))
        local.mark = True

    for _ in range(20):
        ctx.tasks.submit(task, quiet=True)
        wait_idle(qtbot, ctx)
    by_thread: dict[int, list[bool]] = {}
    for ident, had in seen:
        by_thread.setdefault(ident, []).append(had)
    assert all(marks[1:] == [True] * (len(marks) - 1) for marks in by_thread.values())


def test_many_store_tasks_open_one_connection_per_pool_thread(ctx, qtbot):
    """Issue 14 cost: every task opened a SQLite connection that was never closed (140 -> 950 MB)."""
    store = ctx.workspace.tracking
    make_runs(store, 5)
    for _ in range(60):
        ctx.tasks.submit(lambda *, progress: store.search_runs(limit=5), quiet=True)
    wait_idle(qtbot, ctx)
    for _ in range(60):
        ctx.tasks.submit(lambda *, progress: store.search_runs(limit=5), quiet=True)
        wait_idle(qtbot, ctx)
    connections = len(ctx.workspace.db._all)
    assert connections <= ctx.tasks.pool.maxThreadCount() + 1, f"{connections} SQLite connections for 120 tasks"


def test_finished_tasks_leave_nothing_behind(ctx, qtbot):
    """Issue 14 cost: PySide's pool kept some QRunnable subclasses alive after they ran, with their arguments."""
    import gc

    from mlops_desktop.gui.tasks import _Runnable, _WorkerSignals

    gc.collect()
    runnables_before = sum(isinstance(o, _Runnable) for o in gc.get_objects())   # other tests' failed tasks
    signals_before = sum(isinstance(o, _WorkerSignals) for o in gc.get_objects())
    payload = [bytearray(1000) for _ in range(1)]
    for i in range(150):
        ctx.tasks.submit(lambda data, *, progress: len(data), payload, quiet=True, key="same" if i % 2 else None)
    wait_idle(qtbot, ctx)
    qtbot.wait(200)
    gc.collect()
    assert sum(isinstance(o, _Runnable) for o in gc.get_objects()) == runnables_before
    signals_after = sum(isinstance(o, _WorkerSignals) for o in gc.get_objects())
    assert signals_after - signals_before <= ctx.tasks._keep_ended + 2   # the recently ended tasks the panel lists
