"""Shadow traffic: the shadow's answers are never returned (one that disagrees, one that hangs), the primary is not
held up, copies beyond the queue are dropped and counted, agreement is counted and logged, and the shadow's own
prediction log has its rows flagged `shadow` under the primary's request id."""

from __future__ import annotations

import time

import polars as pl
import pytest
import requests
from router_factories import ThresholdClassifier, body
from router_helpers import ADMIN, config, hanging_server, metric, post_many, running_router, wait_for
from serving_helpers import running

from mlops_desktop.serving.app import ServedModel
from mlops_desktop.serving.config import LogConfig, ServeConfig
from mlops_desktop.serving.router_shadow import agreement, predictions_of

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def test_a_disagreeing_shadow_is_compared_counted_and_logged_never_returned(tmp_path):
    logs = tmp_path / "logs"
    with running(ServedModel("m", "1", ThresholdClassifier()), ServeConfig(log=LogConfig(directory=logs))) as a, \
            running(ServedModel("m", "3", ThresholdClassifier(flip=True)),
                    ServeConfig(log=LogConfig(directory=logs))) as shadow:
        cfg = config([{"name": "v1", "weight": 1, "backends": [a.url]},
                      {"name": "v3", "weight": 0, "backends": [shadow.url]}],
                     shadow={"arm": "v3", "percent": 50}, state_dir=str(tmp_path / "state"))
        with running_router(cfg) as rr:
            rr.wait_ready()
            n = 400
            answers = []
            with requests.Session() as s:
                for i in range(n):
                    r = s.post(rr.url + "/invocations", json=body(0.9, 0.1), headers={"X-Request-Id": f"r{i}"},
                               timeout=10)
                    answers.append((r.status_code, r.headers["x-mlops-arm"], r.json()))
            assert all(x == (200, "v1", {"predictions": [1, 0]}) for x in answers)  # never the shadow's [0, 1]
            wait_for(lambda: rr.call(lambda: not rr.router.shadow.queue
                                     and rr.router.shadow.stats["mirrored"] > 0))
            time.sleep(0.5)
            stats = rr.call(lambda: dict(rr.router.shadow.stats))
            text = requests.get(rr.url + "/metrics", timeout=5).text
        mirrored = stats["mirrored"]
        assert abs(mirrored - n / 2) <= 5 * (n * 0.25) ** 0.5 and stats["dropped"] == 0
        assert stats["disagreed"] == mirrored and stats["agreed"] == 0
        assert metric(text, "mlops_router_shadow_mirrored_total", arm="v3") == mirrored
        assert metric(text, "mlops_router_shadow_disagreed_total", arm="v3") == mirrored
        assert metric(text, "mlops_router_requests_total", arm="v3") == 0  # no client got a v3 answer
    comparisons = pl.concat([pl.read_parquet(f) for f in sorted((tmp_path / "state" / "shadow").glob("*.parquet"))])
    assert comparisons.height == mirrored
    assert comparisons["agree"].to_list() == [False] * mirrored
    assert set(comparisons["rows"].to_list()) == {2} and set(comparisons["agreed_rows"].to_list()) == {0}
    assert comparisons["shadow_latency_ms"].min() > 0
    rows = pl.concat([pl.read_parquet(f) for f in sorted(logs.rglob("*.parquet"))])
    shadow_rows = rows.filter(pl.col("shadow"))
    assert set(shadow_rows["version"].to_list()) == {"3"} and set(shadow_rows["arm"].to_list()) == {"v3"}
    assert shadow_rows.height == 2 * mirrored
    primary = rows.filter(~pl.col("shadow"))
    assert primary.height == 2 * n and set(primary["arm"].to_list()) == {"v1"}
    joined = shadow_rows.join(primary, on=["request_id", "row"], suffix="_primary")
    assert joined.height == shadow_rows.height  # every shadow row has its primary under the same request id
    assert (joined["prediction"] != joined["prediction_primary"]).all()
    assert set(comparisons["request_id"].to_list()) == set(shadow_rows["request_id"].to_list())


def test_a_hanging_shadow_never_slows_the_primary_and_overflow_is_dropped_and_counted():
    with running(ServedModel("m", "1", ThresholdClassifier())) as a, hanging_server() as port:
        cfg = config([{"name": "v1", "weight": 1, "backends": [a.url]},
                      {"name": "v3", "weight": 0, "backends": [f"127.0.0.1:{port}"]}],
                     shadow={"arm": "v3", "percent": 100, "queue": 20, "concurrency": 2, "timeout_s": 30})
        with running_router(cfg.with_(admin_token=ADMIN)) as rr:
            rr.wait_ready()
            t = time.perf_counter()
            results = post_many(rr.url, 300, threads=4)
            elapsed = time.perf_counter() - t
            assert all(code == 200 and arm == "v1" for code, arm in results)
            assert elapsed < 25  # 300 answers while every shadow copy hangs for 30 s
            stats = rr.call(lambda: dict(rr.router.shadow.stats))
            # two copies hang in the workers, 20 wait in the queue, the rest were dropped and counted
            assert stats["dropped"] == 300 - 2 - 20 and stats["mirrored"] == 0
            text = requests.get(rr.url + "/metrics", timeout=5).text
            assert metric(text, "mlops_router_shadow_dropped_total", arm="v3") == stats["dropped"]
            r = requests.post(rr.url + "/admin/settings", headers=AUTH, timeout=10,
                              json={"shadow": {"enabled": False}, "actor": "ops", "reason": "shadow hangs"})
            assert r.status_code == 200, r.text
            before = rr.call(lambda: rr.router.shadow.stats["dropped"])
            post_many(rr.url, 50, threads=2)
            assert rr.call(lambda: rr.router.shadow.stats["dropped"]) == before  # off: no copies at all
            r = requests.post(rr.url + "/admin/settings", headers=AUTH, timeout=10,
                              json={"shadow": {"enabled": True}, "weights": {"v3": 5}, "actor": "ops",
                                    "reason": "x"})
            assert r.status_code == 400 and "shadow" in r.json()["message"]


def test_agreement_rules():
    assert predictions_of(b'{"predictions": [1, 2]}') == [1, 2]
    assert predictions_of(b'{"outputs": [{"name": "probabilities", "data": [0.1]}, '
                          b'{"name": "prediction", "data": [3]}]}') == [3]
    assert predictions_of(b"not json") is None and predictions_of(b"[1]") is None
    assert agreement([1, 2, 3], [1, 0, 3], 0) == (3, 2)
    assert agreement([1.0, 2.0], [1.0000001, 2.5], 1e-6) == (2, 1)
    assert agreement([1.0], [1.0000001], 0) == (1, 0)
    assert agreement([1, 2], [1], 0) == (2, 1)


@pytest.mark.parametrize("percent", [0, 100])
def test_shadow_percent_bounds(percent):
    with running(ServedModel("m", "1", ThresholdClassifier())) as a, \
            running(ServedModel("m", "3", ThresholdClassifier())) as shadow:
        cfg = config([{"name": "v1", "weight": 1, "backends": [a.url]},
                      {"name": "v3", "weight": 0, "backends": [shadow.url]}], shadow={"arm": "v3",
                                                                                    "percent": percent})
        with running_router(cfg) as rr:
            rr.wait_ready()
            post_many(rr.url, 60, threads=2)
            wait_for(lambda: rr.call(lambda: not rr.router.shadow.queue))
            time.sleep(0.3)
            stats = rr.call(lambda: dict(rr.router.shadow.stats))
        assert stats["mirrored"] == (60 if percent == 100 else 0)
        assert stats["agreed"] == stats["mirrored"]
