"""Our runs and experiments as MLflow shows them (ids as strings, times in ms, system tags), and back."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from mlops_desktop.tracking import uri as uris
from mlops_desktop.tracking.entities import Run as OurRun
from mlops_desktop.tracking.mlflow_api.entities import (
    GIT_COMMIT_TAG,
    NOTE_TAG,
    PARENT_TAG,
    RUN_NAME_TAG,
    STATUS_TO_MLFLOW,
    USER_TAG,
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    Run,
    RunData,
    RunInfo,
    RunInputs,
)

_START_FIELDS = {RUN_NAME_TAG: "name", NOTE_TAG: "notes", PARENT_TAG: "parent_uuid", USER_TAG: "user",
                 GIT_COMMIT_TAG: "git_commit"}
_LATER_FIELDS = {RUN_NAME_TAG: "name", NOTE_TAG: "notes"}


def split_system_tags(tags: Mapping[str, Any], at_start: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """MLflow system tags that are fields of our runs (run name, note, parent, user, git commit) apart from the
    rest. Once a run exists only its name and note can change this way; the others stay plain tags."""
    mapping = _START_FIELDS if at_start else _LATER_FIELDS
    fields: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in tags.items():
        if key in mapping:
            fields[mapping[key]] = str(value)
        else:
            rest[key] = value
    return fields, rest


_ADJECTIVES = ("able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "gentle", "glad",
               "keen", "kind", "lively", "lucky", "merry", "neat", "nimble", "proud", "quick", "quiet", "sharp",
               "shy", "smart", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty")
_NOUNS = ("badger", "bear", "crane", "deer", "dolphin", "eagle", "falcon", "finch", "fox", "gecko", "hare",
          "heron", "ibis", "lark", "lynx", "mole", "newt", "otter", "owl", "panda", "puffin", "quail", "raven",
          "robin", "seal", "shrew", "swan", "tern", "toad", "trout", "wolf", "wren")


def random_run_name() -> str:
    """A readable random name such as 'brave-otter-417', as MLflow gives a run started without one."""
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(0, 999)}"


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def run_info_view(workspace: Any, run: OurRun) -> RunInfo:
    return RunInfo(run_id=run.uuid, experiment_id=str(run.experiment_id), run_name=run.name, user_id=run.user,
                   status=STATUS_TO_MLFLOW.get(run.status, "FAILED"), start_time=_ms(run.start_time) or 0,
                   end_time=_ms(run.end_time), artifact_uri=uris.run_artifact_uri(workspace.root, run.uuid),
                   lifecycle_stage="deleted" if run.deleted_at is not None else "active")


def system_tags(run: OurRun) -> dict[str, str]:
    tags: dict[str, str] = {}
    if run.name:
        tags[RUN_NAME_TAG] = run.name
    if run.user:
        tags[USER_TAG] = run.user
    if run.parent_uuid:
        tags[PARENT_TAG] = run.parent_uuid
    if run.notes:
        tags[NOTE_TAG] = run.notes
    if run.git_commit:
        tags[GIT_COMMIT_TAG] = run.git_commit
    return tags


def run_view(workspace: Any, run: OurRun, inputs: list[dict[str, str]] | None = None) -> Run:
    metrics = {k: (math.nan if m.last is None else float(m.last)) for k, m in run.metrics.items()}
    data = RunData(metrics=metrics, params=dict(run.params), tags={**system_tags(run), **run.tags})
    dataset_inputs = [DatasetInput(Dataset(i["dataset"], i["digest"], i.get("source_type", ""), i.get("source", ""),
                                           i.get("schema", ""), i.get("profile", "")),
                                   [InputTag("mlflow.data.context", i["context"])] if i.get("context") else [])
                      for i in inputs or []]
    return Run(run_info_view(workspace, run), data, RunInputs(dataset_inputs))


def experiment_view(workspace: Any, detail: Any) -> Experiment:
    exp = detail.experiment
    created = _ms(exp.created_at) or 0
    return Experiment(experiment_id=str(exp.id), name=exp.name,
                      artifact_location=uris.experiment_uri(workspace.root, exp.id),
                      lifecycle_stage="deleted" if detail.deleted else "active",
                      tags={**({NOTE_TAG: exp.description} if exp.description else {}), **detail.tags},
                      creation_time=created, last_update_time=created)
