"""Lineage of a model version back to its run, the dataset versions the run read and the pipeline steps that made
them; and forward, from a dataset to the model versions trained on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.registry.entities import ModelVersion

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace


def version_lineage(ws: Workspace, mv: ModelVersion) -> dict[str, Any]:
    from mlops_desktop.data import catalog

    run: dict[str, Any] | None = None
    if mv.run_uuid:
        try:
            info = ws.tracking.get_run(mv.run_uuid)
            run = {"uuid": info.uuid, "name": info.name, "status": info.status,
                   "experiment": ws.tracking.get_experiment(info.experiment_id).name}
        except NotFoundError:
            run = {"uuid": mv.run_uuid, "name": "", "status": "deleted", "experiment": ""}
    datasets: list[dict[str, Any]] = []
    for item in mv.inputs:
        entry: dict[str, Any] = {"dataset": item["dataset"], "version": item["version"], "context": item["context"],
                                 "in_lake": False, "producer_step": None, "parents": []}
        try:
            version = catalog.resolve(ws.db, f"{item['dataset']}@{item['version']}")
        except (NotFoundError, UsageError):
            datasets.append(entry)  # e.g. a CSV file read by a recipe, or a dataset not in this lake
            continue
        entry.update(ref=version.ref, in_lake=True, producer_step=version.producer_step, parents=version.parents,
                     rows=version.row_count)
        datasets.append(entry)
    steps = sorted({d["producer_step"] for d in datasets if d.get("producer_step")})
    return {"version": mv.ref, "run": run, "datasets": datasets, "pipeline_steps": steps}


def models_trained_on(ws: Workspace, dataset: str, version: str | None = None) -> list[dict[str, Any]]:
    """Model versions whose run read the dataset (any version, or one)."""
    from mlops_desktop import registry

    return [{"model": mv.ref, "dataset_version": next((i["version"] for i in mv.inputs if i["dataset"] == dataset), ""),
             "run": mv.run_uuid, "aliases": list(mv.aliases), "created_at": mv.created_at}
            for mv in registry.store(ws).versions_for_dataset(dataset, version)]
