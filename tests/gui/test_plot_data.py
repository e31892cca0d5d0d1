"""plot_data (no Qt): cached histories; a live series is extended with its new points, never re-read whole."""

from __future__ import annotations

import numpy as np

from mlops_desktop.gui.plot_data import HistoryCache, load_series
from mlops_desktop.tracking.downsample import minmax_indices


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
        full = store.metric_history(run.uuid, "loss")
        idx = minmax_indices(full.steps, full.values, 500)
        np.testing.assert_array_equal(x, full.steps[idx])
        np.testing.assert_array_equal(y, full.values[idx])
    assert recording.calls == [("full", 1000), ("tail", 500), ("tail", 70_000), ("tail", 1)]
    assert 99.0 in y.tolist()
    # nothing new: one tail query that finds nothing, whatever count the caller believed
    load_series(recording, run.uuid, "loss", 500, "step", None, None, run.start_time, cache, 3, live=True)
    assert recording.calls[4:] == [("tail", 0)]
