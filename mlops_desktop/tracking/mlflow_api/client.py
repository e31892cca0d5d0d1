"""MlflowClient: MLflow's explicit client (experiments, runs, batches, histories, artifacts) over one workspace.

Every call is synchronous and names its run, as in MLflow. The model-registry calls (create_registered_model,
create_model_version, aliases, ...) are thin calls into the model registry (mlops_desktop/registry/), returning
MLflow-shaped views (registry_view.py).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlops_desktop.errors import UsageError
from mlops_desktop.tracking import context
from mlops_desktop.tracking import uri as uris
from mlops_desktop.tracking.mlflow_api import artifacts as arts
from mlops_desktop.tracking.mlflow_api import queries, registry_view
from mlops_desktop.tracking.mlflow_api.convert import experiment_view, run_view, split_system_tags
from mlops_desktop.tracking.mlflow_api.entities import (
    STATUS_FROM_MLFLOW,
    Experiment,
    FileInfo,
    Metric,
    PagedList,
    Run,
    RunInfo,
    ViewType,
)
from mlops_desktop.tracking.mlflow_tables import MlflowTables


class MlflowClient:
    """MLflow's ``MlflowClient`` over a workspace (``tracking_uri``: a folder or mlops-desktop:///PATH)."""

    def __init__(self, tracking_uri: str | Path | None = None, registry_uri: str | None = None) -> None:
        from mlops_desktop.workspace import Workspace

        home = uris.workspace_from_uri(tracking_uri) if tracking_uri is not None else None
        self._ws = Workspace.open(home or context.resolve_home())
        self._store = self._ws.tracking
        self._tables = MlflowTables(self._store)
        self.tracking_uri = uris.tracking_uri(self._ws.root)

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ experiments
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, Any] | None = None) -> str:
        from mlops_desktop.tracking.mlflow_api.fluent import _create_experiment

        return _create_experiment(self._ws, name, artifact_location, tags)

    def get_experiment(self, experiment_id: str | int) -> Experiment:
        return experiment_view(self._ws, self._tables.experiment_detail(_exp_id(experiment_id)))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        exp = self._store.get_experiment_by_name(name)
        return experiment_view(self._ws, self._tables.experiment_detail(exp.id)) if exp else None

    def search_experiments(self, view_type: int = ViewType.ACTIVE_ONLY, max_results: int | None = None,
                           filter_string: str | None = None, order_by: list[str] | None = None,
                           page_token: str | None = None) -> PagedList:
        views = queries.search_experiment_views(self._ws, view_type, None, filter_string, order_by)
        start = int(page_token or 0)
        end = len(views) if max_results is None else start + max_results
        return PagedList(views[start:end], str(end) if end < len(views) else None)

    def delete_experiment(self, experiment_id: str | int) -> None:
        self._tables.set_experiment_deleted(_exp_id(experiment_id), True)

    def restore_experiment(self, experiment_id: str | int) -> None:
        self._tables.set_experiment_deleted(_exp_id(experiment_id), False)

    def rename_experiment(self, experiment_id: str | int, new_name: str) -> None:
        self._tables.rename_experiment(_exp_id(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str | int, key: str, value: Any) -> None:
        self._tables.set_experiment_tags(_exp_id(experiment_id), {key: value})

    # ------------------------------------------------------------------------------------------ runs
    def create_run(self, experiment_id: str | int, start_time: int | None = None,
                   tags: dict[str, Any] | None = None, run_name: str | None = None) -> Run:
        """A new RUNNING run (``start_time`` in ms); this process does not own it, so nothing ends it but
        set_terminated()."""
        from mlops_desktop.tracking.mlflow_api.convert import random_run_name

        fields, rest = split_system_tags(tags or {})
        name = run_name or fields.pop("name", None) or random_run_name()
        run = self._store.create_run(_exp_id(experiment_id), name=name, tags=rest, notes=fields.pop("notes", ""),
                                     parent_uuid=fields.pop("parent_uuid", None), user=fields.pop("user", ""),
                                     git_commit=fields.pop("git_commit", None),
                                     start_time=None if start_time is None else start_time / 1000.0)
        return run_view(self._ws, run)

    def get_run(self, run_id: str) -> Run:
        run = self._store.get_run(run_id)
        return run_view(self._ws, run, self._tables.dataset_inputs(run.uuid))

    def search_runs(self, experiment_ids: Sequence[str | int], filter_string: str = "",
                    run_view_type: int = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                    order_by: list[str] | None = None, page_token: str | None = None) -> PagedList:
        ids = queries.experiment_ids_arg(self._ws, list(experiment_ids))
        runs, next_offset = queries.search_run_views(self._ws, ids, filter_string, run_view_type, max_results,
                                                     order_by, int(page_token or 0))
        return PagedList(runs, None if next_offset is None else str(next_offset))

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """End a run as FINISHED (default), FAILED or KILLED at ``end_time`` (ms; default now)."""
        self._store.set_terminated(run_id, _status(status or "FINISHED"),
                                   None if end_time is None else end_time / 1000.0)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        if status is not None:
            ours = _status(status, allow_running=True)
            self._store.set_terminated(run_id, ours, None)
        if name is not None:
            self._store.update_run(run_id, name=name)

    def delete_run(self, run_id: str) -> None:
        self._store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._store.restore_run(run_id)

    # ------------------------------------------------------------------------------------------ params, tags, metrics
    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self._store.log_params(run_id, {key: value})
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        self._set_tags(run_id, {key: value})

    def _set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        fields, rest = split_system_tags(tags, at_start=False)
        if fields:
            self._store.update_run(run_id, name=fields.get("name"), notes=fields.get("notes"))
        if rest:
            self._store.set_tags(run_id, rest)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._store.delete_tag(run_id, key)

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None,
                   synchronous: bool | None = None, **_mlflow: Any) -> None:
        """One point; ``timestamp`` in ms (default now), ``step`` defaults to 0 as in MLflow."""
        ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
        self._store.log_metric_arrays(run_id, _metric_key(key), np.array([int(step or 0)], dtype=np.int64),
                                      np.array([ts], dtype=np.int64), np.array([_metric_value(key, value)]))

    def log_batch(self, run_id: str, metrics: Sequence[Any] = (), params: Sequence[Any] = (),
                  tags: Sequence[Any] = (), synchronous: bool | None = None) -> None:
        """Metrics, params and tags (objects with .key/.value, metrics also .timestamp in ms and .step)."""
        if params:
            self._store.log_params(run_id, {p.key: p.value for p in params})
        if tags:
            self._set_tags(run_id, {t.key: t.value for t in tags})
        if metrics:
            self._store.log_metrics_batch(run_id, metric_series(metrics))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of a metric, in logging order (empty if the run never logged it)."""
        if key not in self._store.metric_keys(self._store.resolve_run_uuid(run_id)):
            return []
        hist = self._store.metric_history(run_id, key)
        return [Metric(key, v, t, s, run_id) for s, t, v in
                zip(hist.steps.tolist(), hist.timestamps_ms.tolist(), hist.values.tolist(), strict=True)]

    # ------------------------------------------------------------------------------------------ artifacts
    def _logger(self, run_id: str) -> arts.LogFn:
        return lambda path, folder: self.log_artifact(run_id, path, folder)

    def log_artifact(self, run_id: str, local_path: str | Path, artifact_path: str | None = None) -> None:
        self._store.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str | None = None) -> None:
        folder = Path(local_dir)
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder", hint="log_artifact() logs a single file")
        for child in sorted(folder.iterdir()):
            self._store.log_artifact(run_id, child, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        arts.log_text(self._logger(run_id), text, artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        arts.log_dict(self._logger(run_id), dictionary, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str, *,
                   save_kwargs: dict[str, Any] | None = None) -> None:
        arts.log_figure(self._logger(run_id), figure, artifact_file, save_kwargs)

    def log_image(self, run_id: str, image: Any, artifact_file: str | None = None, key: str | None = None,
                  step: int | None = None, timestamp: int | None = None, synchronous: bool | None = None) -> None:
        arts.log_image(self._logger(run_id), image, artifact_file, key, step, timestamp)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly below ``path`` (the root by default)."""
        return arts.list_children(self._store.list_artifacts(run_id), path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | Path | None = None) -> str:
        """Copy an artifact file or folder to ``dst_path`` (default: a new temporary folder); returns its path."""
        uuid = self._store.resolve_run_uuid(run_id)
        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="mlops-artifacts-"))
        objects = self._ws.paths.objects
        from mlops_desktop.tracking import blobs

        return str(arts.download(self._store.list_artifacts(uuid), lambda a: blobs.blob_path(objects, a.digest),
                                 path, dst))

    def log_inputs(self, run_id: str, datasets: Sequence[Any] | None = None, models: Any = None) -> None:
        """MLflow DatasetInput objects (a dataset with name and digest, and a mlflow.data.context tag)."""
        for item in datasets or []:
            ds = item.dataset
            ctx = next((t.value for t in item.tags or [] if t.key == "mlflow.data.context"), "")
            self._tables.log_dataset_input(run_id, ds.name, ds.digest, ctx, source_type=ds.source_type or "",
                                           source=ds.source or "", schema=ds.schema or "", profile=ds.profile or "")

    # ------------------------------------------------------------------------------------------- registry
    def create_registered_model(self, name: str, tags: dict[str, Any] | None = None,
                                description: str | None = None, **_mlflow: Any) -> registry_view.RegisteredModel:
        """A registered model with no versions yet (MLflow refuses an existing name, and so do we)."""
        from mlops_desktop import registry

        model = registry.store(self._ws).create_model(registry_view.model_name(name), description=description or "",
                                                      tags={str(k): str(v) for k, v in (tags or {}).items()})
        return registry_view.registered_model(model, [])

    def get_registered_model(self, name: str) -> registry_view.RegisteredModel:
        from mlops_desktop import registry

        reg = registry.store(self._ws)
        model = reg.get_model(registry_view.model_name(name))
        latest = reg.list_versions(model.name)[-1:] if model.versions else []
        return registry_view.registered_model(model, latest)

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, Any] | None = None, run_link: str | None = None,
                             description: str | None = None, **_mlflow: Any) -> registry_view.ModelVersion:
        """The artifact at `source` ("runs:/RUN/PATH", or a PATH among `run_id`'s artifacts) as the next version:
        verified, content-hashed, with its signature and environment (registry.register)."""
        from mlops_desktop import registry

        run, artifact = registry_view.parse_source(source, run_id)
        result = registry.register(self._ws, run, registry_view.model_name(name), artifact=artifact,
                                   description=description or "",
                                   tags={str(k): str(v) for k, v in (tags or {}).items()})
        return registry_view.model_version(result.version)

    def get_model_version(self, name: str, version: str | int) -> registry_view.ModelVersion:
        from mlops_desktop import registry

        return registry_view.model_version(registry.resolve(self._ws, f"{registry_view.model_name(name)}/"
                                                                     f"{registry_view.version_number(version)}"))

    def set_registered_model_alias(self, name: str, alias: str, version: str | int, *, reason: str = "") -> None:
        """Point `alias` at `version`. Protected aliases (production, champion, ... ) need a `reason=` here, an
        extension of MLflow's call: the registry records why they moved."""
        from mlops_desktop import registry

        registry.store(self._ws).set_alias(registry_view.model_name(name), alias,
                                           registry_view.version_number(version), reason=reason)

    def delete_registered_model_alias(self, name: str, alias: str, *, reason: str = "") -> None:
        from mlops_desktop import registry

        registry.store(self._ws).remove_alias(registry_view.model_name(name), alias, reason=reason)

    def get_model_version_by_alias(self, name: str, alias: str) -> registry_view.ModelVersion:
        from mlops_desktop import registry

        return registry_view.model_version(registry.resolve(self._ws, f"{registry_view.model_name(name)}@{alias}"))

    def search_model_versions(self, filter_string: str | None = None, **_mlflow: Any
                              ) -> list[registry_view.ModelVersion]:
        """Only MLflow's commonest filter, `name = 'NAME'` (or none: every version)."""
        from mlops_desktop import registry

        reg = registry.store(self._ws)
        names = [registry_view.name_from_filter(filter_string)] if filter_string else \
            [m.name for m in reg.list_models()]
        return [registry_view.model_version(v) for n in names for v in reg.list_versions(n)]


