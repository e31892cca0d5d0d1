"""Property tests: the downsampler never hides an extreme; spool round trips are exact."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlops_desktop.tracking.downsample import minmax_indices
from mlops_desktop.tracking.packing import decode_float64, decode_int64, encode_float64, encode_int64

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(values=hnp.arrays(np.float64, st.integers(1, 3000), elements=finite | st.just(np.nan)),
       buckets=st.integers(1, 300), gaps=st.booleans())
@settings(max_examples=200, deadline=None)
def test_every_bucket_keeps_its_min_and_max(values, buckets, gaps):
    n = values.shape[0]
    x = np.cumsum(np.where(np.arange(n) % 7 == 0, 5, 1)) if gaps else np.arange(n)
    idx = minmax_indices(x, values, buckets)
    assert np.all(np.diff(idx) > 0), "indices are sorted and unique"
    kept = set(idx.tolist())
    if n <= max(4 * buckets, 8):
        assert kept == set(range(n))
        return
    bounds = np.linspace(x[0], x[-1], buckets + 1)[1:-1]
    edges = np.concatenate(([0], np.searchsorted(x, bounds, side="left"), [n]))
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        seg = values[a:b]
        if np.all(np.isnan(seg)):
            continue
        assert np.nanmin(seg) in values[list(kept & set(range(a, b)))]
        assert np.nanmax(seg) in values[list(kept & set(range(a, b)))]
    assert len(idx) <= 4 * buckets + 2


@given(hnp.arrays(np.int64, st.integers(0, 500), elements=st.integers(-2**62, 2**62)))
@settings(max_examples=200)
def test_int_codec_round_trip(values):
    np.testing.assert_array_equal(decode_int64(encode_int64(values), values.shape[0]), values)


@given(hnp.arrays(np.float64, st.integers(0, 500)))
def test_float_codec_round_trip_is_bit_exact(values):
    assert decode_float64(encode_float64(values)).tobytes() == values.tobytes()


records = st.lists(st.tuples(st.sampled_from(["loss", "acc", "lr", "grad norm", "é/ü"]),
                             finite | st.just(float("nan")), st.integers(0, 10**9)), min_size=1, max_size=200)


@given(points=records, params=st.dictionaries(st.text(min_size=1, max_size=20), st.integers() | st.text(max_size=30),
                                              max_size=5))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_spool_round_trip_is_exact_and_idempotent(tmp_path_factory, points, params):
    import mlops_desktop.tracking as mt
    from mlops_desktop.tracking.spool import import_spool
    from mlops_desktop.workspace import Workspace

    root = tmp_path_factory.mktemp("spool")
    spool = root / "run.spool"
    with mt.start_run(experiment="prop", spool=spool, params=params, capture_git=False) as run:
        for key, value, step in points:
            mt.log_metric(key, value, step=step)
    ws = Workspace.open(root / "ws")
    try:
        import_spool(ws.tracking, spool)
        assert import_spool(ws.tracking, spool).records == 0
        got = ws.tracking.get_run(run.uuid)
        assert got.params == {k: str(v) for k, v in params.items()}
        for key in {k for k, _, _ in points}:
            want = [(s, v) for k, v, s in points if k == key]
            hist = ws.tracking.metric_history(run.uuid, key)
            assert hist.steps.tolist() == [s for s, _ in want]
            np.testing.assert_array_equal(hist.values, np.array([v for _, v in want]))
    finally:
        ws.close()
