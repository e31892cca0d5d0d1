"""The router's Prometheus metrics: one registry per router, every series labelled by `arm` (and `router`).

Monitoring compares arms from these: requests by arm and status code, the backends' latency per arm (from the
request sent to the last byte back), upstream failures by kind, the shadow's mirrored / dropped / disagreed counts,
each backend's health, and the live settings (weights, kill switch, shadow percent) as gauges.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any

from mlops_desktop.serving.metrics import LATENCY_BUCKETS


class RouterMetrics:
    def __init__(self, router: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.router = router
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # the per-request series are plain ints on the event loop, turned into metric families at scrape time
        # (a prometheus_client child takes a lock per call; the router's whole cost per request is ~50 us)
        self.counts: dict[tuple[str, int], int] = {}
        self.hist: dict[str, list[float]] = {}  # arm -> per-bucket counts (+Inf last), then sum, then count
        self.in_flight_of: Callable[[], int] = lambda: 0
        r.register(_HotCollector(self))
        self.upstream_errors = Counter("mlops_router_upstream_errors", "Requests a backend did not answer, by arm, "
                                       "backend and kind (refused, reset, timeout, connect_timeout, bad_response)",
                                       ["router", "arm", "backend", "kind"], registry=r)
        self.retries = Counter("mlops_router_retries", "Requests sent again after a refused or reset backend "
                               "(predictions are idempotent)", ["router", "arm"], registry=r)
        self.backend_up = Gauge("mlops_router_backend_up", "1 when the backend's last health checks passed",
                                ["router", "arm", "backend"], registry=r)
        self.weight = Gauge("mlops_router_arm_weight", "The arm's live weight", ["router", "arm"], registry=r)
        self.kill_switch = Gauge("mlops_router_kill_switch", "1 while every request goes to the stable arm",
                                 ["router", "stable"], registry=r)
        self.shadow_percent = Gauge("mlops_router_shadow_percent", "Share of requests mirrored to the shadow arm "
                                    "(0 when the shadow is off)", ["router", "arm"], registry=r)
        self.mirrored = Counter("mlops_router_shadow_mirrored", "Requests mirrored to the shadow arm and answered "
                                "by it", ["router", "arm"], registry=r)
        self.dropped = Counter("mlops_router_shadow_dropped", "Mirror copies dropped because the shadow queue was "
                               "full (the primary answer is never held up)", ["router", "arm"], registry=r)
        self.shadow_failed = Counter("mlops_router_shadow_failed", "Mirror copies the shadow did not answer, by kind",
                                     ["router", "arm", "kind"], registry=r)
        self.disagreed = Counter("mlops_router_shadow_disagreed", "Mirrored requests whose shadow prediction "
                                 "differed from the primary's in at least one row", ["router", "arm"], registry=r)
        self.shadow_latency = Histogram("mlops_router_shadow_duration_seconds", "The shadow arm's answer time",
                                        ["router", "arm"], buckets=LATENCY_BUCKETS, registry=r)
        self.changes = Counter("mlops_router_changes", "Live changes made through the admin API, by kind",
                               ["router", "kind"], registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(self.router, *labels)
        return found

    def count(self, arm: str, status: int) -> None:
        key = (arm, status)
        self.counts[key] = self.counts.get(key, 0) + 1

    def observe(self, arm: str, status: int, seconds: float) -> None:
        """One answered request of `arm`: its status and the backend's answer time."""
        key = (arm, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        h: list[float] | None = self.hist.get(arm)
        if h is None:
            h = self.hist[arm] = [0.0] * (len(LATENCY_BUCKETS) + 3)
        h[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        h[-2] += seconds
        h[-1] += 1

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _HotCollector:
    def __init__(self, m: RouterMetrics) -> None:
        self.m = m

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        m = self.m
        requests = CounterMetricFamily("mlops_router_requests", "Requests answered through the router, by arm and "
                                       "status code (arm 'router' for its own routes and refusals)",
                                       labels=["router", "arm", "code"])
        for (arm, code), n in sorted(m.counts.items()):
            requests.add_metric([m.router, arm, str(code)], n)
        yield requests
        hist = HistogramMetricFamily("mlops_router_upstream_duration_seconds", "A backend's answer time seen by "
                                     "the router (request sent to last byte received), by arm",
                                     labels=["router", "arm"])
        for arm, h in sorted(m.hist.items()):
            acc, buckets = 0.0, []
            for le, k in zip((*(repr(b) for b in LATENCY_BUCKETS), "+Inf"), h[:-2], strict=True):
                acc += k
                buckets.append((le, acc))
            hist.add_metric([m.router, arm], buckets, h[-2])
        yield hist
        inflight = GaugeMetricFamily("mlops_router_requests_in_flight", "Requests waiting for a backend now",
                                     labels=["router"])
        inflight.add_metric([m.router], m.in_flight_of())
        yield inflight
