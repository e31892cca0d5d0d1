"""A project's mlops.toml as the data capability reads it: dataset contracts and pipeline definitions."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.data.catalog import check_name
from mlops_desktop.data.contract import Contract, contract_from_dict
from mlops_desktop.errors import NotFoundError, UsageError

CONFIG = "mlops.toml"
_STEP_KEYS = {"sql", "python", "inputs", "output", "description"}


@dataclass(frozen=True)
class Step:
    pipeline: str
    name: str
    output: str
    sql: str | None
    python: str | None  # "file.py:function", relative to the project
    inputs: tuple[str, ...]  # dataset names or NAME@N; empty for SQL means "the datasets the SQL names"

    @property
    def qualified(self) -> str:
        return f"{self.pipeline}.{self.name}"


@dataclass
class Project:
    root: Path
    config: dict[str, Any]
    contracts: dict[str, Contract] = field(default_factory=dict)
    partitions: dict[str, list[str]] = field(default_factory=dict)  # [datasets.NAME] partition_by = [...]
    malformed: dict[str, str] = field(default_factory=dict)  # [datasets.NAME] on_malformed = "reject" | "fail"
    pipelines: dict[str, list[Step]] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG


def find_project(start: str | Path | None = None, *, required: bool = False) -> Project | None:
    """The project whose mlops.toml is in ``start`` (default: the current directory) or a parent of it."""
    here = Path(start or Path.cwd()).resolve()
    if here.is_file():
        return load_project(here.parent) if here.name == CONFIG else None
    for folder in (here, *here.parents):
        if (folder / CONFIG).is_file():
            return load_project(folder)
    if required:
        raise NotFoundError(f"no {CONFIG} in {here} or any parent directory",
                            hint="run the command inside a project, or pass --project DIR")
    return None


def load_project(root: Path) -> Project:
    path = root / CONFIG
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    project = Project(root=root, config=raw)
    datasets = raw.get("datasets", {})
    if not isinstance(datasets, dict):
        raise UsageError(f"{path}: [datasets] must be a table")
    for name, spec in datasets.items():
        if isinstance(spec, dict) and "contract" in spec:
            project.contracts[name] = contract_from_dict(spec["contract"], f"{path} [datasets.{name}.contract]")
        if isinstance(spec, dict) and "partition_by" in spec:
            cols = spec["partition_by"]
            cols = [cols] if isinstance(cols, str) else cols
            if not isinstance(cols, list) or not cols or not all(isinstance(c, str) and c for c in cols):
                raise UsageError(f"{path}: [datasets.{name}] partition_by must be a column name or a list of them")
            project.partitions[name] = cols
        if isinstance(spec, dict) and "on_malformed" in spec:
            if spec["on_malformed"] not in ("reject", "fail"):
                raise UsageError(f"{path}: [datasets.{name}] on_malformed must be \"reject\" or \"fail\", got "
                                 f"{spec['on_malformed']!r}")
            project.malformed[name] = spec["on_malformed"]
    pipelines = raw.get("pipelines", {})
    if not isinstance(pipelines, dict):
        raise UsageError(f"{path}: [pipelines] must be a table")
    for pname, pspec in pipelines.items():
        steps_raw = (pspec or {}).get("steps") if isinstance(pspec, dict) else None
        if not isinstance(steps_raw, dict) or not steps_raw:
            raise UsageError(f"{path}: pipeline {pname!r} needs [pipelines.{pname}.steps.NAME] tables")
        steps = []
        for sname, sspec in steps_raw.items():
            where = f"{path} [pipelines.{pname}.steps.{sname}]"
            if not isinstance(sspec, dict):
                raise UsageError(f"{where}: a step must be a table")
            unknown = set(sspec) - _STEP_KEYS
            if unknown:
                raise UsageError(f"{where}: unknown key(s) {sorted(unknown)}", hint="allowed: " + ", ".join(sorted(_STEP_KEYS)))
            if bool(sspec.get("sql")) == bool(sspec.get("python")):
                raise UsageError(f"{where}: give exactly one of sql = \"...\" or python = \"file.py:function\"")
            python = sspec.get("python")
            if python and (":" not in python):
                raise UsageError(f"{where}: python must be \"file.py:function\", got {python!r}")
            inputs = sspec.get("inputs", [])
            if isinstance(inputs, str):
                inputs = [inputs]
            if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
                raise UsageError(f"{where}: inputs must be a list of dataset names")
            if python and not inputs:
                raise UsageError(f"{where}: a python step needs inputs = [...]")
            output = sspec.get("output", sname)
            if not isinstance(output, str):
                raise UsageError(f"{where}: output must be a dataset name")
            try:
                check_name(output)
            except UsageError as exc:
                raise UsageError(f"{where}: output: {exc.message}", hint=exc.hint) from None
            steps.append(Step(pipeline=pname, name=sname, output=output, sql=sspec.get("sql"), python=python,
                              inputs=tuple(inputs)))
        project.pipelines[pname] = steps
    return project
