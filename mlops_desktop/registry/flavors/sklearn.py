"""The scikit-learn flavor: skops files only (never pickle), loaded with a trusted-types check; its predictor takes
columns and returns `prediction` (and `probabilities` for classifiers)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError
from mlops_desktop.registry.predictor import Columns
from mlops_desktop.registry.signature import Signature

if TYPE_CHECKING:
    from mlops_desktop.registry.bundle import Bundle

MODEL_FILE = "model/model.skops"
# Types our pipelines contain that skops does not trust by default, yet that run no code when loaded.
SAFE_EXTRA_TYPES = frozenset({"numpy.dtype"})
# Types defined by these libraries are trusted too (e.g. sklearn.tree._tree.Tree inside every forest): skops
# rebuilds them from arrays and never calls them while loading. A function or class from anywhere else (the
# project, builtins.eval, os.system) is refused.
TRUSTED_LIBRARIES = ("sklearn", "numpy", "scipy")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".cloudpickle")


class SklearnPredictor:
    """Wraps a fitted estimator or pipeline. Classifiers with predict_proba are called once per batch: the label is
    the arg-max of the probabilities (what `predict` computes for every built-in classifier), not a second pass."""

    flavor = "sklearn"
    serving_path = "sklearn"

    def __init__(self, model: Any, signature: Signature) -> None:
        self.model = model
        self.signature = signature
        self._names = signature.input_names
        self._proba = signature.task == "classification" and hasattr(model, "predict_proba")
        self._classes = getattr(model, "classes_", None)

    def predict(self, columns: Columns) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame({name: columns[name] for name in self._names}, copy=False)
        if self._proba and self._classes is not None:
            proba = np.asarray(self.model.predict_proba(frame))
            return {"prediction": np.asarray(self._classes)[proba.argmax(axis=1)], "probabilities": proba}
        return {"prediction": np.asarray(self.model.predict(frame))}


def skops_io() -> Any:
    """`skops.io`, imported without dragging in torch.

    skops lists scikit-learn's estimators at import (`sklearn.utils.all_estimators`), whose package walk imports
    sklearn's array-API shim for torch, and with it torch itself: seconds of start-up (12 s on a loaded 2-core
    machine) for a server or a GUI that never touches torch. When torch is not loaded yet, that one shim is made
    unimportable for the duration of the import (the walk ignores packages that fail to import), then restored.
    """
    import sys

    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io as sio

        return sio
    shim = "sklearn.externals.array_api_compat.torch"
    had = shim in sys.modules
    if not had:
        sys.modules[shim] = None  # type: ignore[assignment]  # None in sys.modules: ImportError on import
    try:
        import skops.io as sio
    finally:
        if not had and sys.modules.get(shim, 0) is None:
            del sys.modules[shim]
    return sio


def untrusted_types(path: str | Path) -> list[str]:
    """Types in a skops file that neither skops nor we trust (loading them could run their code)."""
    sio = skops_io()

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds for a file that is not its format
        raise UsageError(f"{path} is not a readable skops file: {type(exc).__name__}: {exc}",
                         hint="scikit-learn models must be saved with skops.io.dump (no pickles)") from None
    return [t for t in found if t not in SAFE_EXTRA_TYPES and t.split(".", 1)[0] not in TRUSTED_LIBRARIES]


def load_skops(path: str | Path) -> Any:
    """Load a skops file, refusing it in words if it holds types that are not trusted."""
    sio = skops_io()

    unsafe = untrusted_types(path)
    if unsafe:
        raise UsageError(f"{path} contains types that are not trusted: {', '.join(unsafe[:5])}"
                         + (f" and {len(unsafe) - 5} more" if len(unsafe) > 5 else ""),
                         hint="only types of scikit-learn, numpy and scipy are loaded; loading others could run code")
    try:
        return sio.load(path, trusted=list(sio.get_untrusted_types(file=path)))
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot load the skops file {path}: {type(exc).__name__}: {exc}") from None


def check_model_file(path: Path) -> None:
    """A scikit-learn artifact must be a .skops file; pickles are refused by name."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UsageError(f"{path.name} is a pickle; pickled scikit-learn models are never loaded (unpickling runs "
                         "arbitrary code)", hint="save the model with skops.io.dump(model, 'model.skops') and "
                         "register that file")
    if path.suffix.lower() != ".skops":
        raise UsageError(f"{path.name} is not a skops file, so it is not a scikit-learn model artifact",
                         hint="pass --flavor for what it is (pytorch, onnx, python), or register a .skops file")


def save(stage: Path, model_file: Path) -> tuple[dict[str, Any], Any]:
    """Copy the checked skops file into the bundle; returns the flavor config and the loaded model."""
    check_model_file(model_file)
    model = load_skops(model_file)
    if not hasattr(model, "predict"):
        raise UsageError(f"{model_file.name} holds a {type(model).__name__}, which has no predict method")
    target = stage / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, target)
    return {"file": MODEL_FILE, "format": "skops", "estimator": _estimator_name(model)}, model


def _estimator_name(model: Any) -> str:
    steps = getattr(model, "steps", None)
    last = steps[-1][1] if steps else model
    return f"{type(last).__module__}.{type(last).__name__}"


def load(bundle: Bundle) -> SklearnPredictor:
    config = bundle.flavor_config
    return SklearnPredictor(load_skops(bundle.file(config.get("file", MODEL_FILE))), bundle.signature)
