"""Drift from a reference sketch against scipy on the raw data, Evidently's default choices, planted drift."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial import distance

from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring.drift import compute_drift, feature_drift, sturges_edges
from mlops_desktop.monitoring.sketch import RAW_LIMIT, Sketch, build_sketch, sketch_series

RNG = np.random.default_rng(7)


def _sketch(values, name="x"):
    return sketch_series(pl.Series(name, values))


def test_sketch_keeps_exact_moments_and_round_trips_through_json():
    values = RNG.normal(3.0, 2.0, 50_000)
    values[::100] = np.nan
    sk = build_sketch(pl.DataFrame({"x": values, "c": RNG.choice(["a", "b", "c"], 50_000)}))
    col = sk.columns["x"]
    finite = values[np.isfinite(values)]
    assert col.count == len(finite) and col.nulls == 500
    assert col.mean == pytest.approx(finite.mean()) and col.std == pytest.approx(finite.std())
    assert col.minimum == finite.min() and col.maximum == finite.max()
    assert col.raw is None and len(col.quantiles) == 1000
    assert sum(sk.columns["c"].frequencies.values()) == 50_000
    again = Sketch.from_dict(json.loads(json.dumps(sk.to_dict())))
    assert again.columns["x"].quantiles == col.quantiles and again.rows == 50_000


def test_ks_on_a_small_reference_equals_scipy_on_the_raw_values():
    ref, cur = RNG.normal(0, 1, 800), RNG.normal(0.2, 1, 3000)
    result = feature_drift(_sketch(ref), cur)
    assert result.method == "ks"  # Evidently's choice for <= 1,000 reference rows with > 5 values
    assert result.score == pytest.approx(stats.ks_2samp(ref, cur).pvalue, rel=1e-12)
    assert result.drifted == (result.score <= 0.05)


def test_ks_from_the_sketch_of_a_large_reference_matches_scipy():
    ref, cur = RNG.normal(0, 1, 200_000), RNG.normal(0.01, 1, 20_000)
    result = feature_drift(_sketch(ref), cur, method="ks")
    expected = stats.ks_2samp(ref, cur, method="asymp").pvalue
    assert abs(result.score - expected) < 0.05, (result.score, expected)
    shifted = feature_drift(_sketch(ref), cur + 0.1, method="ks")
    assert shifted.score < 1e-6 and shifted.drifted


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_normed_wasserstein_from_the_sketch_matches_scipy(shift):
    ref, cur = RNG.lognormal(0, 0.5, 300_000), RNG.lognormal(shift, 0.5, 50_000)
    result = feature_drift(_sketch(ref), cur)
    assert result.method == "wasserstein"
    expected = stats.wasserstein_distance(ref, cur) / ref.std()
    assert result.score == pytest.approx(expected, abs=0.003)
    assert result.drifted == (expected >= 0.1)


def _evidently_binned(ref, cur, fill):
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    r, c = np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur)
    if fill:
        for arr in (r, c):
            small = arr[arr != 0].min()
            np.place(arr, arr == 0, small / 1e6 if small <= 0.0001 else 0.0001)
    return r, c


def test_sturges_edges_equal_numpys():
    data = RNG.normal(0, 1, 12_345)
    np.testing.assert_allclose(sturges_edges(data.min(), data.max(), len(data)),
                               np.histogram_bin_edges(data, bins="sturges"))


@pytest.mark.parametrize("method", ["jensenshannon", "psi"])
def test_binned_distances_from_the_sketch_match_the_raw_computation(method):
    ref, cur = RNG.gamma(2.0, 1.0, 200_000), RNG.gamma(2.3, 1.0, 40_000)
    result = feature_drift(_sketch(ref), cur, method=method)
    r, c = _evidently_binned(ref, cur, fill=method == "psi")
    expected = distance.jensenshannon(r, c) if method == "jensenshannon" else np.sum((r - c) * np.log(r / c))
    assert result.score == pytest.approx(expected, rel=0.03, abs=0.002)


def test_chisquare_on_categories_equals_scipy():
    ref = RNG.choice(["a", "b", "c", "d"], 900, p=[0.4, 0.3, 0.2, 0.1])
    cur = RNG.choice(["a", "b", "c", "d"], 2_000, p=[0.3, 0.3, 0.2, 0.2])
    result = feature_drift(_sketch(ref), cur)
    assert result.method == "chisquare"
    keys = sorted(set(ref) | set(cur))
    f_obs = np.array([(cur == k).sum() for k in keys])
    f_exp = np.array([(ref == k).sum() for k in keys]) * len(cur) / len(ref)
    assert result.score == pytest.approx(stats.chisquare(f_obs, f_exp).pvalue, rel=1e-9)
    assert result.drifted


def test_a_value_the_reference_never_had_is_drift():
    result = feature_drift(_sketch(RNG.choice(["a", "b", "c"], 500)), np.array(["a", "b", "zzz"] * 100))
    assert result.method == "chisquare" and result.score == 0.0 and result.drifted


def test_two_values_use_the_z_test():
    ref = RNG.choice([0, 1], 600, p=[0.7, 0.3])
    same, other = RNG.choice([0, 1], 5_000, p=[0.7, 0.3]), RNG.choice([0, 1], 5_000, p=[0.5, 0.5])
    assert feature_drift(_sketch(ref), same).method == "z"
    assert not feature_drift(_sketch(ref), same).drifted
    result = feature_drift(_sketch(ref), other)
    p1, p2, n1, n2 = ref.mean(), other.mean(), len(ref), len(other)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert result.score == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9) and result.drifted


def test_large_reference_categories_use_jensen_shannon():
    ref = RNG.choice(list("abcdef"), 50_000)
    result = feature_drift(_sketch(ref), RNG.choice(list("abcdef"), 5_000))
    assert result.method == "jensenshannon" and not result.drifted


def test_planted_drift_is_found_and_an_unchanged_stream_is_not():
    n = 120_000
    reference = pl.DataFrame({f"f{i}": RNG.normal(i, 1 + i / 10, n) for i in range(8)}
                             | {"city": RNG.choice(["x", "y", "z", "w"], n), "flag": RNG.choice([0, 1], n)})
    sketch = build_sketch(reference, source="lake:ref@1")
    unchanged = pl.DataFrame({f"f{i}": RNG.normal(i, 1 + i / 10, 20_000) for i in range(8)}
                             | {"city": RNG.choice(["x", "y", "z", "w"], 20_000), "flag": RNG.choice([0, 1], 20_000)})
    calm = compute_drift(sketch, unchanged)
    assert calm.drifted_features == [] and not calm.dataset_drift
    planted = unchanged.with_columns((pl.col("f1") + 0.6).alias("f1"), (pl.col("f4") * 1.8).alias("f4"),
                                     pl.Series("city", RNG.choice(["x", "y"], 20_000)))
    report = compute_drift(sketch, planted)
    assert sorted(report.drifted_features) == ["city", "f1", "f4"]
    assert report.share_drifted == pytest.approx(3 / 10) and not report.dataset_drift
    assert compute_drift(sketch, planted, drift_share=0.3).dataset_drift


def test_methods_and_thresholds_are_overridable_per_feature():
    ref = _sketch(RNG.normal(0, 1, 10_000))
    sketch = Sketch(10_000, {"x": ref})
    cur = {"x": RNG.normal(0.05, 1, 10_000)}
    assert compute_drift(sketch, cur).features[0].method == "wasserstein"
    psi = compute_drift(sketch, cur, methods={"x": "psi"}, thresholds={"x": 0.0001}).features[0]
    assert psi.method == "psi" and psi.threshold == 0.0001 and psi.drifted


def test_bad_requests_are_refused_in_words():
    sketch = Sketch(100, {"x": _sketch(RNG.normal(0, 1, 100)), "c": _sketch(RNG.choice(["a", "b"], 100))})
    with pytest.raises(UsageError, match="unknown drift method 'kl'"):
        compute_drift(sketch, {"x": [1.0]}, methods={"x": "kl"})
    with pytest.raises(UsageError, match="no column 'nope'"):
        compute_drift(sketch, {"x": [1.0]}, columns=["nope"])
    with pytest.raises(UsageError, match="needs numbers"):
        compute_drift(sketch, {"c": ["a"]}, methods={"c": "ks"})
    with pytest.raises(UsageError, match="holds numbers in the reference"):
        compute_drift(sketch, {"x": ["abc"]})
    report = compute_drift(sketch, {"x": [np.nan, np.inf]})
    assert report.features[0].note == "no values in the current window" and not report.features[0].drifted


def test_small_references_keep_raw_values_and_large_ones_do_not():
    assert _sketch(RNG.normal(0, 1, RAW_LIMIT)).raw is not None
    assert _sketch(RNG.normal(0, 1, RAW_LIMIT + 1)).raw is None


def test_sketching_reads_a_lazy_parquet_frame_one_column_at_a_time(tmp_path):
    path = tmp_path / "ref.parquet"
    pl.DataFrame({"a": np.arange(10_000.0), "b": RNG.choice(["u", "v"], 10_000)}).write_parquet(path)
    sk = build_sketch(pl.scan_parquet(path), ["a"])
    assert list(sk.columns) == ["a"] and sk.rows == 10_000 and sk.columns["a"].n_unique == 1001
    with pytest.raises(UsageError, match="no column 'zz'"):
        build_sketch(pl.scan_parquet(path), ["zz"])
