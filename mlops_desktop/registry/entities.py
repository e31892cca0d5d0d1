"""Registry domain entities (separate from rows): registered models, versions, alias changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_desktop.registry.signature import Signature


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version: its bundle, flavor, signature and where it came from (run, datasets)."""

    name: str
    version: int
    bundle_hash: str
    flavor: str
    serving_path: str  # what serves it by default ("onnxruntime" when a verified fast path exists)
    signature: Signature
    run_uuid: str | None
    artifact_path: str
    source: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: float
    aliases: tuple[str, ...] = ()
    metrics: dict[str, float | None] = field(default_factory=dict)
    inputs: tuple[dict[str, str], ...] = ()
    id: int = 0

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "ref": self.ref, "bundle_hash": self.bundle_hash,
                "flavor": self.flavor, "serving_path": self.serving_path, "signature": self.signature.to_dict(),
                "run_uuid": self.run_uuid, "artifact_path": self.artifact_path, "source": self.source,
                "description": self.description, "tags": dict(self.tags), "created_by": self.created_by,
                "created_at": self.created_at, "aliases": list(self.aliases), "metrics": dict(self.metrics),
                "inputs": [dict(i) for i in self.inputs]}


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: float
    versions: int
    latest_version: int | None
    aliases: dict[str, int]  # alias -> version
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AliasChange:
    """One entry of an alias's history, read from the audit log."""

    event_id: int
    ts: float
    actor: str
    kind: str  # set | moved | removed | rollback
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Registration:
    """What `register` did: the version, and whether it was new (registering the same thing again is a no-op)."""

    version: ModelVersion
    created: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "warnings": list(self.warnings), **self.version.to_dict()}
