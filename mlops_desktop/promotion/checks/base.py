"""The one interface every promotion check follows: `Check.run(ctx) -> CheckResult(passed, summary, evidence)`.

A check is built from its table in the policy (`from_config`, errors naming the key), runs against a context (the
workspace, the candidate, the champion, when the request started, a scratch folder, progress) and returns pass/fail
with evidence the reviewer reads. A check that needs more time (shadow traffic still coming in) returns
`waiting=True`: the pipeline stops there and resumes later. A check whose capability is missing from this build
fails, saying so; it never passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    from mlops_desktop.registry.entities import ModelVersion
    from mlops_desktop.workspace import Workspace

NOT_AVAILABLE = "not available in this build"


@dataclass
class CheckResult:
    passed: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    waiting: bool = False  # not decided yet: run again later (the pipeline waits)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "summary": self.summary, "evidence": self.evidence, "waiting": self.waiting}


@dataclass
class CheckContext:
    ws: Workspace
    request_id: int
    candidate: ModelVersion
    champion: ModelVersion | None
    champion_alias: str
    started_at: float            # when the request started: live evidence counts from here
    workdir: Path
    progress: Progress = field(default_factory=Progress)
    previous: Mapping[str, Any] = field(default_factory=dict)  # this check's evidence from an earlier attempt


class Check(Protocol):
    kind: ClassVar[str]
    name: str

    def run(self, ctx: CheckContext) -> CheckResult: ...

    def to_config(self) -> dict[str, Any]: ...


def unavailable(kind: str, what: str) -> CheckResult:
    return CheckResult(False, f"{what} is {NOT_AVAILABLE}", {"available": False})


class Keys:
    """Reads one check's table: every key it does not know, or of the wrong type, is refused naming it."""

    def __init__(self, raw: Mapping[str, Any], where: str, known: set[str]) -> None:
        self.raw = raw
        self.where = where
        unknown = sorted(set(raw) - known - {"kind", "name"})
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}",
                             hint="this check takes: " + ", ".join(sorted(known | {"kind", "name"})))

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw.get(key, default)
        if value is None:
            if required:
                raise UsageError(f"{self.where}: {key} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{self.where}.{key} must be a non-empty string, got {value!r}")
        return value.strip()

    def number(self, key: str, default: float | None = None, *, minimum: float | None = None) -> float | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{self.where}.{key} must be a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise UsageError(f"{self.where}.{key} must be at least {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{self.where}.{key} must be a whole number, got {value!r}")
        if value < minimum:
            raise UsageError(f"{self.where}.{key} must be at least {minimum}, got {value!r}")
        return int(value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise UsageError(f"{self.where}.{key} must be true or false, got {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise UsageError(f"{self.where}.{key} must be a list of strings, got {value!r}")
        return tuple(value)


def pinned_dataset(keys: Keys, key: str = "dataset") -> str:
    """A dataset reference pinned to one version (NAME@N): evidence must be reproducible."""
    from mlops_desktop.data.catalog import parse_ref

    ref = keys.text(key, required=True) or ""
    try:
        _, version = parse_ref(ref)
    except UsageError as exc:
        raise UsageError(f"{keys.where}.{key}: {exc.message}") from None
    if version is None:
        raise UsageError(f"{keys.where}.{key} = {ref!r} is not pinned to a version",
                         hint=f"write {ref}@N (see `mlops-desktop data list`) so that every candidate is measured "
                              "on the same rows")
    return ref
