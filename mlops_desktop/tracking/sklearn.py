"""`mlflow.sklearn.log_model` for `import mlops_desktop.tracking as mlflow`: a fitted estimator saved with skops
(no pickle) as a model folder among the active run's artifacts."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError


@dataclass(frozen=True)
class ModelInfo:
    """What MLflow's log_model returns, as far as a run-artifact model has it."""

    artifact_path: str
    model_uri: str
    run_id: str
    flavors: dict[str, Any]


def log_model(sk_model: Any, artifact_path: str | None = None, *, name: str | None = None,
              registered_model_name: str | None = None, signature: Any = None, input_example: Any = None,
              **_mlflow: Any) -> ModelInfo:
    """Save ``sk_model`` (skops format) into the active run's artifacts under ``name`` (or ``artifact_path``,
    default "model"), with the files the model registry reads (MLmodel.json, the input example, the training
    environment; the signature is inferred at registration from the example or the fitted model). With
    ``registered_model_name`` the folder becomes the next version of that registered model at once."""
    from mlops_desktop.tracking import client

    if not hasattr(sk_model, "predict"):
        raise UsageError(f"log_model takes a fitted scikit-learn estimator, got {type(sk_model).__name__}")
    import sklearn

    from mlops_desktop.registry.environment import ENVIRONMENT_FILE, capture
    from mlops_desktop.registry.example import EXAMPLE_FILE, frame_to_json, write_example
    from mlops_desktop.registry.flavors.sklearn import skops_io

    sio = skops_io()
    path = (name or artifact_path or "model").strip("/")
    run = client._current()
    flavors = {"sklearn": {"pickled_model": "model.skops", "serialization_format": "skops",
                           "sklearn_version": sklearn.__version__, "code": None},
               "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.skops",
                                   "predict_fn": "predict", "env": {"virtualenv": "python_env.yaml"}}}
    with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
        folder = Path(tmp)
        sio.dump(sk_model, folder / "model.skops")
        description = {"artifact_path": path, "flavors": flavors, "run_id": run.uuid,
                       "utc_time_created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
        (folder / "MLmodel").write_text(json.dumps(description, indent=2))
        (folder / "MLmodel.json").write_text(json.dumps({"flavor": "sklearn", "format": "skops", "run": run.uuid}))
        example = _example_frame(input_example, sk_model)
        if example is not None:
            write_example(folder / EXAMPLE_FILE, frame_to_json(example, 5))
        if signature is not None:  # MLflow's own signature object, kept for reference; ours is inferred
            sig = signature.to_dict() if hasattr(signature, "to_dict") else signature
            (folder / "mlflow_signature.json").write_text(json.dumps(sig, indent=2, default=str))
        (folder / ENVIRONMENT_FILE).write_text(json.dumps(
            capture(["sklearn", "numpy", "scipy", "pandas", "skops", "joblib", "threadpoolctl"]), indent=2))
        for child in sorted(folder.iterdir()):
            run.log_artifact(child, path)
    if registered_model_name:
        _register(run.uuid, path, registered_model_name)
    return ModelInfo(path, f"runs:/{run.uuid}/{path}", run.uuid, flavors)


def _register(run_uuid: str, path: str, name: str) -> None:
    """MLflow registers while the run is still open; our registry takes finished runs, so the registration is made
    when the run ends (the job runner's `mlops.register` hook), or at once for a run that already ended."""
    from mlops_desktop.tracking import client
    from mlops_desktop.tracking.mlflow_api.registry_view import model_name

    ours = model_name(name)
    run = client._current()
    run.set_tags({"mlops.register": ours, "mlops.register.artifact": path})
    renamed = f" (MLflow's name {name!r}: model names here are DNS labels)" if ours != name else ""
    print(f"mlops-desktop: {path!r} of run {run_uuid[:8]} becomes the next version of {ours!r}{renamed} when the "
          "run ends", file=sys.stderr)


def _example_frame(example: Any, model: Any) -> Any:
    """The input example as a pandas DataFrame named as the model was fitted (MLflow accepts frames, arrays, dicts)."""
    if example is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, dict):
        return pd.DataFrame({k: np.atleast_1d(np.asarray(v)) for k, v in example.items()})
    arr = np.asarray(example)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    names = [str(n) for n in getattr(model, "feature_names_in_", [])] or [f"f{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=names[: arr.shape[1]])
