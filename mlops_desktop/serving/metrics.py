"""The server's Prometheus metrics: one registry per app (no global state), labelled by model and version.

Names follow Prometheus conventions (base units, `_total` counters, seconds). Every series carries `model` and
`version`, so monitoring scrapes per version and, behind the A/B router, per arm (the router adds `arm`).
"""

from __future__ import annotations

import platform
from typing import Any

from mlops_desktop import __version__

# The conventional buckets (prometheus_client's defaults), extended below 5 ms where a batched model answers.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
VALUE_BUCKETS = (-1000, -100, -10, -1, -0.5, 0, 0.25, 0.5, 0.75, 1, 2, 5, 10, 100, 1000)


class ServerMetrics:
    """Counters and histograms of one app; children are cached so the hot path is a dict lookup and an add."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("mlops_requests", "HTTP requests answered, by route and status code",
                                ["model", "version", "route", "code"], registry=r)
        self.latency = Histogram("mlops_request_duration_seconds", "Time from request to response, by route",
                                 ["model", "version", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("mlops_requests_in_flight", "Requests being handled now", ["model", "version"],
                               registry=r)
        self.rows = Counter("mlops_prediction_rows", "Rows scored", ["model", "version"], registry=r)
        self.classes = Counter("mlops_predictions_by_class", "Predicted labels of a classifier",
                               ["model", "version", "class"], registry=r)
        self.values = Histogram("mlops_prediction_value", "Predicted values of a regressor",
                                ["model", "version"], buckets=VALUE_BUCKETS, registry=r)
        self.batch_rows = Histogram("mlops_batch_size_rows", "Rows per model call (after adaptive batching)",
                                    ["model", "version"], buckets=BATCH_BUCKETS, registry=r)
        self.batch_requests = Histogram("mlops_batch_size_requests", "Requests coalesced per model call",
                                        ["model", "version"], buckets=BATCH_BUCKETS, registry=r)
        self.model_errors = Counter("mlops_model_errors", "Model calls that raised", ["model", "version"],
                                    registry=r)
        self.log_records = Counter("mlops_prediction_log_rows", "Prediction-log rows by outcome "
                                   "(written, dropped_queue_full, dropped_write_error, sampled_out, evicted)",
                                   ["model", "version", "outcome"], registry=r)
        self.log_queue = Gauge("mlops_prediction_log_queue_rows", "Prediction-log rows waiting for the writer",
                               registry=r)
        self.log_segments = Gauge("mlops_prediction_log_segments", "Closed prediction-log segment files kept",
                                  registry=r)
        self.model_info = Gauge("mlops_model_info", "The model versions this server holds (value 1)",
                                ["model", "version", "flavor", "serving_path", "bundle_hash"], registry=r)
        self.threshold = Gauge("mlops_decision_threshold", "A classifier's live decision threshold (NaN: the "
                               "model's own labels)", ["model", "version"], registry=r)
        self.build = Info("mlops_server_build", "The server's build", registry=r)
        self.build.info({"app_version": __version__, "python_version": platform.python_version()})
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_request(self, model: str, version: str, route: str, code: int, seconds: float) -> None:
        self.child(self.requests, model, version, route, str(code)).inc()
        self.child(self.latency, model, version, route).observe(seconds)

    def observe_outputs(self, model: str, version: str, prediction: Any, classifier: bool) -> None:
        import numpy as np

        self.child(self.rows, model, version).inc(len(prediction))
        if classifier:
            labels, counts = np.unique(prediction, return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                self.child(self.classes, model, version, str(label)).inc(count)
            return
        values = np.asarray(prediction)
        if values.dtype.kind in "fiu":
            hist = self.child(self.values, model, version)
            for v in values[:64].tolist() if len(values) > 64 else values.tolist():
                hist.observe(v)  # a sample of each batch: the distribution's shape, not every row's cost

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