def metric_series(metrics: Sequence[Any]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Group MLflow Metric objects by key into (steps, timestamps ms, values) arrays, in the order given."""
    grouped: dict[str, tuple[list[int], list[int], list[float]]] = {}
    for m in metrics:
        steps, stamps, values = grouped.setdefault(_metric_key(m.key), ([], [], []))
        steps.append(int(m.step or 0))
        stamps.append(int(m.timestamp) if m.timestamp is not None else int(time.time() * 1000))
        values.append(_metric_value(m.key, m.value))
    return {k: (np.asarray(s, dtype=np.int64), np.asarray(t, dtype=np.int64), np.asarray(v, dtype=np.float64))
            for k, (s, t, v) in grouped.items()}


def _metric_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise UsageError(f"metric names must be non-empty strings, got {key!r}")
    return key


def _metric_value(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"metric {key!r}: value must be a number, got {type(value).__name__} {value!r}") from None


def _status(status: str, allow_running: bool = False) -> str:
    ours = STATUS_FROM_MLFLOW.get(str(status).upper())
    if ours is None or (ours == "running" and not allow_running):
        allowed = "RUNNING, FINISHED, FAILED or KILLED" if allow_running else "FINISHED, FAILED or KILLED"
        raise UsageError(f"run status must be {allowed}, got {status!r}")
    return ours


def _exp_id(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise UsageError(f"experiment ids are numbers, got {value!r}", hint="look it up with get_experiment_by_name")
    return int(text)


__all__ = ["MlflowClient", "RunInfo", "metric_series"]
