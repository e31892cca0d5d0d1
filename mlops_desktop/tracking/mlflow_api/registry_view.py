"""MLflow-shaped views of our registry's models and versions (what MlflowClient's registry calls return), and the
translation of MLflow's model sources ("runs:/RUN/PATH") and names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mlops_desktop.errors import UsageError


@dataclass
class ModelVersion:
    name: str
    version: str            # MLflow's versions are strings
    creation_timestamp: int  # ms
    last_updated_timestamp: int
    description: str
    source: str
    run_id: str | None
    status: str = "READY"
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    run_link: str = ""
    bundle_hash: str = ""   # ours: the content hash of the version's bundle


@dataclass
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version, as MLflow's
    latest_versions: list[ModelVersion] = field(default_factory=list)


def model_version(v: Any) -> ModelVersion:
    ms = int(v.created_at * 1000)
    source = f"runs:/{v.run_uuid}/{v.artifact_path}" if v.run_uuid else v.source
    return ModelVersion(v.name, str(v.version), ms, ms, v.description, source, v.run_uuid, tags=dict(v.tags),
                        aliases=list(v.aliases), bundle_hash=v.bundle_hash)


def registered_model(m: Any, latest: list[Any]) -> RegisteredModel:
    return RegisteredModel(m.name, int(m.created_at * 1000), int(m.updated_at * 1000), m.description,
                           dict(m.tags), {a: str(n) for a, n in m.aliases.items()},
                           [model_version(v) for v in latest])


def model_name(name: Any) -> str:
    """MLflow allows any name; ours are DNS labels (they become container and Kubernetes names). An MLflow name
    that is not one maps to the label the MLflow import uses too ('Churn Model' -> 'churn-model'), the same way
    every time, so a script reads back what it wrote."""
    from mlops_desktop.registry.names import check_model_name, suggest_name

    if not isinstance(name, str) or not name:
        raise UsageError(f"a registered model name must be a non-empty string, got {name!r}")
    try:
        return check_model_name(name)
    except UsageError:
        mapped = suggest_name(name)
        if not mapped:
            raise
        return mapped


def version_number(version: Any) -> int:
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"model versions are positive numbers, got {version!r}")
    return int(text)


_RUNS = re.compile(r"^runs:/([0-9A-Za-z-]+)/(.*)$")


def parse_source(source: str, run_id: str | None) -> tuple[str, str | None]:
    """(run, artifact path) of a version's source: "runs:/RUN/PATH", or PATH (or an artifact URI ending in
    .../artifacts/PATH) among `run_id`'s artifacts."""
    match = _RUNS.match(source or "")
    if match:
        return match.group(1), match.group(2).strip("/") or None
    if not run_id:
        raise UsageError(f"cannot register the model source {source!r}",
                         hint="pass source='runs:/RUN_ID/PATH' (what log_model returns as model_uri), or run_id=")
    path = (source or "").split("/artifacts/", 1)[-1] if "/artifacts/" in (source or "") else source
    return run_id, (path or "").strip("/") or None


def name_from_filter(filter_string: str) -> str:
    match = re.fullmatch(r"\s*name\s*=\s*(['\"])(.+)\1\s*", filter_string)
    if not match:
        raise UsageError(f"search_model_versions supports filter_string=\"name = 'NAME'\", got {filter_string!r}")
    return match.group(2)
