"""Which folder a job takes with it: the project root (mlops.toml, then the git root), what a sync of it would
copy, and the limit above which a sync to an SSH host needs --project DIR or a confirmation."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mlops_desktop.errors import UsageError
from mlops_desktop.execution.errors import JobError
from mlops_desktop.execution.sync import Estimate, estimate

CONFIG = "mlops.toml"
MAX_SYNC_BYTES = 500 << 20  # default limits of an unconfirmed sync ([jobs] max_sync_mb / max_sync_files)
MAX_SYNC_FILES = 20_000


@dataclass
class ProjectChoice:
    """The folder a job is run in and copied from, and how it was chosen."""

    root: Path
    how: str  # "given" (--project DIR), "mlops.toml", "git" (the repository root), "current folder"
    subdir: str = ""  # where the job runs, relative to the root (the folder it was submitted from)
    max_bytes: int = MAX_SYNC_BYTES
    max_files: int = MAX_SYNC_FILES

    @property
    def explicit(self) -> bool:
        return self.how == "given"


@dataclass
class SyncPlan:
    """What the first sync of a job's project to an SSH host would copy (later syncs send changed files only)."""

    project: ProjectChoice
    estimate: Estimate
    host: str

    @property
    def over_limit(self) -> bool:
        e = self.estimate
        return not e.complete or e.bytes > self.project.max_bytes or e.files > self.project.max_files

    def describe(self) -> str:
        e = self.estimate
        at_least = "" if e.complete else "at least "
        how = {"given": "--project", "mlops.toml": "found by its mlops.toml", "git": "the git repository root",
               "current folder": "the current folder: no mlops.toml or git repository above it"}[self.project.how]
        return (f"project {self.project.root} ({how}): {at_least}{e.files:,} files, {at_least}{fmt_bytes(e.bytes)}"
                f" to sync to host {self.host} (only changed files are uploaded)")


class SyncTooLargeError(UsageError):
    """A job's project is larger than the sync limit and nobody said to copy it anyway (exit code 2)."""

    def __init__(self, plan: SyncPlan) -> None:
        e = plan.estimate
        largest = ", ".join(f"{rel} ({fmt_bytes(size)})" for rel, size in e.largest)
        limit = f"{fmt_bytes(plan.project.max_bytes)} or {plan.project.max_files:,} files"
        super().__init__(f"not syncing: {plan.describe()}; that is above the limit of {limit}"
                         + (f"; the largest: {largest}" if largest else ""),
                         hint="name the folder to copy with --project DIR, leave files out with a .gitignore or "
                              ".mlopsignore, raise [jobs] max_sync_mb / max_sync_files in mlops.toml, or confirm "
                              "with --yes")
        self.plan = plan


def choose(project_dir: str | None, cwd: str | None = None) -> ProjectChoice | None:
    """The project of a job: ``project_dir`` as given, "" for none, None to look from ``cwd`` upwards for an
    mlops.toml, then a git repository root, else the current folder itself."""
    if project_dir == "":
        return None
    if project_dir is not None:
        root = Path(project_dir).expanduser().resolve()
        if not root.is_dir():
            raise JobError(f"project directory {root} does not exist")
        return _with_limits(ProjectChoice(root=root, how="given"))
    here = Path(cwd or os.getcwd()).resolve()
    for how, marker in (("mlops.toml", CONFIG), ("git", ".git")):
        for folder in (here, *here.parents):
            if (folder / marker).exists():
                return _with_limits(ProjectChoice(root=folder, how=how, subdir=_relative(here, folder)))
    return _with_limits(ProjectChoice(root=here, how="current folder"))


def plan_sync(choice: ProjectChoice, host: str) -> SyncPlan:
    """Count what a sync would copy (up to the sync's own hard limits: a walk of a home folder stops there)."""
    return SyncPlan(project=choice, estimate=estimate(choice.root), host=host)


def fmt_bytes(n: int) -> str:
    """1536 -> '1.5 KB' (powers of 1024)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _relative(here: Path, root: Path) -> str:
    rel = here.relative_to(root).as_posix()
    return "" if rel == "." else rel


def _with_limits(choice: ProjectChoice) -> ProjectChoice:
    """[jobs] max_sync_mb and max_sync_files of the project's mlops.toml, when it has them."""
    path = choice.root / CONFIG
    if not path.is_file():
        return choice
    try:
        jobs = tomllib.loads(path.read_text(encoding="utf-8")).get("jobs", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise JobError(f"cannot read {path}: {exc}") from None
    if not isinstance(jobs, dict):
        raise JobError(f"{path}: [jobs] must be a table")
    for key, attr, scale in (("max_sync_mb", "max_bytes", 1 << 20), ("max_sync_files", "max_files", 1)):
        if key in jobs:
            value = jobs[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise JobError(f"{path}: [jobs] {key} must be a positive number, got {value!r}")
            setattr(choice, attr, int(value * scale))
    return choice
