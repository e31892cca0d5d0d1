"""Searches in MLflow's terms: experiments by filter, runs by MLflow's filter language, runs as a DataFrame."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlops_desktop import envvars
from mlops_desktop.errors import UsageError
from mlops_desktop.tracking.mlflow_api.convert import experiment_view, run_view
from mlops_desktop.tracking.mlflow_api.entities import Experiment, Run, ViewType
from mlops_desktop.tracking.mlflow_tables import MlflowTables

_CLAUSE = re.compile(r"""^\s*(?P<field>(?:tags|params)\.(?:`[^`]+`|"[^"]+"|[\w.\-]+)|(?:attributes?\.)?\w+)\s*
                         (?P<op>!=|<=|>=|=|<|>|\bNOT\s+LIKE\b|\bLIKE\b|\bILIKE\b)\s*
                         (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[-+]?\d+(?:\.\d*)?)\s*$""",
                     re.IGNORECASE | re.VERBOSE)
_AND = re.compile(r"\s+AND\s+(?=(?:[^'\"]|'[^']*'|\"[^\"]*\")*$)", re.IGNORECASE)


def _like(pattern: str, case: bool) -> Callable[[str], bool]:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    compiled = re.compile(f"^{regex}$", 0 if case else re.IGNORECASE | re.DOTALL)
    return lambda text: compiled.match(text) is not None


def experiment_predicate(filter_string: str | None) -> Callable[[Experiment], bool]:
    """MLflow's experiment filter: name, creation_time, last_update_time, tags.KEY with =, !=, <, >, LIKE, ILIKE,
    joined by AND."""
    def field(name: str) -> Callable[[Experiment], Any] | None:
        if name.lower().startswith("tags."):
            return _tag_getter(name[5:].strip("`\""))
        if name.lower() in ("name", "creation_time", "last_update_time", "experiment_id"):
            return _attr_getter(name.lower())
        return None

    return entity_predicate(filter_string, field, "name, creation_time, last_update_time or tags.KEY",
                            "name = 'churn' AND tags.team = 'ml' (or name LIKE 'churn%')")


def entity_predicate(filter_string: str | None, field: Callable[[str], Callable[[Any], Any] | None],
                     fields_hint: str, example: str) -> Callable[[Any], bool]:
    """A filter of `FIELD OP VALUE` clauses joined by AND, evaluated in Python over a few entities."""
    if not filter_string or not filter_string.strip():
        return lambda e: True
    tests: list[Callable[[Any], bool]] = []
    for clause in _AND.split(filter_string.strip()):
        m = _CLAUSE.match(clause)
        if not m:
            raise UsageError(f"bad filter clause {clause.strip()!r}", hint=f"e.g. {example}")
        name = m["field"].split(".", 1)[1] if m["field"].lower().startswith("attribute") else m["field"]
        op = " ".join(m["op"].upper().split())
        raw = m["value"]
        value: Any = raw[1:-1] if raw[0] in "'\"" else float(raw)
        get = field(name)
        if get is None:
            raise UsageError(f"cannot filter by {m['field']!r}", hint=f"use {fields_hint}")
        tests.append(_compare(get, op, value))
    return lambda e: all(t(e) for t in tests)


def _tag_getter(key: str) -> Callable[[Any], Any]:
    return lambda e: e.tags.get(key)


def _attr_getter(attr: str) -> Callable[[Any], Any]:
    return lambda e: getattr(e, attr)


def _compare(get: Callable[[Any], Any], op: str, value: Any) -> Callable[[Any], bool]:
    if op in ("LIKE", "ILIKE", "NOT LIKE"):
        match = _like(str(value), case=op != "ILIKE")
        negate = op == "NOT LIKE"
        return lambda e: (v := get(e)) is not None and match(str(v)) != negate
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    fn = ops[op]

    def test(e: Any) -> bool:
        v = get(e)
        if v is None:
            return False
        if isinstance(value, float):
            try:
                return fn(float(v), value)
            except ValueError:
                return False
        return fn(str(v), value)

    return test


def search_experiment_views(ws: Any, view_type: int = ViewType.ACTIVE_ONLY, max_results: int | None = None,
                            filter_string: str | None = None, order_by: list[str] | None = None) -> list[Experiment]:
    details = MlflowTables(ws.tracking).experiment_details()
    if view_type == ViewType.ACTIVE_ONLY:
        details = [d for d in details if not d.deleted]
    elif view_type == ViewType.DELETED_ONLY:
        details = [d for d in details if d.deleted]
    views = [experiment_view(ws, d) for d in details]
    keep = experiment_predicate(filter_string)
    views = [v for v in views if keep(v)]
    orders = list(order_by or ["last_update_time DESC"])
    for item in reversed(orders + ["experiment_id ASC"]):
        parts = item.split()
        key = parts[0].lower().removeprefix("attributes.")
        if key not in ("experiment_id", "name", "creation_time", "last_update_time"):
            raise UsageError(f"cannot order experiments by {item!r}",
                             hint="use experiment_id, name, creation_time or last_update_time")
        desc = len(parts) > 1 and parts[1].upper() == "DESC"
        def sort_key(v: Experiment, k: str = key) -> Any:
            return int(v.experiment_id) if k == "experiment_id" else getattr(v, k)

        views.sort(key=sort_key, reverse=desc)
    return views[:max_results] if max_results is not None else views


