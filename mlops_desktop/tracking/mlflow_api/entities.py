"""MLflow-shaped views of our runs and experiments: the attribute names, units (ms) and statuses MLflow scripts read.

They are plain dataclasses (the mlflow package is not needed); the MLflow plugin converts them to mlflow's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# our status -> MLflow's; a run whose process died without ending it ("lost") failed as far as MLflow can tell
STATUS_TO_MLFLOW = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED", "killed": "KILLED",
                    "lost": "FAILED"}
STATUS_FROM_MLFLOW = {"RUNNING": "running", "SCHEDULED": "running", "FINISHED": "finished", "FAILED": "failed",
                      "KILLED": "killed"}

# MLflow's system tags that are fields of our runs (written there on the way in, shown as tags on the way out)
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
FIELD_TAGS = (RUN_NAME_TAG, USER_TAG, PARENT_TAG, NOTE_TAG, GIT_COMMIT_TAG)


class ViewType:
    """Which runs or experiments a search returns (MLflow's values)."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3


class RunStatus:
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str | None
    run_name: str
    user_id: str
    status: str
    start_time: int            # ms since the epoch
    end_time: int | None       # ms since the epoch
    artifact_uri: str
    lifecycle_stage: str = "active"

    @property
    def run_uuid(self) -> str:  # MLflow's deprecated alias
        return self.run_id


@dataclass
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str = ""
    profile: str = ""


@dataclass(frozen=True)
class InputTag:
    key: str
    value: str


@dataclass(frozen=True)
class DatasetInput:
    dataset: Dataset
    tags: list[InputTag] = field(default_factory=list)


@dataclass
class RunInputs:
    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[Any] = field(default_factory=list)


@dataclass
class Run:
    """A run as MLflow's ``mlflow.entities.Run`` shows it: ``.info``, ``.data``, ``.inputs``."""

    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)

    @property
    def _info(self) -> RunInfo:  # read by some MLflow examples
        return self.info

    @property
    def _data(self) -> RunData:
        return self.data


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str]
    creation_time: int          # ms
    last_update_time: int       # ms


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int              # ms
    step: int
    run_id: str | None = None


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None


class PagedList(list):
    """A page of results with the token of the next page (None on the last one), like MLflow's."""

    def __init__(self, items: list[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token
