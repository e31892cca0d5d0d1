"""The live refresh's pace (live.RefreshPace) and the growing history behind live series (growing.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_desktop.gui.growing import GrowingHistory
from mlops_desktop.gui.live import RefreshPace
from mlops_desktop.tracking.entities import MetricHistory


class Clocks:
    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 0.0


def _pace(budget: float = 0.1) -> tuple[RefreshPace, Clocks]:
    c = Clocks()
    return RefreshPace(0.025, 0.25, budget, clock=lambda: c.wall, cpu=lambda: c.cpu), c


def _stream(pace: RefreshPace, c: Clocks, cost_s: float, refreshes: int) -> None:
    for _ in range(refreshes):
        c.wall += max(pace.wait(c.wall), 0.0) + 0.001
        pace.refreshed()
        c.cpu += cost_s


def test_cheap_refreshes_come_at_the_shortest_wait():
    pace, c = _pace()
    _stream(pace, c, 0.001, 50)      # 1 ms each: 25 ms apart is 4 % of a core
    assert pace.interval == pytest.approx(0.025)


def test_costly_refreshes_are_spaced_to_the_budget():
    pace, c = _pace(budget=0.1)
    _stream(pace, c, 0.012, 50)      # 12 ms each: 120 ms apart keeps 10 % of a core
    assert pace.interval == pytest.approx(0.12, rel=0.02)
    share = 0.012 / (pace.interval + 0.001)
    assert share <= 0.1


def test_the_wait_never_passes_its_bounds_and_recovers():
    pace, c = _pace()
    _stream(pace, c, 1.0, 20)        # a refresh of a second (a huge zoom): at most the longest wait
    assert pace.interval == pytest.approx(0.25)
    _stream(pace, c, 0.0005, 20)     # cheap again: back to the shortest within a few refreshes
    assert pace.interval == pytest.approx(0.025)


def test_a_closed_plot_does_not_count_as_negative_cost():
    pace, c = _pace()
    _stream(pace, c, 0.02, 20)
    slow = pace.interval
    c.cpu = 0.0                      # the plots' running total restarted (plots rebuilt)
    c.wall += pace.interval
    pace.refreshed()
    assert pace.interval <= slow and pace.interval >= 0.025
    assert pace.wait(c.wall) == pytest.approx(pace.interval)


def _hist(start: int, n: int) -> MetricHistory:
    steps = np.arange(start, start + n, dtype=np.int64)
    return MetricHistory("loss", steps, steps * 10, steps.astype(np.float64) / 2)


def test_growing_writes_only_the_tail_and_keeps_every_earlier_view():
    first, buf = GrowingHistory.grown(_hist(0, 0), _hist(0, 3000))
    capacity = buf.capacity
    second, buf2 = GrowingHistory.grown(first, _hist(3000, 10), buf)
    assert buf2 is buf and buf.capacity == capacity          # written in place, nothing copied
    assert second.values.base is first.values.base
    np.testing.assert_array_equal(second.steps, np.arange(3010))
    np.testing.assert_array_equal(second.values, np.arange(3010) / 2)
    assert len(first) == 3000 and first.steps[-1] == 2999   # the earlier view is as it was

    # a second growth from the older view may not write over the first one's tail: it copies
    other, buf3 = GrowingHistory.grown(first, MetricHistory(
        "loss", np.array([7, 8], dtype=np.int64), np.array([70, 80], dtype=np.int64), np.array([-1.0, -2.0])), buf)
    assert buf3 is not buf
    np.testing.assert_array_equal(second.values[3000:], np.arange(3000, 3010) / 2)   # untouched
    np.testing.assert_array_equal(other.values[-2:], [-1.0, -2.0])


def test_growing_past_the_capacity_moves_to_bigger_buffers():
    h, buf = GrowingHistory.grown(_hist(0, 0), _hist(0, 10))
    for start in range(10, 5000, 250):
        h, buf = GrowingHistory.grown(h, _hist(start, 250), buf)
    assert len(h) == 5010 and buf.capacity >= 5010
    np.testing.assert_array_equal(h.steps, np.arange(5010))
    assert buf.nbytes == buf.capacity * 24
