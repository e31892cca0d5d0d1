"""plot_data (no Qt): cached histories; a live series is extended with its new points, never re-read whole."""

from __future__ import annotations

import numpy as np

from mlops_desktop.gui.plot_data import HistoryCache, load_series


class RecordingStore:
    """The real store, with a note of which read each call made (to check that a live update reads the tail)."""

    def __init__(self, store):
        self.store = store
        self.calls: list[tuple[str, int]] = []

    def metric_history(self, uuid, key):
        hist = self.store.metric_history(uuid, key)
        self.calls.append(("full", len(hist)))
        return hist

    def metric_history_tail(self, uuid, key, start):
        hist = self.store.metric_history_tail(uuid, key, start)
        self.calls.append(("tail", len(hist)))
        return hist


def test_live_series_grows_from_its_tail_and_matches_a_full_read(ws):
    store = ws.tracking
    exp = store.get_or_create_experiment("live")
    run = store.create_run(exp.id)
    rng = np.random.default_rng(0)
    recording, cache = RecordingStore(store), HistoryCache()
    logged = 0
    for size in (1000, 500, 70_000, 1):
        steps = np.arange(logged, logged + size)
        values = rng.random(size)
        if logged == 1500:
            values[12_345] = 99.0  # a spike that arrives in a live update
        store.log_metric_arrays(run.uuid, "loss", steps, steps * 10, values)
        logged += size
        count = store.get_run(run.uuid).metrics["loss"].count
        x, y = load_series(recording, run.uuid, "loss", 500, "step", None, None, run.start_time, cache, count,
                           live=True)
        # the same points as a fresh read of the whole series (grown pyramid == pyramid of the whole)
        fx, fy = load_series(store, run.uuid, "loss", 500, "step", None, None, run.start_time, HistoryCache(), count)
        np.testing.assert_array_equal(x, fx)
        np.testing.assert_array_equal(y, fy)
        full = store.metric_history(run.uuid, "loss")
        assert y.max() == full.values.max() and y.min() == full.values.min()
    assert recording.calls == [("full", 1000), ("tail", 500), ("tail", 70_000), ("tail", 1)]
    assert 99.0 in y.tolist()
    # nothing new: one tail query that finds nothing, whatever count the caller believed
    load_series(recording, run.uuid, "loss", 500, "step", None, None, run.start_time, cache, 3, live=True)
    assert recording.calls[4:] == [("tail", 0)]


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


class RacingConnection:
    """The worker's real connection; right after the tail read has listed the chunks, another process's write
    merges the tail chunk (as a live trainer's next flush does: the old chunk row is replaced by a new one)."""

    def __init__(self, conn, write):
        self.conn, self.write, self.fired = conn, write, False

    def execute(self, sql, params=()):
        cur = self.conn.execute(sql, params)
        if sql.startswith("SELECT id, n FROM metric_chunks") and not self.fired:
            rows = cur.fetchall()
            self.fired = True
            self.write()
            return _Rows(rows)
        return cur

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_live_tail_read_survives_a_concurrent_tail_merge(ws, monkeypatch):
    """Issue 14 (3): concurrent live runs showed 'need at least one array to concatenate'."""
    from mlops_desktop.workspace import Workspace

    store = ws.tracking
    exp = store.get_or_create_experiment("live")
    run = store.create_run(exp.id)
    store.log_metric_arrays(run.uuid, "loss", np.arange(10), np.arange(10), np.ones(10))
    cache = HistoryCache()
    load_series(store, run.uuid, "loss", 100, "step", None, None, 0.0, cache, 10, live=True)
    store.log_metric_arrays(run.uuid, "loss", np.arange(10, 15), np.arange(10, 15), np.full(5, 2.0))
    # a second live run logs too: its chunk takes the next row id, so a merged tail chunk gets a new id
    neighbour = store.create_run(exp.id)
    store.log_metric_arrays(neighbour.uuid, "loss", np.arange(3), np.arange(3), np.ones(3))
    other = Workspace.open(ws.root)
    real = ws.db.connect()
    racing = RacingConnection(real, lambda: other.tracking.log_metric_arrays(
        run.uuid, "loss", np.array([15]), np.array([15]), np.array([3.0])))
    monkeypatch.setattr(ws.db, "connect", lambda: racing)
    try:
        x, y = load_series(store, run.uuid, "loss", 100, "step", None, None, 0.0, cache, 15, live=True)
    finally:
        other.close()
    assert racing.fired
    assert x.tolist()[:15] == list(range(15)) and y.tolist()[10:15] == [2.0] * 5
    monkeypatch.undo()
    x, y = load_series(store, run.uuid, "loss", 100, "step", None, None, 0.0, cache, 16, live=True)
    assert x.tolist() == list(range(16)) and y[-1] == 3.0


def test_a_failed_read_comes_back_in_words(ws):
    from mlops_desktop.gui.plot_data import LoadProblem, load_series_or_problem

    class Broken:
        def metric_history(self, uuid, key):
            raise ValueError("need at least one array to concatenate")

    out = load_series_or_problem(Broken(), "abc", "loss", 100, "step", None, None, 0.0, HistoryCache(), 5)
    assert isinstance(out, LoadProblem) and "ValueError" not in out.message and "log" in out.message
    out = load_series_or_problem(ws.tracking, "nope", "loss", 100, "step", None, None, 0.0, HistoryCache(), 5)
    assert isinstance(out, LoadProblem) and "no run" in out.message
