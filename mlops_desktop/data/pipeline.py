"""Pipelines: steps from mlops.toml (SQL or a Python LazyFrame function) run as a DAG, incrementally, with lineage."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.project import Project, Step
from mlops_desktop.errors import Cancelled, MlopsError, NotFoundError, UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

@dataclass
class StepOutcome:
    step: str
    output: str
    status: str  # built | unchanged | failed | blocked
    version: int | None = None
    rows_stored: int = 0
    rows_rejected: int = 0
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _inputs(step: Step, outputs: set[str], known: set[str]) -> list[str]:
    """Input refs of a step: its explicit list, else every dataset (or step output) its SQL names."""
    if step.inputs:
        return list(step.inputs)
    from mlops_desktop.data.query import table_refs

    return [ref for ref in table_refs(step.sql or "") if ref.split("@")[0] in outputs | known]


def plan(project: Project, target: str | None, known: set[str]) -> list[tuple[Step, list[str]]]:
    """The steps to run for ``target`` (all, a pipeline, or a step with its upstream), in dependency order."""
    steps = [s for p in project.pipelines.values() for s in p]
    if not steps:
        raise NotFoundError(f"{project.config_path} defines no pipelines",
                            hint="add [pipelines.NAME.steps.STEP] tables with sql = ... or python = ...")
    producers: dict[str, Step] = {}
    for s in steps:
        if s.output in producers:
            raise UsageError(f"steps {producers[s.output].qualified} and {s.qualified} both write {s.output}")
        producers[s.output] = s
    inputs = {s.qualified: _inputs(s, set(producers), known) for s in steps}
    if target is None:
        wanted = {s.qualified for s in steps}
    elif target in project.pipelines:
        wanted = {s.qualified for s in project.pipelines[target]}
    else:
        match = [s for s in steps if target in (s.qualified, s.name)]
        if not match:
            raise NotFoundError(f"no pipeline or step named {target!r}",
                                hint="pipelines: " + ", ".join(project.pipelines) + "; steps: "
                                + ", ".join(s.qualified for s in steps))
        if len(match) > 1:
            raise UsageError(f"step name {target!r} is ambiguous: " + ", ".join(s.qualified for s in match))
        wanted, todo = set(), [match[0]]
        while todo:  # a step runs with its upstream steps (unchanged ones are skipped cheaply)
            s = todo.pop()
            if s.qualified not in wanted:
                wanted.add(s.qualified)
                todo += [producers[r.split("@")[0]] for r in inputs[s.qualified] if r.split("@")[0] in producers]
    order: list[Step] = []
    state: dict[str, int] = {}
    by_name = {s.qualified: s for s in steps}

    def visit(s: Step, path: list[str]) -> None:
        if state.get(s.qualified) == 2:
            return
        if state.get(s.qualified) == 1:
            raise UsageError("pipeline steps form a cycle: " + " -> ".join(path + [s.qualified]))
        state[s.qualified] = 1
        for ref in inputs[s.qualified]:
            dep = producers.get(ref.split("@")[0])
            if dep is not None and dep.qualified in wanted:
                visit(dep, path + [s.qualified])
        state[s.qualified] = 2
        order.append(s)

    for q in sorted(wanted, key=[s.qualified for s in steps].index):
        visit(by_name[q], [])
    return [(s, inputs[s.qualified]) for s in order]


def run_pipelines(ws: Workspace, project: Project, target: str | None = None, *, force: bool = False,
                  progress: Progress | None = None) -> list[StepOutcome]:
    """Run the planned steps; a failed step blocks its dependants, others go on. Raises Cancelled when asked."""
    progress = progress or Progress()
    known = {v.name for v in catalog.list_datasets(ws.db)}
    planned = plan(project, target, known)
    producers = {s.output: s.qualified for s, _ in planned}
    failed: set[str] = set()
    outcomes: list[StepOutcome] = []
    for index, (step, refs) in enumerate(planned):
        sub = progress.sub(index / len(planned), (index + 1) / len(planned))
        sub.update(0.0, f"step {step.qualified}")
        upstream_failed = [producers[r.split("@")[0]] for r in refs
                           if producers.get(r.split("@")[0]) in failed]
        if upstream_failed:
            failed.add(step.qualified)
            outcomes.append(StepOutcome(step.qualified, step.output, "blocked",
                                        message="not run: upstream step failed: " + ", ".join(upstream_failed)))
            continue
        started = time.monotonic()
        try:
            outcome = _run_step(ws, project, step, refs, force, sub)
        except Cancelled:
            raise
        except MlopsError as exc:
            outcome = StepOutcome(step.qualified, step.output, "failed", message=f"step {step.qualified}: {exc}")
        except Exception as exc:  # the user's code failed: say where, without our traceback
            outcome = StepOutcome(step.qualified, step.output, "failed",
                                  message=f"step {step.qualified}: {_user_error(exc, project.root)}")
        outcome.seconds = round(time.monotonic() - started, 3)
        if outcome.status == "failed":
            failed.add(step.qualified)
        outcomes.append(outcome)
    progress.update(1.0, "pipelines done")
    return outcomes


def _fingerprint(project: Project, step: Step, versions: list[catalog.DatasetVersion]) -> str:
    spec: dict[str, Any] = {"output": step.output,
                            "inputs": sorted([v.name, v.content_hash] for v in versions)}
    if step.sql:
        spec["sql"] = " ".join(step.sql.split())
    else:
        file, _, func = (step.python or "").rpartition(":")
        path = project.root / file
        spec["python"] = [file, func, hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None]
    contract = project.contracts.get(step.output)
    spec["contract"] = contract.to_dict() if contract else None
    if project.partitions.get(step.output):  # only when set: fingerprints of unpartitioned outputs stay as they were
        spec["partition_by"] = project.partitions[step.output]
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _run_step(ws: Workspace, project: Project, step: Step, refs: list[str], force: bool,
              progress: Progress) -> StepOutcome:
    from mlops_desktop.data.ingest import derive

    versions = [catalog.resolve(ws.db, r) for r in refs]
    fingerprint = _fingerprint(project, step, versions)
    current = catalog.latest(ws.db, step.output)
    if not force and current is not None and current.producer_fingerprint == fingerprint:
        return StepOutcome(step.qualified, step.output, "unchanged", version=current.version,
                           message=f"inputs and code unchanged since {current.ref}")
    frame = _sql_frame(ws, step, versions) if step.sql else _python_frame(ws, project, step, versions)
    source = {"step": step.qualified, "sql": step.sql, "python": step.python,
              "inputs": [v.ref for v in versions], "project": str(project.root)}
    result = derive(ws, step.output, frame, label=f"step {step.qualified}", parent_ids=[v.id for v in versions],
                    step=step.qualified, fingerprint=fingerprint, source=source,
                    contract=project.contracts.get(step.output), progress=progress,
                    partition_by=project.partitions.get(step.output))
    return StepOutcome(step.qualified, step.output, "built", version=result.version, rows_stored=result.rows_stored,
                       rows_rejected=result.rows_rejected, message=f"{result.rows_stored} rows")


def _sql_frame(ws: Workspace, step: Step, versions: list[catalog.DatasetVersion]) -> pl.LazyFrame:
    import polars as pl

    tables: dict[str, Any] = {}
    sql = step.sql or ""
    for v in versions:
        pinned = f"{v.name}@{v.version}"
        if pinned in sql:
            alias = f"{v.name}__v{v.version}"
            sql = re.sub(rf"\b{re.escape(pinned)}\b", alias, sql)
            tables[alias] = lake.scan(ws, v)
        else:
            tables[v.name] = lake.scan(ws, v)
    try:
        frame = pl.SQLContext(tables, eager=False).execute(sql, eager=False)
        frame.collect_schema()
    except Exception as exc:
        raise UsageError(f"SQL failed: {_first(exc)}") from None
    return frame


def _python_frame(ws: Workspace, project: Project, step: Step,
                  versions: list[catalog.DatasetVersion]) -> pl.LazyFrame:
    import polars as pl

    file, _, func = (step.python or "").rpartition(":")
    path = (project.root / file).resolve()
    if not path.is_file():
        raise UsageError(f"python file {path} not found")
    name = f"mlops_step_{hashlib.sha256(str(path).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(project.root))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(project.root))
    fn = getattr(module, func, None)
    if not callable(fn):
        raise UsageError(f"{file} has no function {func!r}")
    frames = {v.name: lake.scan(ws, v) for v in versions}
    result = fn(next(iter(frames.values()))) if len(frames) == 1 else fn(frames)
    if isinstance(result, pl.DataFrame):
        result = result.lazy()
    if not isinstance(result, pl.LazyFrame):
        raise UsageError(f"{file}:{func} returned {type(result).__name__}, expected a polars LazyFrame")
    try:
        result.collect_schema()
    except Exception as exc:
        raise UsageError(f"{file}:{func}: the returned frame is invalid: {_first(exc)}") from None
    return result


def _user_error(exc: BaseException, root: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(root) in (f.filename or "")]
    where = f"{Path(frames[-1].filename).name} line {frames[-1].lineno} in {frames[-1].name}: " if frames else ""
    return f"{where}{type(exc).__name__}: {_first(exc)}"


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
