"""The `mlops-desktop` tracking store for the mlflow package (entry point `mlflow.tracking_store`).

With MLFLOW_TRACKING_URI=mlops-desktop:///PATH (or `mlops-desktop:` for the default workspace), mlflow itself —
its fluent API, MlflowClient, autolog, log_model and the framework callbacks built on them — writes into our store.
"""

from __future__ import annotations

import os
from typing import Any

from mlflow.entities import ViewType
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT
from mlflow.store.tracking.abstract_store import AbstractStore

from mlops_desktop.errors import UsageError
from mlops_desktop.tracking import uri as uris
from mlops_desktop.tracking.mlflow_api import queries
from mlops_desktop.tracking.mlflow_api.client import metric_series
from mlops_desktop.tracking.mlflow_api.convert import random_run_name, split_system_tags
from mlops_desktop.tracking.mlflow_api.entities import STATUS_FROM_MLFLOW
from mlops_desktop.tracking.mlflow_plugin.convert import (
    AlreadyExists,
    experiment_to_mlflow,
    logged_model_to_mlflow,
    logged_models_tag,
    mlflow_errors,
    run_to_mlflow,
)
from mlops_desktop.tracking.mlflow_tables import MlflowTables

LOGGED_MODELS_TAG = "mlflow.log-model.history"


