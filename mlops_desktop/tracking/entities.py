"""Tracking domain entities, separate from database rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    description: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricSummary:
    last: float | None
    min: float | None
    max: float | None
    count: int
    last_step: int
    last_timestamp_ms: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Run:
    uuid: str
    experiment_id: int
    name: str
    status: str
    host: str
    user: str
    command: str
    git_commit: str | None
    git_dirty: bool | None
    start_time: float
    end_time: float | None
    parent_uuid: str | None
    notes: str
    pid: int | None = None
    deleted_at: float | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.end_time is None:
            return None
        return self.end_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = {k: v.to_dict() for k, v in self.metrics.items()}
        d["duration"] = self.duration
        return d


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    total: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.runs)
        return end if end < self.total else None


@dataclass(frozen=True)
class MetricHistory:
    """One metric series as parallel numpy arrays (step int64, timestamp ms int64, value float64)."""

    key: str
    steps: np.ndarray
    timestamps_ms: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class Artifact:
    path: str
    digest: str
    size: int
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DatasetInput:
    dataset: str
    version: str
    digest: str
    context: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
