"""The python flavor: a `predict(columns) -> dict | array` function of the project, its code copied into the bundle.

Loading imports that code, so it runs: only for functions the user registered in this workspace (or an MLflow
pyfunc they opted in to, saying they produced it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError
from mlops_desktop.registry import code
from mlops_desktop.registry.predictor import Columns
from mlops_desktop.registry.signature import Signature

if TYPE_CHECKING:
    from mlops_desktop.registry.bundle import Bundle


class PythonPredictor:
    flavor = "python"
    serving_path = "python"

    def __init__(self, fn: Any, signature: Signature, entrypoint: str) -> None:
        self.fn = fn
        self.signature = signature
        self.entrypoint = entrypoint

    def predict(self, columns: Columns) -> dict[str, Any]:
        import numpy as np

        out = self.fn({name: columns[name] for name in self.signature.input_names})
        if isinstance(out, dict):
            if "prediction" not in out:
                raise UsageError(f"{self.entrypoint} returned a dict without 'prediction'")
            return {k: np.asarray(v) for k, v in out.items()}
        return {"prediction": np.asarray(out)}


def save(stage: Path, entrypoint: str, project_dir: Path | None) -> dict[str, Any]:
    module, _ = code.parse_entrypoint(entrypoint, "the predict function")
    root = code.copy_module(module, stage, project_dir)
    config: dict[str, Any] = {"entrypoint": entrypoint, "code": root}
    code.resolve(entrypoint, stage / root if root else None, "the predict function")  # it imports and is callable
    return config


def load(bundle: Bundle) -> PythonPredictor:
    config = bundle.flavor_config
    root = bundle.path / config["code"] if config.get("code") else None
    fn = code.resolve(config["entrypoint"], root, "the predict function")
    return PythonPredictor(fn, bundle.signature, config["entrypoint"])