class MlopsDesktopStore(AbstractStore):
    """mlflow's AbstractStore over one workspace's SqliteTrackingStore (plus MlflowTables for the rest)."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()
        from mlops_desktop.paths import default_home
        from mlops_desktop.workspace import Workspace

        self._ws = Workspace.open(uris.workspace_from_uri(store_uri) or default_home())
        self._store = self._ws.tracking
        self._tables = MlflowTables(self._store)

    def _exp(self, value: Any) -> int:
        """An experiment id; MLflow's default experiment "0" is our "Default" wherever it was created."""
        text = str(value).strip()
        if not text.isdigit():
            raise UsageError(f"experiment ids in an MLOps Desktop workspace are numbers, got {value!r}")
        if text == "0" and not self._store.db.query("SELECT 1 FROM experiments WHERE id = 0"):
            return self._store.get_or_create_experiment("Default").id
        return int(text)

    # ------------------------------------------------------------------------------------------ experiments
    @mlflow_errors
    def search_experiments(self, view_type: int = ViewType.ACTIVE_ONLY,
                           max_results: int = SEARCH_MAX_RESULTS_DEFAULT, filter_string: str | None = None,
                           order_by: list[str] | None = None, page_token: str | None = None) -> PagedList:
        details = {d.experiment.id: d for d in self._tables.experiment_details()}
        views = queries.search_experiment_views(self._ws, view_type, None, filter_string, order_by)
        start = int(page_token or 0)
        end = start + max_results if max_results else len(views)
        page = [experiment_to_mlflow(self._ws, details[int(v.experiment_id)]) for v in views[start:end]]
        return PagedList(page, str(end) if end < len(views) else None)

    @mlflow_errors
    def create_experiment(self, name: str, artifact_location: str | None = None, tags: Any = None) -> str:
        if not name or not name.strip():
            raise UsageError("an experiment needs a non-empty name")
        existing = self._store.get_experiment_by_name(name)
        if existing is not None:
            raise AlreadyExists(f"Experiment(name={name}) already exists.")
        exp = self._store.create_experiment(name)
        if tags:
            self._tables.set_experiment_tags(exp.id, {t.key: t.value for t in tags})
        return str(exp.id)

    @mlflow_errors
    def get_experiment(self, experiment_id: str) -> Any:
        return experiment_to_mlflow(self._ws, self._tables.experiment_detail(self._exp(experiment_id)))

    @mlflow_errors
    def get_experiment_by_name(self, experiment_name: str) -> Any:
        exp = self._store.get_experiment_by_name(experiment_name)
        return experiment_to_mlflow(self._ws, self._tables.experiment_detail(exp.id)) if exp else None

    @mlflow_errors
    def delete_experiment(self, experiment_id: str) -> None:
        self._tables.set_experiment_deleted(self._exp(experiment_id), True)

    @mlflow_errors
    def restore_experiment(self, experiment_id: str) -> None:
        self._tables.set_experiment_deleted(self._exp(experiment_id), False)

    @mlflow_errors
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._tables.rename_experiment(self._exp(experiment_id), new_name)

    @mlflow_errors
    def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
        self._tables.set_experiment_tags(self._exp(experiment_id), {tag.key: tag.value})

    @mlflow_errors
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._tables.delete_experiment_tag(self._exp(experiment_id), key)

    # ------------------------------------------------------------------------------------------ runs
    def _run(self, run_id: str) -> Any:
        run = self._store.get_run(run_id)
        outputs = [(m.model_id, 0) for m in self._tables.search_logged_models(source_run=run.uuid)]
        return run_to_mlflow(self._ws, run, self._tables.dataset_inputs(run.uuid), outputs)

    @mlflow_errors
    def get_run(self, run_id: str) -> Any:
        return self._run(run_id)

    @mlflow_errors
    def create_run(self, experiment_id: str, user_id: str, start_time: int, tags: Any, run_name: str | None) -> Any:
        fields, rest = split_system_tags({t.key: t.value for t in tags or []})
        name = run_name or fields.pop("name", None) or random_run_name()
        run = self._store.create_run(
            self._exp(experiment_id), name=name, user=user_id or fields.pop("user", ""), tags=rest,
            notes=fields.pop("notes", ""), parent_uuid=fields.pop("parent_uuid", None),
            git_commit=fields.pop("git_commit", None), command=rest.get("mlflow.source.name", ""),
            start_time=None if start_time is None else start_time / 1000.0,
            pid=os.getpid())  # a run of this process: marked lost if it dies without ending it
        return run_to_mlflow(self._ws, run)

    @mlflow_errors
    def update_run_info(self, run_id: str, run_status: Any, end_time: int | None, run_name: str | None) -> Any:
        if run_status is not None:
            from mlflow.entities import RunStatus

            text = run_status if isinstance(run_status, str) else RunStatus.to_string(run_status)
            status = STATUS_FROM_MLFLOW[text]
            self._store.set_terminated(run_id, status, None if end_time is None else end_time / 1000.0)
        if run_name:
            self._store.update_run(run_id, name=run_name)
        return self._run(run_id).info

    @mlflow_errors
    def delete_run(self, run_id: str) -> None:
        self._store.delete_run(run_id)

    @mlflow_errors
    def restore_run(self, run_id: str) -> None:
        self._store.restore_run(run_id)

    @mlflow_errors
    def _search_runs(self, experiment_ids: list[str], filter_string: str, run_view_type: int, max_results: int,
                     order_by: list[str] | None, page_token: str | None) -> tuple[list[Any], str | None]:
        ids = [self._exp(e) for e in experiment_ids]
        offset = int(page_token or 0)
        page = self._store.search_runs(ids, filter_string, order_by, max_results, offset,
                                       include_deleted=run_view_type == ViewType.ALL,
                                       only_deleted=run_view_type == ViewType.DELETED_ONLY, ms_times=True)
        runs = [run_to_mlflow(self._ws, r) for r in page.runs]
        return runs, None if page.next_offset is None else str(page.next_offset)

    # ------------------------------------------------------------------------------------------ logging
    @mlflow_errors
    def log_batch(self, run_id: str, metrics: Any, params: Any, tags: Any) -> None:
        if params:
            self._store.log_params(run_id, {p.key: p.value for p in params})
        if tags:
            fields, rest = split_system_tags({t.key: t.value for t in tags}, at_start=False)
            if fields:
                self._store.update_run(run_id, name=fields.get("name"), notes=fields.get("notes"))
            if rest:
                self._store.set_tags(run_id, rest)
        if metrics:
            self._store.log_metrics_batch(run_id, metric_series(metrics))

    @mlflow_errors
    def delete_tag(self, run_id: str, key: str) -> None:
        self._store.delete_tag(run_id, key)

    @mlflow_errors
    def get_metric_history(self, run_id: str, metric_key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList:
        from mlflow.entities import Metric

        uuid = self._store.resolve_run_uuid(run_id)
        if metric_key not in self._store.metric_keys(uuid):
            return PagedList([], None)
        hist = self._store.metric_history(uuid, metric_key)
        points = [Metric(metric_key, v, t, s, run_id=uuid) for s, t, v in
                  zip(hist.steps.tolist(), hist.timestamps_ms.tolist(), hist.values.tolist(), strict=True)]
        start = int(page_token or 0)
        end = start + max_results if max_results else len(points)
        return PagedList(points[start:end], str(end) if end < len(points) else None)

    @mlflow_errors
    def log_inputs(self, run_id: str, datasets: Any = None, models: Any = None) -> None:
        for item in datasets or []:
            ds = item.dataset
            ctx = next((t.value for t in item.tags or [] if t.key == "mlflow.data.context"), "")
            self._tables.log_dataset_input(run_id, ds.name, ds.digest, ctx, source_type=ds.source_type or "",
                                           source=ds.source or "", schema=ds.schema or "", profile=ds.profile or "")

    @mlflow_errors
    def log_outputs(self, run_id: str, models: Any) -> None:
        for output in models or []:
            self._tables.log_model_output(run_id, output.model_id, output.step or 0)

    @mlflow_errors
    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        current = self._store.get_run(run_id).tags.get(LOGGED_MODELS_TAG)
        self._store.set_tags(run_id, {LOGGED_MODELS_TAG: logged_models_tag(current, mlflow_model.get_tags_dict())})

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        from mlflow.exceptions import MlflowException

        raise MlflowException("MLOps Desktop does not store traces (GenAI tracing) yet")

    # ------------------------------------------------------------------------------------------ logged models
    @mlflow_errors
    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: Any = None, params: Any = None, model_type: str | None = None) -> Any:
        model = self._tables.create_logged_model(self._exp(experiment_id), name, source_run_id,
                                                 {t.key: t.value for t in tags or []},
                                                 {p.key: p.value for p in params or []}, model_type)
        return logged_model_to_mlflow(self._ws, model)

    @mlflow_errors
    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any:
        return logged_model_to_mlflow(self._ws, self._tables.get_logged_model(model_id, allow_deleted))

    @mlflow_errors
    def search_logged_models(self, experiment_ids: list[str], filter_string: str | None = None,
                             datasets: Any = None, max_results: int | None = None, order_by: Any = None,
                             page_token: str | None = None) -> PagedList:
        keep = queries.entity_predicate(filter_string, _model_field,
                                        "name, model_id, source_run_id, status, model_type, tags.KEY or params.KEY",
                                        "name = 'model' AND source_run_id = 'RUN_ID'")
        models = [m for m in self._tables.search_logged_models([self._exp(e) for e in experiment_ids]) if keep(m)]
        start = int(page_token or 0)
        end = start + max_results if max_results else len(models)
        return PagedList([logged_model_to_mlflow(self._ws, m) for m in models[start:end]],
                         str(end) if end < len(models) else None)

    @mlflow_errors
    def finalize_logged_model(self, model_id: str, status: Any) -> Any:
        self._tables.update_logged_model(model_id, status=str(getattr(status, "value", status)))
        return self.get_logged_model(model_id)

    @mlflow_errors
    def set_logged_model_tags(self, model_id: str, tags: Any) -> None:
        self._tables.update_logged_model(model_id, tags={t.key: t.value for t in tags})

    @mlflow_errors
    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._tables.update_logged_model(model_id, delete_tag=key)

    @mlflow_errors
    def delete_logged_model(self, model_id: str) -> None:
        self._tables.update_logged_model(model_id, deleted=True)


def _model_field(name: str) -> Any:
    lower = name.lower()
    if lower.startswith("tags."):
        key = name[5:].strip("`\"")
        return lambda m: m.tags.get(key)
    if lower.startswith("params."):
        key = name[7:].strip("`\"")
        return lambda m: m.params.get(key)
    if lower in ("name", "model_id", "source_run_id", "status", "model_type"):
        return lambda m: getattr(m, lower)
    return None
