"""Our runs, experiments and logged models as the mlflow package's own entities, and our errors as its exceptions."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from mlflow.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunTag,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)

from mlops_desktop.errors import MlopsError, NotFoundError, StoreError
from mlops_desktop.tracking import uri as uris
from mlops_desktop.tracking.mlflow_api import convert as views
from mlops_desktop.tracking.mlflow_tables import LoggedModel as OurLoggedModel

F = TypeVar("F", bound=Callable[..., Any])


class AlreadyExists(MlopsError):
    """Raised inside the plugin where MLflow answers RESOURCE_ALREADY_EXISTS."""


def mlflow_errors(fn: F) -> F:
    """Our errors as MlflowException with MLflow's error codes, so mlflow's own handling (and its messages) work."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MlflowException:
            raise
        except AlreadyExists as exc:
            raise MlflowException(str(exc), error_code=RESOURCE_ALREADY_EXISTS) from None
        except NotFoundError as exc:
            raise MlflowException(str(exc), error_code=RESOURCE_DOES_NOT_EXIST) from None
        except StoreError as exc:
            raise MlflowException(f"MLOps Desktop workspace: {exc}", error_code=INTERNAL_ERROR) from None
        except MlopsError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None

    return wrapper  # type: ignore[return-value]


def run_to_mlflow(ws: Any, run: Any, inputs: list[dict[str, str]] | None = None,
                  outputs: list[tuple[str, int]] | None = None) -> Run:
    view = views.run_view(ws, run, inputs)
    i = view.info
    info = RunInfo(run_id=i.run_id, experiment_id=str(i.experiment_id), user_id=i.user_id, status=i.status,
                   start_time=i.start_time, end_time=i.end_time, lifecycle_stage=i.lifecycle_stage,
                   artifact_uri=i.artifact_uri, run_name=i.run_name)
    data = RunData(metrics=[Metric(k, v, run.metrics[k].last_timestamp_ms, run.metrics[k].last_step)
                            for k, v in view.data.metrics.items()],
                   params=[Param(k, v) for k, v in view.data.params.items()],
                   tags=[RunTag(k, v) for k, v in view.data.tags.items()])
    dataset_inputs = [DatasetInput(Dataset(d.dataset.name, d.dataset.digest, d.dataset.source_type or "local",
                                           d.dataset.source or "", d.dataset.schema or None,
                                           d.dataset.profile or None),
                                   [InputTag(t.key, t.value) for t in d.tags])
                      for d in view.inputs.dataset_inputs]
    run_outputs = RunOutputs([LoggedModelOutput(model_id, step) for model_id, step in outputs or []])
    return Run(info, data, RunInputs(dataset_inputs), run_outputs)


def experiment_to_mlflow(ws: Any, detail: Any) -> Experiment:
    v = views.experiment_view(ws, detail)
    return Experiment(v.experiment_id, v.name, v.artifact_location, v.lifecycle_stage,
                      [ExperimentTag(k, val) for k, val in v.tags.items()], v.creation_time, v.last_update_time)


def logged_model_to_mlflow(ws: Any, model: OurLoggedModel) -> LoggedModel:
    return LoggedModel(experiment_id=str(model.experiment_id), model_id=model.model_id, name=model.name,
                       artifact_location=uris.model_artifact_uri(ws.root, model.model_id),
                       creation_timestamp=int(model.created_at * 1000),
                       last_updated_timestamp=int(model.updated_at * 1000), model_type=model.model_type or None,
                       source_run_id=model.source_run_id, status=LoggedModelStatus(model.status),
                       status_message=model.status_message or None,
                       tags=[LoggedModelTag(k, v) for k, v in model.tags.items()],
                       params=[LoggedModelParameter(k, v) for k, v in model.params.items()])


def logged_models_tag(current: str | None, model_dict: dict[str, Any]) -> str:
    """The mlflow.log-model.history tag with one more logged model (a JSON list, as MLflow keeps it)."""
    entries = json.loads(current) if current else []
    entries.append(model_dict)
    return json.dumps(entries)
