"""The ONNX flavor (onnxruntime): a model registered as .onnx, and the verified fast path of a scikit-learn model.

Two input layouts: "columns" (one [N, 1] input per signature column, what skl2onnx makes of a pipeline with a
column transformer) and "matrix" (one [N, F] float input, columns stacked in signature order).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError
from mlops_desktop.registry.predictor import Columns
from mlops_desktop.registry.signature import INTEGER_TYPES, Signature

if TYPE_CHECKING:
    from mlops_desktop.registry.bundle import Bundle

MODEL_FILE = "model/model.onnx"
FAST_FILE = "fast/model.onnx"
_ORT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(string)": "object", "tensor(bool)": "bool"}


def session(path: Path) -> Any:
    import onnxruntime as ort

    with contextlib.suppress(AttributeError):
        ort.disable_telemetry_events()  # nothing leaves the machine; the server must not phone home
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings of the optimiser are not the user's business
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise UsageError(f"{path.name} is not an ONNX model onnxruntime can load: {str(exc).splitlines()[0]}",
                         hint="pass the --flavor that matches the file") from None


class OnnxPredictor:
    """Runs an onnxruntime session once per batch; classifiers' labels are the arg-max of the probabilities."""

    serving_path = "onnxruntime"

    def __init__(self, sess: Any, signature: Signature, *, flavor: str, layout: str, classes: list[Any]) -> None:
        self.session = sess
        self.signature = signature
        self.flavor = flavor
        self.layout = layout
        self._inputs = [(i.name, _ORT_TYPES.get(i.type, "float32")) for i in sess.get_inputs()]
        self._outputs = [o.name for o in sess.get_outputs()]
        self._classes = list(classes or signature.classes)
        if layout == "matrix" and len(self._inputs) != 1:
            raise UsageError(f"the ONNX model has {len(self._inputs)} inputs; the matrix layout needs one")
        if layout == "columns":
            names = set(signature.input_names)
            unknown = [n for n, _ in self._inputs if n not in names]
            if unknown:
                raise UsageError(f"the ONNX model's inputs {', '.join(unknown)} are not columns of the signature")

    def feeds(self, columns: Columns) -> dict[str, Any]:
        import numpy as np

        if self.layout == "matrix":
            name, dtype = self._inputs[0]
            matrix = np.column_stack([np.asarray(columns[c], dtype=dtype) for c in self.signature.input_names])
            return {name: matrix}
        out = {}
        for name, dtype in self._inputs:
            values = np.asarray(columns[name])
            if dtype == "object":
                values = _string_feed(values)
            else:
                values = values.astype(dtype, copy=False)
            out[name] = values.reshape(-1, 1)
        return out

    def predict(self, columns: Columns) -> dict[str, Any]:
        import numpy as np

        results = self.session.run(None, self.feeds(columns))
        if self.signature.task == "classification":
            proba = next((np.asarray(r) for r in reversed(results)
                          if getattr(r, "ndim", 0) == 2 and np.asarray(r).dtype.kind == "f"), None)
            if proba is not None and self._classes and proba.shape[1] == len(self._classes):
                return {"prediction": np.asarray(self._classes)[proba.argmax(axis=1)],
                        "probabilities": proba.astype("float64", copy=False)}
            return {"prediction": np.asarray(results[0]).reshape(-1)}
        pred = np.asarray(results[0])
        return {"prediction": (pred.reshape(-1) if pred.ndim == 2 and pred.shape[1] == 1 else pred)
                .astype("float64", copy=False) if pred.dtype.kind == "f" else pred}


def _string_feed(values: Any) -> Any:
    """A text column as onnxruntime takes it: an object array of str, None as "". An object array that already
    holds only str (what a Parquet/Arrow text column without nulls gives) is passed as it is: converting each
    value in Python cost as much as the model itself on large batches."""
    import numpy as np

    if values.dtype.kind == "U":
        return values.astype(object)
    if values.dtype.kind == "O" and len(values) and isinstance(values[0], str):
        isnull = values == None  # noqa: E711 - elementwise, in C
        if not isnull.any() and all(type(v) is str for v in values[:64]):
            return values
    return np.array(["" if v is None else str(v) for v in values.tolist()], dtype=object)


def save(stage: Path, model_file: Path, signature: Signature) -> dict[str, Any]:
    """Copy a .onnx file into the bundle after checking onnxruntime loads it and its inputs fit the signature."""
    check_file(model_file)
    sess = session(model_file)
    inputs = sess.get_inputs()
    layout = "matrix" if len(inputs) == 1 and inputs[0].name not in signature.input_names else "columns"
    OnnxPredictor(sess, signature, flavor="onnx", layout=layout, classes=list(signature.classes))  # checks inputs
    target = stage / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, target)
    return {"file": MODEL_FILE, "layout": layout}


def check_file(model_file: Path) -> None:
    if model_file.suffix.lower() != ".onnx":
        raise UsageError(f"{model_file.name} is not an .onnx file, so it is not an ONNX model artifact",
                         hint="pass the --flavor that matches the file")


def load(bundle: Bundle) -> OnnxPredictor:
    config = bundle.flavor_config
    return OnnxPredictor(session(bundle.file(config.get("file", MODEL_FILE))), bundle.signature, flavor="onnx",
                         layout=config.get("layout", "matrix"), classes=list(bundle.signature.classes))


def load_fast_path(bundle: Bundle) -> OnnxPredictor:
    """The verified ONNX translation of a scikit-learn bundle (raises ImportError without onnxruntime)."""
    import onnxruntime  # noqa: F401 - ImportError here means: serve with the flavor's own path

    fast = bundle.fast_path
    return OnnxPredictor(session(bundle.file(fast["file"])), bundle.signature, flavor=bundle.flavor,
                         layout=fast.get("layout", "columns"), classes=list(fast.get("classes") or []))


def numeric_dtype(dtype: str) -> bool:
    return dtype in INTEGER_TYPES or dtype in ("float32", "float64", "bool")
