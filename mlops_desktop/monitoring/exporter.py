"""Drift as Prometheus gauges (`monitor run --metrics-port`): the latest drift.* series of a deployment, so the
exported rules and the Grafana dashboard's drift panel have something to read.

    mlops_drift_any{deployment, version}            largest per-feature score (distance scale)
    mlops_drift_share{deployment, version}          share of drifted features
    mlops_drift_dataset{deployment, version}        1 when the dataset drifts
    mlops_drift_prediction{deployment, version}     the predictions' score
    mlops_drift_feature{deployment, version, feature}
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from mlops_desktop.monitoring.series import SeriesStore

_KINDS = ("any", "share", "dataset", "prediction")


class DriftCollector:
    def __init__(self, store: SeriesStore, deployments: list[str]) -> None:
        self.store = store
        self.deployments = deployments

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        fams = {k: GaugeMetricFamily(f"mlops_drift_{k}", f"Drift of served traffic: {k}",
                                     labels=["deployment", "version"]) for k in _KINDS}
        feature = GaugeMetricFamily("mlops_drift_feature", "Drift score of one feature (distance scale)",
                                    labels=["deployment", "version", "feature"])
        for dep in self.deployments:
            for info in self.store.list_series(dep):
                if not info.name.startswith("drift.") or info.last_value is None or math.isnan(info.last_value):
                    continue
                what = info.name.split(".", 1)[1]
                version = info.labels.get("version", "")
                if what in fams:
                    fams[what].add_metric([dep, version], info.last_value)
                else:
                    feature.add_metric([dep, version, what], info.last_value)
        yield from fams.values()
        yield feature


def serve(store: SeriesStore, deployments: list[str], port: int, host: str = "127.0.0.1") -> tuple[Any, int]:
    """Start the exporter on host:port (0: a free port); returns (server, port)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DriftCollector(store, deployments))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_address[1])
