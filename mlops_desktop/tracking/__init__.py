"""Experiment tracking: the store (runs, params, metrics, artifacts) and the API that training code calls.

    import mlops_desktop.tracking as mt
    with mt.start_run(experiment="churn", name="baseline"):
        mt.log_params({"lr": 0.01})
        for step in range(n):
            mt.log_metric("loss", loss, step=step)   # floats, numpy numbers or 0-d torch tensors (no host sync)

The API also speaks MLflow's tracking API, so that an MLflow script runs with only its import changed:
``import mlops_desktop.tracking as mlflow`` (start_run(run_id, experiment_id, run_name, nested, ...),
set_experiment, search_runs -> DataFrame, log_artifacts/log_dict/log_table..., MlflowClient).
"""

import sys as _sys

from mlops_desktop.tracking.client import (
    ActiveRun,
    active_run,
    delete_tag,
    end_run,
    flush,
    log_artifact,
    log_artifacts,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
    start_run,
)
from mlops_desktop.tracking.mlflow_api.client import MlflowClient
from mlops_desktop.tracking.mlflow_api.entities import RunStatus, ViewType
from mlops_desktop.tracking.mlflow_api.fluent import (
    create_experiment,
    delete_experiment,
    delete_run,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_parent_run,
    get_run,
    get_tracking_uri,
    is_tracking_uri_set,
    last_active_run,
    load_table,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_table,
    log_text,
    search_experiments,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
    set_tracking_uri,
)

# `mlflow.tracking.MlflowClient` keeps working after `import mlops_desktop.tracking as mlflow`
tracking = _sys.modules[__name__]

__all__ = ["ActiveRun", "MlflowClient", "RunStatus", "ViewType", "active_run", "create_experiment",
           "delete_experiment", "delete_run", "delete_tag", "end_run", "flush", "get_artifact_uri", "get_experiment",
           "get_experiment_by_name", "get_parent_run", "get_run", "get_tracking_uri", "is_tracking_uri_set",
           "last_active_run", "load_table", "log_artifact", "log_artifacts", "log_dict", "log_figure", "log_image",
           "log_input", "log_metric", "log_metrics", "log_param", "log_params", "log_table", "log_text",
           "search_experiments", "search_runs", "set_experiment", "set_experiment_tag", "set_experiment_tags",
           "set_tag", "set_tags", "set_tracking_uri", "start_run"]


def __getattr__(name: str) -> object:
    """`mlflow.sklearn` without importing it first, as MLflow's lazily loaded flavor modules allow; scikit-learn
    and skops load only when it is touched."""
    if name == "sklearn":
        import importlib

        return importlib.import_module("mlops_desktop.tracking.sklearn")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
