"""The tracking store interface; SqliteTrackingStore is its implementation (another backend would subclass this)."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlops_desktop.tracking.entities import Artifact, DatasetInput, Experiment, MetricHistory, Run, RunPage

MetricArrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # steps int64, timestamps ms int64, values float64


class TrackingStore(abc.ABC):
    """Experiments, runs, params, tags, metric series, artifacts and dataset inputs.

    Single-item calls are built on the batch primitives (``log_metrics_batch``, ``get_runs``).
    """

    # experiments
    @abc.abstractmethod
    def create_experiment(self, name: str, description: str = "") -> Experiment: ...
    @abc.abstractmethod
    def get_experiment(self, experiment_id: int) -> Experiment: ...
    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...
    @abc.abstractmethod
    def list_experiments(self) -> list[Experiment]: ...

    def get_or_create_experiment(self, name: str) -> Experiment:
        return self.get_experiment_by_name(name) or self.create_experiment(name)

    # runs
    @abc.abstractmethod
    def create_run(self, experiment_id: int, *, name: str = "", command: str = "", host: str = "", user: str = "",
                   git_commit: str | None = None, git_dirty: bool | None = None, parent_uuid: str | None = None,
                   tags: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
                   pid: int | None = None, run_uuid: str | None = None, start_time: float | None = None,
                   status: str = "running", notes: str = "") -> Run: ...
    @abc.abstractmethod
    def get_runs(self, uuids: list[str]) -> list[Run]: ...

    def get_run(self, uuid: str) -> Run:
        return self.get_runs([uuid])[0]

    @abc.abstractmethod
    def search_runs(self, experiment_ids: list[int] | None = None, filter_string: str | None = None,
                    order_by: list[str] | None = None, limit: int = 100, offset: int = 0,
                    include_deleted: bool = False, *, only_deleted: bool = False,
                    ms_times: bool = False) -> RunPage: ...
    @abc.abstractmethod
    def set_terminated(self, uuid: str, status: str, end_time: float | None = None) -> None: ...
    @abc.abstractmethod
    def update_run(self, uuid: str, *, name: str | None = None, notes: str | None = None,
                   experiment_id: int | None = None) -> None: ...
    @abc.abstractmethod
    def delete_run(self, uuid: str) -> None: ...
    @abc.abstractmethod
    def restore_run(self, uuid: str) -> None: ...

    # params and tags
    @abc.abstractmethod
    def log_params(self, uuid: str, params: Mapping[str, Any]) -> None: ...
    @abc.abstractmethod
    def set_tags(self, uuid: str, tags: Mapping[str, Any]) -> None: ...
    @abc.abstractmethod
    def delete_tag(self, uuid: str, key: str) -> None: ...

    # metrics
    @abc.abstractmethod
    def log_metrics_batch(self, uuid: str, series: Mapping[str, MetricArrays]) -> int: ...

    def log_metric_arrays(self, uuid: str, key: str, steps: np.ndarray, timestamps_ms: np.ndarray,
                          values: np.ndarray) -> int:
        return self.log_metrics_batch(uuid, {key: (steps, timestamps_ms, values)})

    @abc.abstractmethod
    def metric_keys(self, uuid: str) -> list[str]: ...
    @abc.abstractmethod
    def metric_history(self, uuid: str, key: str) -> MetricHistory: ...
    @abc.abstractmethod
    def metric_history_downsampled(self, uuid: str, key: str, buckets: int = 2000, x: str = "step",
                                   x_min: float | None = None, x_max: float | None = None) -> MetricHistory: ...

    # artifacts and inputs
    @abc.abstractmethod
    def log_artifact(self, uuid: str, local_path: str | Path, artifact_path: str | None = None) -> list[Artifact]: ...
    @abc.abstractmethod
    def list_artifacts(self, uuid: str) -> list[Artifact]: ...
    @abc.abstractmethod
    def artifact_file(self, uuid: str, path: str) -> Path: ...
    @abc.abstractmethod
    def log_input(self, uuid: str, dataset: str, version: str, digest: str = "", context: str = "") -> None: ...
    @abc.abstractmethod
    def list_inputs(self, uuid: str) -> list[DatasetInput]: ...

    # liveness
    @abc.abstractmethod
    def change_counter(self) -> int: ...
    @abc.abstractmethod
    def reap_lost_runs(self) -> list[str]: ...
