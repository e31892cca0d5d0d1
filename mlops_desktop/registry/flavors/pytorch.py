"""The PyTorch flavor: a state_dict loaded with `weights_only=True` (tensors only, no pickled code) into the module
an architecture factory (`module:callable` + JSON kwargs) builds; preprocessing constants live in the manifest.

Preprocessing kinds: "stack" (the signature's columns as one float32 matrix) and "torch-mlp" (the built-in
recipe's one-hot encoding of text columns and standardisation with the training mean and std).
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

WEIGHTS_FILE = "model/weights.pt"
MLP_FACTORY = "mlops_desktop.recipes.torch_mlp:build_model"


def load_weights(path: Path) -> Any:
    """torch.load with weights_only=True: a file holding anything but tensors and plain containers is refused."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(f"{path.name} holds more than tensors, so it is not loaded (weights_only=True): {first}",
                         hint="save the state_dict: torch.save(model.state_dict(), 'weights.pt')") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UsageError(f"{path.name} is not a PyTorch weights file: {str(exc).splitlines()[0][:200]}",
                         hint="pass the --flavor that matches the file") from None


def _state_dict(obj: Any, path: Path) -> dict[str, Any]:
    import torch

    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()) and obj:
        return obj
    raise UsageError(f"{path.name} is not a state_dict (a mapping of names to tensors)",
                     hint="save it with torch.save(model.state_dict(), 'weights.pt')")


class TorchPredictor:
    flavor = "pytorch"
    serving_path = "torch"

    def __init__(self, module: Any, signature: Signature, config: dict[str, Any]) -> None:
        import torch

        self.module = module.eval()
        self.signature = signature
        self.config = config
        pre = config.get("preprocess") or {"kind": "stack"}
        self._kind = pre.get("kind", "stack")
        self._encoded = list(pre.get("columns") or [])
        self._mean = torch.tensor(pre["mean"], dtype=torch.float32) if pre.get("mean") is not None else None
        self._std = torch.tensor(pre["std"], dtype=torch.float32) if pre.get("std") is not None else None
        out = config.get("output") or {}
        self._classes = list(out.get("classes") or signature.classes)
        self._y_mean = float(out.get("y_mean", 0.0))
        self._y_std = float(out.get("y_std", 1.0))

    def _matrix(self, columns: Columns) -> Any:
        import numpy as np
        import torch

        if self._kind == "torch-mlp":
            import pandas as pd

            from mlops_desktop.recipes.torch_mlp import encode

            frame = pd.DataFrame({n: columns[n] for n in self.signature.input_names}, copy=False)
            x = torch.from_numpy(encode(frame, self._encoded).to_numpy(dtype="float32"))
        else:
            x = torch.from_numpy(np.column_stack([np.asarray(columns[n], dtype="float32")
                                                  for n in self.signature.input_names]))
        if self._mean is not None and self._std is not None:
            x = (x - self._mean) / self._std
        return x

    def predict(self, columns: Columns) -> dict[str, Any]:
        import numpy as np
        import torch

        with torch.inference_mode():
            out = self.module(self._matrix(columns)).float()
        if self.signature.task == "classification" and self._classes:
            proba = torch.softmax(out, dim=1).numpy().astype("float64")
            return {"prediction": np.asarray(self._classes)[proba.argmax(axis=1)], "probabilities": proba}
        values = out.numpy().astype("float64")
        values = values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values
        return {"prediction": values * self._y_std + self._y_mean}


def build_module(config: dict[str, Any], code_root: Path | None) -> Any:
    factory = code.resolve(config["factory"], code_root, "the architecture factory")
    try:
        return factory(**dict(config.get("kwargs") or {}))
    except TypeError as exc:
        raise UsageError(f"the architecture factory {config['factory']} refused its kwargs: {exc}") from None


def save(stage: Path, state: dict[str, Any], config: dict[str, Any], project_dir: Path | None) -> dict[str, Any]:
    """Write the state_dict and check the architecture accepts it; returns the flavor config."""
    import torch

    module_name, _ = code.parse_entrypoint(config["factory"], "the architecture factory")
    root = code.copy_module(module_name, stage, project_dir)
    config = {**config, "weights": WEIGHTS_FILE, "code": root}
    module = build_module(config, stage / root if root else None)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"the weights do not fit the architecture {config['factory']}: "
                         f"{str(exc).splitlines()[0][:300]}") from None
    target = stage / WEIGHTS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in state.items()}, target)
    return config


def from_mlp_artifact(model_file: Path, meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The torch-mlp recipe's model.pt + MLmodel.json -> (state_dict, flavor config)."""
    saved = load_weights(model_file)
    if not isinstance(saved, dict) or "model" not in saved:
        raise UsageError(f"{model_file.name} is not a torch-mlp recipe model (no 'model' state_dict)")
    state = _state_dict(saved["model"], model_file)
    config = {"factory": MLP_FACTORY,
              "kwargs": {"n_in": len(meta["columns"]), "hidden": list(meta["hidden"]), "n_out": int(meta["n_out"]),
                         "dropout": float(meta.get("dropout", 0.0))},
              "preprocess": {"kind": "torch-mlp", "columns": list(meta["columns"]),
                             "mean": [float(v) for v in saved["mean"].tolist()],
                             "std": [float(v) for v in saved["std"].tolist()]},
              "output": {"y_mean": float(saved.get("y_mean", 0.0)), "y_std": float(saved.get("y_std", 1.0))}}
    return state, config


def from_weights_file(model_file: Path, factory: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if model_file.suffix.lower() in (".onnx", ".skops"):
        raise UsageError(f"{model_file.name} is not a PyTorch weights file", hint="pass the --flavor that matches it")
    saved = load_weights(model_file)
    state = saved.get("model") if isinstance(saved, dict) and isinstance(saved.get("model"), dict) else saved
    return _state_dict(state, model_file), {"factory": factory, "kwargs": dict(kwargs), "preprocess": {"kind": "stack"},
                                            "output": {}}


def load(bundle: Bundle) -> TorchPredictor:
    config = bundle.flavor_config
    root = bundle.path / config["code"] if config.get("code") else None
    module = build_module(config, root)
    module.load_state_dict(_state_dict(load_weights(bundle.file(config.get("weights", WEIGHTS_FILE))),
                                       bundle.path / WEIGHTS_FILE))
    return TorchPredictor(module, bundle.signature, config)
