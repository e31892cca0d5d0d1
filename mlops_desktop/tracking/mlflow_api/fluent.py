"""MLflow's fluent functions beyond the logging hot path: tracking URI, experiments, run lookup and search, the
artifact helpers and dataset inputs, so that `import mlops_desktop.tracking as mlflow` runs MLflow scripts."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.tracking import client, context
from mlops_desktop.tracking import uri as uris
from mlops_desktop.tracking.mlflow_api import artifacts as arts
from mlops_desktop.tracking.mlflow_api import queries
from mlops_desktop.tracking.mlflow_api.convert import experiment_view, run_view
from mlops_desktop.tracking.mlflow_api.entities import Experiment, Run, ViewType
from mlops_desktop.tracking.mlflow_tables import MlflowTables


@contextlib.contextmanager
def _workspace() -> Iterator[Any]:
    from mlops_desktop.workspace import Workspace

    ws = Workspace.open(context.resolve_home())
    try:
        yield ws
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------- tracking URI
def set_tracking_uri(uri: str | Path) -> None:
    """Log into this workspace from now on: a folder, or mlops-desktop:///PATH (mlops-desktop: = the default)."""
    context.set_tracking_home(uris.workspace_from_uri(uri))


def get_tracking_uri() -> str:
    """The workspace runs go to, as an mlops-desktop:///PATH URI."""
    return uris.tracking_uri(context.resolve_home())


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The artifact URI of the active run (started if none is), or of one path inside it."""
    run = client._current()
    if not isinstance(run._sink, client.StoreSink):
        raise UsageError("a spooled run has no artifact URI until it is synced into a workspace")
    return uris.run_artifact_uri(run._sink.workspace.root, run.uuid, artifact_path or "")


def is_tracking_uri_set() -> bool:
    return context.state.tracking_home_set


# ---------------------------------------------------------------------------------------------- experiments
def set_experiment(experiment_name: str | None = None, experiment_id: str | int | None = None, *,
                   name: str | None = None) -> Experiment:
    """Make an experiment the active one, by name (created if missing) or by id (must exist); returns it.
    ``name=`` is accepted for ``experiment_name=``."""
    if name is not None:
        if experiment_name is not None:
            raise UsageError("pass the experiment's name once: experiment_name= or name=")
        experiment_name = name
    if (experiment_name is None) == (experiment_id is None):
        raise UsageError("set_experiment needs exactly one of experiment_name or experiment_id")
    if client.envvars.MLOPS_SPOOL.get():  # offline or remote: the run names its experiment, the import finds it
        if experiment_name is None:
            raise UsageError("a spooled run names its experiment", hint="use set_experiment(NAME)")
        context.state.experiment_name = experiment_name
        return Experiment("", experiment_name, "", "active", {}, 0, 0)
    with _workspace() as ws:
        tables = MlflowTables(ws.tracking)
        if experiment_name is not None:
            exp = ws.tracking.get_experiment_by_name(experiment_name)
            if exp is None:
                exp = ws.tracking.create_experiment(experiment_name)
            detail = tables.experiment_detail(exp.id)
        else:
            detail = tables.experiment_detail(_exp_id(experiment_id))
        if detail.deleted:
            raise UsageError(f"experiment {detail.experiment.name!r} is deleted",
                             hint="restore it with MlflowClient().restore_experiment(id), or use another name")
        context.set_active_experiment(ws.root, detail.experiment.id)
        context.state.experiment_name = detail.experiment.name
        return experiment_view(ws, detail)


def create_experiment(name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None) -> str:
    """Create an experiment and return its id; an experiment of that name must not exist yet."""
    with _workspace() as ws:
        return _create_experiment(ws, name, artifact_location, tags)


def _create_experiment(ws: Any, name: str, artifact_location: str | None, tags: dict[str, Any] | None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UsageError("an experiment needs a non-empty name")
    if artifact_location:
        raise UsageError("artifact_location cannot be chosen: artifacts live in the workspace's object store",
                         hint="omit artifact_location")
    existing = ws.tracking.get_experiment_by_name(name.strip())
    if existing is not None:
        raise UsageError(f"experiment {name!r} already exists (id {existing.id})",
                         hint="use set_experiment(name) or get_experiment_by_name(name)")
    exp = ws.tracking.create_experiment(name)
    if tags:
        MlflowTables(ws.tracking).set_experiment_tags(exp.id, tags)
    return str(exp.id)


def get_experiment(experiment_id: str | int) -> Experiment:
    with _workspace() as ws:
        return experiment_view(ws, MlflowTables(ws.tracking).experiment_detail(_exp_id(experiment_id)))


def get_experiment_by_name(name: str) -> Experiment | None:
    with _workspace() as ws:
        exp = ws.tracking.get_experiment_by_name(name)
        return experiment_view(ws, MlflowTables(ws.tracking).experiment_detail(exp.id)) if exp else None


def search_experiments(view_type: int = ViewType.ACTIVE_ONLY, max_results: int | None = None,
                       filter_string: str | None = None, order_by: list[str] | None = None) -> list[Experiment]:
    with _workspace() as ws:
        return queries.search_experiment_views(ws, view_type, max_results, filter_string, order_by)


def delete_experiment(experiment_id: str | int) -> None:
    with _workspace() as ws:
        MlflowTables(ws.tracking).set_experiment_deleted(_exp_id(experiment_id), True)


def set_experiment_tag(key: str, value: Any) -> None:
    set_experiment_tags({key: value})


def set_experiment_tags(tags: dict[str, Any]) -> None:
    with _workspace() as ws:
        exp_id = queries.current_experiment_id(ws, create=True)
        assert exp_id is not None
        MlflowTables(ws.tracking).set_experiment_tags(exp_id, tags)


def _exp_id(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise UsageError(f"experiment ids are numbers, got {value!r}", hint="look it up with get_experiment_by_name")
    return int(text)


# ---------------------------------------------------------------------------------------------- runs
def get_run(run_id: str) -> Run:
    """A run with its params, tags, last metric values and dataset inputs (points logged so far are flushed)."""
    for run in client._runs:
        if run.uuid == run_id:
            run.flush()
    with _workspace() as ws:
        return _run(ws, run_id)


def _run(ws: Any, run_id: str) -> Run:
    ours = ws.tracking.get_run(run_id)
    return run_view(ws, ours, MlflowTables(ws.tracking).dataset_inputs(ours.uuid))


def last_active_run() -> Run | None:
    """The active run, else the last one this process started (as MLflow's, e.g. after an autologged fit)."""
    run_id = client._runs[-1].uuid if client._runs else context.state.last_run_id
    if run_id is None:
        return None
    if not client._runs and context.state.last_run_home is None:
        return None  # a spooled run: nothing to read back here
    client.flush()
    from mlops_desktop.workspace import Workspace

    ws = Workspace.open(context.state.last_run_home or context.resolve_home())
    try:
        return _run(ws, run_id)
    finally:
        ws.close()


def search_runs(experiment_ids: list[str] | None = None, filter_string: str = "",
                run_view_type: int = ViewType.ACTIVE_ONLY, max_results: int = 100_000,
                order_by: list[str] | None = None, output_format: str = "pandas",
                search_all_experiments: bool = False, experiment_names: list[str] | None = None) -> Any:
    """Runs of the given (or the current) experiments matching MLflow's filter language, newest first:
    a pandas DataFrame shaped like MLflow's, or a list of runs with ``output_format="list"``."""
    if output_format not in ("pandas", "list"):
        raise UsageError(f"output_format must be 'pandas' or 'list', got {output_format!r}")
    client.flush()
    with _workspace() as ws:
        ids = queries.experiment_ids_arg(ws, experiment_ids, experiment_names, search_all_experiments)
        runs, _ = queries.search_run_views(ws, ids, filter_string, run_view_type, max_results, order_by)
    return runs if output_format == "list" else queries.runs_to_pandas(runs)


def delete_run(run_id: str) -> None:
    with _workspace() as ws:
        ws.tracking.delete_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    with _workspace() as ws:
        parent = ws.tracking.get_run(run_id).parent_uuid
        return _run(ws, parent) if parent else None


# ---------------------------------------------------------------------------------------------- artifacts
def _log_to_active(run_id: str | None = None) -> arts.LogFn:
    run = client._target(run_id)
    return lambda path, folder: run.log_artifact(path, folder)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    arts.log_text(_log_to_active(run_id), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    arts.log_dict(_log_to_active(run_id), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None) -> None:
    arts.log_figure(_log_to_active(), figure, artifact_file, save_kwargs)


def log_image(image: Any, artifact_file: str | None = None, key: str | None = None, step: int | None = None,
              timestamp: int | None = None, synchronous: bool | None = None) -> None:
    arts.log_image(_log_to_active(), image, artifact_file, key, step, timestamp)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """A table (DataFrame or dict of columns) as JSON or Parquet; logging to the same file appends rows."""
    arts.check_table_file(artifact_file)
    frame = arts.table_frame(data)
    run = client._target(run_id)
    if isinstance(run._sink, client.StoreSink):
        run.flush()
        store = run._sink.store
        known = {a.path for a in store.list_artifacts(run.uuid)}
        if artifact_file in known:
            import pandas as pd

            frame = pd.concat([arts.read_table(store.artifact_file(run.uuid, artifact_file)).reset_index(drop=True),
                               frame], ignore_index=True)
        current = store.get_run(run.uuid).tags.get("mlflow.loggedArtifacts")
    else:
        current = run._local_tags.get("mlflow.loggedArtifacts")
    name, folder = arts.check_artifact_file(artifact_file)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlops-table-") as tmp:
        path = Path(tmp) / name
        arts.write_table(frame, path)
        run.log_artifact(path, folder)
    run.set_tag("mlflow.loggedArtifacts", arts.logged_artifacts_tag(current, artifact_file))


def load_table(artifact_file: str, run_ids: list[str] | None = None, extra_columns: list[str] | None = None) -> Any:
    """The rows logged with log_table into ``artifact_file`` by these runs (default: the current experiment's)."""
    import pandas as pd

    client.flush()
    with _workspace() as ws:
        store = ws.tracking
        if run_ids is None:
            ids = queries.experiment_ids_arg(ws)
            run_ids = [r.info.run_id for r in queries.search_run_views(ws, ids)[0]]
        frames = []
        for run_id in run_ids:
            try:
                frame = arts.read_table(store.artifact_file(run_id, artifact_file))
            except NotFoundError:
                continue
            for col in extra_columns or []:
                if col == "run_id":
                    frame[col] = run_id
                else:
                    raise UsageError(f"extra column {col!r} is not known", hint="only 'run_id' is supported")
            frames.append(frame)
    if not frames:
        raise NotFoundError(f"no run has a table artifact {artifact_file!r}")
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------------- inputs
def log_input(dataset: Any, context: Any = None, tags: Any = None, model: Any = None, *,
              version: str | int | None = None, digest: str | None = None, name: str | None = None) -> None:
    """Record what the active run read (lineage): a lake dataset ("sales", "sales@3"), a pandas or polars
    DataFrame (by content digest), or an object with MLflow's dataset fields (name, digest, source...).

    Our earlier positional form ``log_input(dataset, version, digest, context)`` still works.
    """
    if isinstance(tags, str) or isinstance(context, int) or (isinstance(context, str) and context.isdigit()):
        version, digest, context = context, (tags or digest or ""), (model or "training")
        tags = None
    run = client._current()
    ctx = str(context or "training")
    if isinstance(dataset, str):
        _log_lake_input(run, dataset, ctx, version, digest)
        return
    fields = _dataset_fields(dataset, name)
    if isinstance(run._sink, client.StoreSink):
        MlflowTables(run._sink.store).log_dataset_input(run.uuid, fields["name"], fields["digest"], ctx,
                                                        version="" if version is None else str(version),
                                                        source_type=fields["source_type"], source=fields["source"],
                                                        schema=fields["schema"], profile=fields["profile"])
    else:
        run.log_input(fields["name"], fields["digest"] if version is None else str(version), fields["digest"], ctx)


def _log_lake_input(run: client.ActiveRun, ref: str, ctx: str, version: Any, digest: str | None) -> None:
    if version is not None:
        run.log_input(ref, str(version), digest or "", ctx)
        return
    if not isinstance(run._sink, client.StoreSink):
        raise UsageError(f"a spooled run cannot look up the lake dataset {ref!r}",
                         hint="pass version= (and digest=) explicitly")
    from mlops_desktop.data import catalog

    found = catalog.resolve(run._sink.workspace.db, ref)
    run.log_input(found.name, str(found.version), found.content_hash, ctx)


def _dataset_fields(dataset: Any, name: str | None) -> dict[str, str]:
    module = type(dataset).__module__
    if module.startswith(("pandas", "polars")):
        return _frame_fields(dataset, name)
    if hasattr(dataset, "digest") and hasattr(dataset, "name"):  # mlflow.data.Dataset and look-alikes
        source = getattr(dataset, "source", "")
        source_text = source.to_json() if hasattr(source, "to_json") else str(source or "")
        schema = getattr(dataset, "schema", None)
        profile = getattr(dataset, "profile", None)
        return {"name": name or str(dataset.name), "digest": str(dataset.digest),
                "source_type": str(getattr(source, "_get_source_type", lambda: "")() or ""),
                "source": source_text, "schema": json.dumps(schema, default=str) if schema is not None else "",
                "profile": json.dumps(profile, default=str) if profile is not None else ""}
    raise UsageError(f"log_input takes a lake dataset name, a DataFrame or an MLflow dataset, got "
                     f"{type(dataset).__name__}")


def _frame_fields(frame: Any, name: str | None) -> dict[str, str]:
    """A DataFrame's identity: a digest of its content (rows hashed by the library), its schema and size."""
    h = hashlib.sha256()
    if type(frame).__module__.startswith("pandas"):
        import pandas as pd

        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        schema = {str(c): str(t) for c, t in frame.dtypes.items()}
    else:
        h.update(frame.hash_rows(seed=0).to_numpy().tobytes())
        schema = {str(c): str(t) for c, t in frame.schema.items()}
    h.update(json.dumps(schema).encode())
    rows, cols = frame.shape
    return {"name": name or getattr(frame, "name", None) or "dataframe", "digest": h.hexdigest()[:8],
            "source_type": "dataframe", "source": "", "schema": json.dumps(schema),
            "profile": json.dumps({"num_rows": int(rows), "num_elements": int(rows * cols)})}