def current_experiment_id(ws: Any, create: bool = False) -> int | None:
    """What MLflow calls the current experiment: set_experiment(), else $MLOPS_EXPERIMENT /
    $MLFLOW_EXPERIMENT_NAME, else $MLFLOW_EXPERIMENT_ID, else "Default"."""
    from mlops_desktop.tracking import context

    active = context.active_experiment_id(ws.root)
    if active is not None:
        return active
    name = envvars.MLOPS_EXPERIMENT.get() or envvars.MLFLOW_EXPERIMENT_NAME.get()
    if not name and (env_id := envvars.MLFLOW_EXPERIMENT_ID.get()):
        if not env_id.strip().isdigit():
            raise UsageError(f"MLFLOW_EXPERIMENT_ID={env_id!r} is not an experiment id (a number)")
        return int(env_id)
    name = name or "Default"
    exp = ws.tracking.get_experiment_by_name(name)
    if exp is None and create:
        exp = ws.tracking.create_experiment(name)
    return exp.id if exp is not None else None


def experiment_ids_arg(ws: Any, experiment_ids: Any = None, experiment_names: list[str] | None = None,
                       search_all: bool = False) -> list[int] | None:
    """The experiments a run search covers (None = every one)."""
    if isinstance(experiment_ids, str | int):
        experiment_ids = [experiment_ids]
    ids: list[int] = []
    for value in experiment_ids or []:
        text = str(value).strip()
        if not text.isdigit():
            raise UsageError(f"experiment ids are numbers, got {value!r}", hint="use experiment_names=[...]")
        ids.append(int(text))
    for name in experiment_names or []:
        exp = ws.tracking.get_experiment_by_name(name)
        if exp is not None:
            ids.append(exp.id)
    if ids or experiment_names:
        return ids
    if search_all:
        return None
    current = current_experiment_id(ws)
    return [current] if current is not None else []


def search_run_views(ws: Any, experiment_ids: list[int] | None, filter_string: str | None = "",
                     run_view_type: int = ViewType.ACTIVE_ONLY, max_results: int = 100_000,
                     order_by: list[str] | None = None, offset: int = 0) -> tuple[list[Run], int | None]:
    """Runs in MLflow's filter language (times in ms, attributes., tags.mlflow.runName...), newest first."""
    if experiment_ids is not None and not experiment_ids:
        return [], None
    if max_results is None or max_results < 0:
        raise UsageError("max_results must be a positive number")
    store = ws.tracking
    runs: list[Run] = []
    page_size = 1000
    next_offset: int | None = offset
    while next_offset is not None and len(runs) < max_results:
        page = store.search_runs(experiment_ids, filter_string, order_by, min(page_size, max_results - len(runs)),
                                 next_offset, include_deleted=run_view_type == ViewType.ALL,
                                 only_deleted=run_view_type == ViewType.DELETED_ONLY, ms_times=True)
        runs.extend(run_view(ws, r) for r in page.runs)
        next_offset = page.next_offset
        if not page.runs:
            break
    return runs, next_offset


def runs_to_pandas(runs: list[Run]) -> Any:
    """MLflow's search_runs DataFrame: run_id, experiment_id, status, artifact_uri, start_time, end_time (UTC
    datetimes), then metrics.*, params.*, tags.* with NaN / None where a run lacks one."""
    import numpy as np
    import pandas as pd

    info: dict[str, list[Any]] = {k: [] for k in ("run_id", "experiment_id", "status", "artifact_uri", "start_time",
                                                   "end_time")}
    metrics: dict[str, list[Any]] = {}
    params: dict[str, list[Any]] = {}
    tags: dict[str, list[Any]] = {}
    for i, run in enumerate(runs):
        for key in info:
            info[key].append(getattr(run.info, key))
        for target, values, missing in ((metrics, run.data.metrics, np.nan), (params, run.data.params, None),
                                        (tags, run.data.tags, None)):
            for key in target:
                target[key].append(values.get(key, missing))
            for key in [k for k in values if k not in target]:
                target[key] = [missing] * i + [values[key]]
    data: dict[str, list[Any]] = dict(info)
    data.update({f"metrics.{k}": v for k, v in metrics.items()})
    data.update({f"params.{k}": v for k, v in params.items()})
    data.update({f"tags.{k}": v for k, v in tags.items()})
    frame = pd.DataFrame(data)
    frame["start_time"] = pd.to_datetime(frame["start_time"], unit="ms", utc=True)
    frame["end_time"] = pd.to_datetime(frame["end_time"], unit="ms", utc=True)
    return frame
