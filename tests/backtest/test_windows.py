"""Window arithmetic against hand-computed plans: expanding, sliding, gap, stride, ragged last window, row counts."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_desktop.backtest.windows import Window, parse_length, plan, row_bounds_to_values
from mlops_desktop.errors import UsageError

DAY = 86_400_000_000  # microseconds, the unit of a datetime column


def spans(windows):
    return [(w.train_start, w.train_end, w.test_start, w.test_end, w.ragged) for w in windows]


def test_lengths_parse_with_units():
    assert parse_length("7d", "test").seconds == 7 * 86400
    assert parse_length("1h", "test").in_units(1e-6) == 3600 * 1_000_000
    assert parse_length("2w", "stride").in_units(86400) == 14  # a date column counts days
    assert parse_length("90s", "gap").in_units(1e-3) == 90_000
    rows = parse_length("500rows", "test")
    assert (rows.kind, rows.amount) == ("rows", 500)
    assert parse_length("12r", "test").kind == "rows"
    assert parse_length("30", "test").in_units(None) == 30
    assert parse_length(None, "gap") is None
    assert parse_length("0d", "gap", allow_zero=True).amount == 0


@pytest.mark.parametrize("text,needle", [("7x", "is not a length"), ("-1d", "is not a length"),
                                         ("0d", "more than zero"), ("1.5rows", "whole number")])
def test_bad_lengths_name_the_field(text, needle):
    with pytest.raises(UsageError, match=needle) as info:
        parse_length(text, "test window")
    assert "test window" in str(info.value)


def test_units_must_fit_the_time_column():
    with pytest.raises(UsageError, match="holds dates or times"):
        parse_length("30", "test").in_units(1e-6)
    with pytest.raises(UsageError, match="holds plain numbers"):
        parse_length("7d", "test").in_units(None)


def test_expanding_replay_from_the_first_row():
    # 21 days of data, weekly windows, no train length: expanding, the first window has no training data
    ws = plan(0, 21 * DAY, test=7 * DAY, stride=7 * DAY)
    assert spans(ws) == [(None, None, 0, 7 * DAY, False),
                         (0, 7 * DAY, 7 * DAY, 14 * DAY, False),
                         (0, 14 * DAY, 14 * DAY, 21 * DAY, False)]
    assert [w.index for w in ws] == [0, 1, 2]


def test_sliding_with_gap_and_ragged_last_window():
    # data [0, 100); train 30, gap 5, test 20, stride 20: the first test starts at 35
    ws = plan(0, 100, test=20, stride=20, train=30, gap=5)
    assert spans(ws) == [(0, 30, 35, 55, False), (20, 50, 55, 75, False), (40, 70, 75, 95, False),
                         (60, 90, 95, 115, True)]
    assert len(plan(0, 100, test=20, stride=20, train=30, gap=5, keep_ragged=False)) == 3


def test_expanding_with_initial_train_gap_and_short_stride():
    # initial train 10, gap 2, test 5, stride 3 over [100, 125)
    ws = plan(100, 125, test=5, stride=3, initial=10, gap=2)
    assert spans(ws) == [(100, 110, 112, 117, False), (100, 113, 115, 120, False), (100, 116, 118, 123, False),
                         (100, 119, 121, 126, True), (100, 122, 124, 129, True)]


def test_stride_longer_than_test_leaves_holes():
    ws = plan(0, 10, test=2, stride=4)
    assert [(w.test_start, w.test_end) for w in ws] == [(0, 2), (4, 6), (8, 10)]
    assert not ws[-1].ragged


def test_sliding_train_cut_at_the_start_with_initial_shorter_than_train():
    ws = plan(0, 30, test=10, stride=10, train=15, initial=5)
    assert spans(ws) == [(0, 5, 5, 15, False), (0, 15, 15, 25, False), (10, 25, 25, 35, True)]


def test_gap_eats_the_first_train_window():
    ws = plan(0, 6, test=2, stride=2, gap=2)
    assert spans(ws) == [(None, None, 2, 4, False), (0, 2, 4, 6, False)]


def test_bad_plans_refused():
    with pytest.raises(UsageError, match="stride"):
        plan(0, 10, test=2, stride=0)
    with pytest.raises(UsageError, match="gap"):
        plan(0, 10, test=2, stride=2, gap=-1)
    with pytest.raises(UsageError, match="more than 10 windows"):
        plan(0, 1000, test=1, stride=1, max_windows=10)
    assert plan(10, 10, test=1, stride=1) == []


def test_row_counts_become_time_bounds_without_splitting_equal_times():
    times = np.array([0, 1, 2, 3, 3, 3, 4, 5, 6, 7], dtype=np.int64)  # sorted, a tie of three rows at 3
    rows = plan(0, len(times), test=3, stride=3, train=4)
    assert spans(rows) == [(0, 4, 4, 7, False), (3, 7, 7, 10, False)]
    values = row_bounds_to_values(rows, times, end_value=8)
    # position 4 is the second row at t=3: the bound moves to t=3, so all three tied rows are tested together (4 rows, not 3)
    assert values == [Window(0, 0, 3, 3, 5, False), Window(1, 3, 5, 5, 8, False)]
