"""The collector over real HTTP: scrapes of real model servers and a real router into series, per target, arm and
deployment; a target that stops answering is a "no data" point; histogram quantiles as Prometheus computes them;
series written packed to SQLite and read back; the exposition parser on the servers' own output."""

from __future__ import annotations

import math

import numpy as np
import pytest
import requests
from router_factories import ThresholdClassifier, body
from router_helpers import config, running_router
from serving_helpers import running

from mlops_desktop.monitoring import scrape
from mlops_desktop.monitoring.collector import Collector
from mlops_desktop.monitoring.series import LiveRing, Point, SeriesStore, label_key
from mlops_desktop.monitoring.targets import ScrapeTarget
from mlops_desktop.serving.app import ServedModel


def test_histogram_quantile_matches_prometheus_rules():
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, +Inf)
    buckets = {0.1: 50.0, 0.5: 90.0, math.inf: 100.0}
    assert scrape.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert scrape.histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    assert scrape.histogram_quantile(0.7, buckets) == pytest.approx(0.1 + 0.4 * 20 / 40)
    assert scrape.histogram_quantile(0.99, buckets) == 0.5  # in +Inf: the highest finite bound
    assert math.isnan(scrape.histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}))
    assert math.isnan(scrape.histogram_quantile(0.5, {}))


def test_counter_reset_counts_from_zero_not_negative():
    before = scrape.Counters(requests={"a": 100.0}, errors={"a": 10.0}, buckets={"a": {1.0: 100.0}})
    after = scrape.Counters(requests={"a": 5.0}, errors={"a": 1.0}, buckets={"a": {1.0: 5.0}})
    w = scrape.windows(before, after, 2.0)["a"]
    assert (w.requests, w.errors, w.buckets[1.0]) == (5.0, 1.0, 5.0)
    assert w.rate == 2.5


def test_parser_reads_escaped_labels_and_rejects_garbage():
    samples = scrape.parse_text('# HELP x y\nx_total{a="q\\"uote",b="2"} 3.5\nplain 1e3\n')
    assert samples[0].labels == {"a": 'q"uote', "b": "2"} and samples[0].value == 3.5
    assert samples[1].name == "plain" and samples[1].value == 1000.0
    with pytest.raises(ValueError):
        scrape.parse_text("broken{a=\"1\"\n")


def test_series_store_packs_merges_tails_and_reads_ranges(ws):
    store = SeriesStore(ws.db)
    key = label_key({"arm": "v1"})
    for block in range(5):
        store.append("dep", [Point("rps", key, 1000.0 + block * 10 + i, float(block * 10 + i)) for i in range(10)])
    store.append("dep", [Point("rps", key, 2000.0, math.nan)])
    ts, vals = store.read("dep", "rps", {"arm": "v1"})
    assert len(ts) == 51 and np.all(np.diff(ts) > 0) and math.isnan(vals[-1])
    assert ws.db.query("SELECT COUNT(*) FROM monitor_chunks")[0][0] == 1  # small tails were merged
    ts, vals = store.read("dep", "rps", {"arm": "v1"}, since=1010, until=1019)
    assert list(vals) == [float(v) for v in range(10, 20)]
    [info] = store.list_series("dep")
    assert info.labels == {"arm": "v1"} and info.last_ts == 2000.0 and info.to_dict()["last_value"] is None
    assert store.read("dep", "nothing")[0].size == 0


def test_live_ring_is_bounded():
    ring = LiveRing(maxlen=100)
    ring.add(Point("x", "{}", float(i), float(i)) for i in range(1000))
    ts, vals = ring.get("x")
    assert len(ts) == 100 and vals[0] == 900 and ring.last("x") == (999.0, 999.0)


def test_router_and_replicas_scraped_per_arm_and_a_dead_replica_is_no_data(ws):
    with running(ServedModel("m", "1", ThresholdClassifier())) as a, \
            running(ServedModel("m", "2", ThresholdClassifier())) as b:
        cfg = config([{"name": "v1", "weight": 50, "version": "1", "backends": [a.url]},
                      {"name": "v2", "weight": 50, "version": "2", "backends": [b.url]}])
        with running_router(cfg) as rr:
            rr.wait_ready()
            targets = [ScrapeTarget(rr.url, "router"), ScrapeTarget(a.url, "replica", "1", "v1", "m"),
                       ScrapeTarget(b.url, "replica", "2", "v2", "m")]
            col = Collector(ws, "dep", lambda: targets, host_interval_s=0, flush_s=3600)
            try:
                first = col.tick(now=1000.0)
                assert first.value("up", targets[1].labels()) == 1.0
                assert first.value("requests_per_s", {}) is None  # one scrape is no rate yet
                sent = {"v1": 0, "v2": 0}
                with requests.Session() as s:
                    for _ in range(200):
                        r = s.post(rr.url + "/invocations", json=body(0.2), timeout=5)
                        assert r.status_code == 200
                        sent[r.headers["x-mlops-arm"]] += 1
                second = col.tick(now=1010.0)
                assert second.value("requests_per_s", {}) == pytest.approx(20.0)
                assert second.value("requests_per_s", {"arm": "v1", "version": "1"}) == pytest.approx(
                    sent["v1"] / 10)
                assert second.value("requests_per_s", targets[2].labels()) == pytest.approx(sent["v2"] / 10)
                assert second.value("error_rate", {}) == 0.0
                p50, p99 = second.value("p50_latency", {}), second.value("p99_latency", {})
                assert p50 is not None and p99 is not None and 0 < p50 <= p99 < 1.0
                assert second.value("targets_down", {}) == 0.0
                b.stop()
                third = col.tick(now=1012.0)
                assert third.down == [targets[2].name]
                assert third.value("up", targets[2].labels()) == 0.0
                assert math.isnan(third.value("requests_per_s", targets[2].labels()) or 0.0)
                assert third.value("targets_down", {}) == 1.0
                assert col.flush() > 0
                ts, up = SeriesStore(ws.db).read("dep", "up", targets[2].labels())
                assert list(ts) == [1000.0, 1010.0, 1012.0] and list(up) == [1.0, 1.0, 0.0]
                live_ts, _ = col.ring.get("requests_per_s", {})
                assert list(live_ts) == [1010.0, 1012.0]
            finally:
                col.stop()


def test_everything_down_gives_nan_for_the_deployment(ws):
    targets = [ScrapeTarget("http://127.0.0.1:9", "replica", "1", "v1")]  # discard port: refused
    col = Collector(None, "gone", lambda: targets, host_interval_s=0)
    try:
        t = col.tick()
        assert t.value("targets_down", {}) == 1.0 and math.isnan(t.value("p99_latency", {}) or 0.0)
    finally:
        col.stop()
