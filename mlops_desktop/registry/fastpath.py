"""The ONNX fast path of a scikit-learn model: convert with skl2onnx, keep it only if onnxruntime reproduces the
model's own predictions on the input example and a held-out sample.

Tolerance: classifiers must give the same label on every row and probabilities within PROBA_ATOL (absolute);
regressors within REG_ATOL + REG_RTOL * |prediction|. ONNX computes in float32, scikit-learn in float64: a tree
threshold between two float64 values that round to the same float32 is where they part, and why this is checked
on data instead of assumed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_desktop.registry.flavors.onnx import FAST_FILE, OnnxPredictor, session
from mlops_desktop.registry.flavors.sklearn import SklearnPredictor
from mlops_desktop.registry.signature import Signature

PROBA_ATOL = 1e-4
REG_ATOL = 1e-4
REG_RTOL = 1e-4


def _final_estimator(model: Any) -> Any:
    steps: Any = getattr(model, "steps", None)
    return _final_estimator(steps[-1][1]) if steps else model


def _has_column_transformer(model: Any) -> bool:
    from sklearn.compose import ColumnTransformer

    steps: Any = getattr(model, "steps", None)
    return bool(steps) and isinstance(steps[0][1], ColumnTransformer)


def _initial_types(signature: Signature, layout: str) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    if layout == "matrix":
        return [("input", FloatTensorType([None, len(signature.inputs)]))]
    return [(c.name, FloatTensorType([None, 1]) if c.numeric or c.dtype == "bool" else StringTensorType([None, 1]))
            for c in signature.inputs]


def build(model: Any, signature: Signature, stage: Path, samples: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Try the fast path; returns the manifest's `fast_path` record (verified, mismatch, unsupported, unavailable).

    `samples` are (label, columns) pairs: the input example, a held-out sample. The ONNX file is written into
    `stage` only when verified.
    """
    try:
        import onnxruntime
        import skl2onnx
    except ImportError as exc:
        return {"status": "unavailable", "reason": f"{exc.name} is not installed"}
    rows = sum(len(next(iter(cols.values()))) for _, cols in samples if cols)
    if not rows:
        return {"status": "unverified", "reason": "no input example or held-out rows to verify the ONNX model on"}
    layout = "columns" if _has_column_transformer(model) else "matrix"
    if layout == "matrix" and not all(c.numeric or c.dtype == "bool" for c in signature.inputs):
        return {"status": "unsupported", "reason": "text columns need a ColumnTransformer in front of the model"}
    options: dict[Any, Any] = {}
    if signature.task == "classification":
        options = {id(_final_estimator(model)): {"zipmap": False}}
    try:
        onx = skl2onnx.convert_sklearn(model, initial_types=_initial_types(signature, layout), options=options)
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises many kinds for what it cannot convert
        return {"status": "unsupported", "reason": f"skl2onnx cannot convert it: {type(exc).__name__}: "
                                                   f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"}
    target = stage / FAST_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(onx.SerializeToString())
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])] \
        if signature.task == "classification" else []
    record: dict[str, Any] = {"kind": "onnx", "file": FAST_FILE, "layout": layout, "classes": classes,
                              "skl2onnx": skl2onnx.__version__, "onnxruntime": onnxruntime.__version__,
                              "tolerance": {"labels": "equal", "probabilities_atol": PROBA_ATOL}
                              if signature.task == "classification" else {"atol": REG_ATOL, "rtol": REG_RTOL}}
    try:
        fast = OnnxPredictor(session(target), signature, flavor="sklearn", layout=layout, classes=classes)
        checks = [_compare(label, SklearnPredictor(model, signature).predict(cols), fast.predict(cols), signature)
                  for label, cols in samples if cols and len(next(iter(cols.values())))]
    except Exception as exc:  # noqa: BLE001 - a converted model onnxruntime cannot run is a mismatch too
        target.unlink(missing_ok=True)
        return record | {"status": "mismatch", "reason": f"onnxruntime cannot run the converted model: "
                                                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    record["checks"] = checks
    bad = [c for c in checks if not c["ok"]]
    if bad:
        target.unlink(missing_ok=True)
        del record["file"]
        return record | {"status": "mismatch", "reason": "; ".join(c["problem"] for c in bad)}
    return record | {"status": "verified"}


def _compare(label: str, ref: dict[str, Any], got: dict[str, Any], signature: Signature) -> dict[str, Any]:
    import numpy as np

    rows = len(ref["prediction"])
    out: dict[str, Any] = {"sample": label, "rows": rows, "ok": True}
    if signature.task == "classification":
        a, b = np.asarray(ref["prediction"]), np.asarray(got["prediction"])
        differ = int(np.sum(a.astype(str) != b.astype(str))) if a.shape == b.shape else rows
        out["labels_differing"] = differ
        if "probabilities" in ref:
            if "probabilities" not in got or got["probabilities"].shape != ref["probabilities"].shape:
                out.update(ok=False, problem=f"{label}: the ONNX model gives no comparable probabilities")
                return out
            diff = float(np.max(np.abs(ref["probabilities"] - got["probabilities"]))) if rows else 0.0
            out["max_abs_diff"] = diff
            if diff > PROBA_ATOL:
                out.update(ok=False, problem=f"{label}: probabilities differ by up to {diff:.3g} "
                                             f"(tolerance {PROBA_ATOL})")
        if differ:
            out.update(ok=False, problem=f"{label}: {differ} of {rows} labels differ")
        return out
    a = np.asarray(ref["prediction"], dtype="float64").reshape(-1)
    b = np.asarray(got["prediction"], dtype="float64").reshape(-1)
    if a.shape != b.shape:
        out.update(ok=False, problem=f"{label}: the ONNX model returns {b.shape[0]} values for {a.shape[0]} rows")
        return out
    diff = np.abs(a - b)
    out["max_abs_diff"] = float(diff.max()) if rows else 0.0
    bad = int(np.sum(diff > REG_ATOL + REG_RTOL * np.abs(a)))
    if bad:
        out.update(ok=False, problem=f"{label}: {bad} of {rows} predictions differ by more than the tolerance "
                                     f"(up to {out['max_abs_diff']:.3g})")
    return out
