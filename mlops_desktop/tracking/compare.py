"""Compare N runs: one row per attribute, param and metric, flagged where the runs differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_desktop.tracking.entities import Run


@dataclass(frozen=True)
class CompareRow:
    section: str  # run | param | metric
    field: str
    values: list[Any]
    differs: bool


@dataclass(frozen=True)
class Comparison:
    runs: list[str]
    rows: list[CompareRow]

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "rows": [{"section": r.section, "field": r.field, "values": r.values,
                                             "differs": r.differs} for r in self.rows]}


def compare_runs(runs: list[Run]) -> Comparison:
    rows: list[CompareRow] = []

    def add(section: str, name: str, values: list[Any]) -> None:
        rows.append(CompareRow(section, name, values, len({repr(v) for v in values}) > 1))

    add("run", "status", [r.status for r in runs])
    add("run", "duration", [r.duration for r in runs])
    add("run", "git_commit", [r.git_commit for r in runs])
    for key in sorted({k for r in runs for k in r.params}):
        add("param", f"params.{key}", [r.params.get(key) for r in runs])
    for key in sorted({k for r in runs for k in r.metrics}):
        add("metric", f"metrics.{key}", [r.metrics[key].last if key in r.metrics else None for r in runs])
    return Comparison([r.uuid for r in runs], rows)
