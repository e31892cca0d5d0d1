"""Registration requested by a run (`--register NAME` of a recipe or job): the run's `mlops.register` tag names the
model; whoever sees the run succeed first (the recipe, or the job runner once a remote job's results are back)
registers it; `mlops.registered` records the version, `mlops.register.error` why it could not be made."""

from __future__ import annotations

from typing import Any

from mlops_desktop.errors import MlopsError

REGISTER_TAG = "mlops.register"
REGISTERED_TAG = "mlops.registered"
ERROR_TAG = "mlops.register.error"
ARTIFACT_TAG = "mlops.register.artifact"  # which artifact folder (default: the one holding MLmodel.json)


def register_pending(ws: Any, run_uuid: str) -> str | None:
    """Register the run's model if it asked for it and it is not done yet; a sentence saying what happened."""
    from mlops_desktop import registry

    run = ws.tracking.get_run(run_uuid)
    name = run.tags.get(REGISTER_TAG)
    if not name or run.tags.get(REGISTERED_TAG) or run.status != "finished":
        return None
    try:
        result = registry.register(ws, run_uuid, name, artifact=run.tags.get(ARTIFACT_TAG) or None)
    except MlopsError as exc:
        ws.tracking.set_tags(run_uuid, {ERROR_TAG: str(exc)[:1000]})
        return f"registering the model as {name} failed: {exc}"
    ws.tracking.set_tags(run_uuid, {REGISTERED_TAG: result.version.ref})
    served = f" (serving path {result.version.serving_path})"
    return f"registered {result.version.ref}{served}" + "".join(f"\n  note: {w}" for w in result.warnings)
