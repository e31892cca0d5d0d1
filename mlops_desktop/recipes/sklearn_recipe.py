"""Recipe `sklearn`: fit any scikit-learn estimator (by class path) on a table, log metrics, save it with skops.

    --param estimator=sklearn.ensemble.RandomForestClassifier --param data=train.csv --param target=label
    [--param features=a,b,c] [--param test_size=0.2] [--param seed=0] [--param register=MODEL]
    [--param <estimator param>=<value> ...]

With register=MODEL the fitted pipeline becomes the next version of MODEL in the registry when the run succeeds.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.recipes.common import (
    Params,
    load_table,
    log_lineage,
    register_after_run,
    register_name,
    split_xy,
    write_model_extras,
)

NAME = "sklearn"


def load_estimator(path: str, params: dict[str, Any]) -> Any:
    from sklearn.base import BaseEstimator

    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise UsageError(f"recipe sklearn: estimator {path!r} must be a class path like "
                         "sklearn.linear_model.LogisticRegression")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"recipe sklearn: cannot import estimator {path!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise UsageError(f"recipe sklearn: {path} is not a scikit-learn estimator class")
    valid = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise UsageError(f"recipe sklearn: {class_name} has no parameter {', '.join(unknown)}",
                         hint=f"its parameters: {', '.join(sorted(valid))}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"recipe sklearn: {class_name}({params}) failed: {exc}") from None


def build_pipeline(estimator: Any, x: Any) -> Any:
    """Impute numbers and one-hot encode text columns in front of the estimator, so raw tables just work."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [c for c, t in x.dtypes.items() if t.kind in "biuf"]
    other = [c for c in x.columns if c not in numeric]
    steps = []
    if numeric:
        steps.append(("num", SimpleImputer(strategy="median"), numeric))
    if other:
        # a missing text value is a category of its own (OneHotEncoder handles NaN since 1.1); no imputer in
        # front, because skl2onnx cannot translate a text imputer and the ONNX fast path would be lost
        steps.append(("cat", OneHotEncoder(handle_unknown="ignore"), other))
    return Pipeline([("prep", ColumnTransformer(steps)), ("model", estimator)])


def task_metrics(task: str, model: Any, x: Any, y: Any, prefix: str) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    pred = model.predict(x)
    if task == "classification":
        out = {f"{prefix}accuracy": metrics.accuracy_score(y, pred),
               f"{prefix}f1_macro": metrics.f1_score(y, pred, average="macro")}
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(x)
            classes = list(model.classes_)
            if len(classes) == 2 and len(set(y)) == 2:
                out[f"{prefix}roc_auc"] = metrics.roc_auc_score(y, proba[:, 1])
            out[f"{prefix}log_loss"] = metrics.log_loss(y, proba, labels=classes)
        return {k: float(v) for k, v in out.items()}
    return {f"{prefix}rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
            f"{prefix}mae": float(metrics.mean_absolute_error(y, pred)),
            f"{prefix}r2": float(metrics.r2_score(y, pred))}


def run(raw: dict[str, str]) -> dict[str, float]:
    import mlops_desktop.tracking as mt

    p = Params(NAME, raw)
    estimator_path = p.text("estimator", required=True)
    data = p.text("data", required=True)
    target = p.text("target", required=True)
    features = p.text("features")
    test_size = p.number("test_size", 0.2, low=0.01, high=0.9)
    seed = p.number("seed", 0, integer=True)
    register = register_name(p)
    est_params = p.rest()
    with mt.start_run() as active:
        from sklearn.base import is_classifier
        from sklearn.model_selection import train_test_split

        estimator = load_estimator(estimator_path, est_params)
        if "random_state" in estimator.get_params() and "random_state" not in est_params:
            estimator.set_params(random_state=seed)
        task = "classification" if is_classifier(estimator) else "regression"
        table = load_table(data, NAME)
        x, y = split_xy(table, target, features, NAME)
        log_lineage(table)
        mt.log_params({"recipe": NAME, "estimator": estimator_path, "task": task, "target": target, "n_rows": len(x),
                       "n_features": len(x.columns), **{f"model.{k}": v for k, v in est_params.items()}})
        stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
        x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=test_size, random_state=seed,
                                                          stratify=stratify)
        model = build_pipeline(estimator, x)
        started = time.perf_counter()
        try:
            model.fit(x_train, y_train)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"recipe sklearn: fitting {estimator_path} failed: {exc}") from None
        fit_s = time.perf_counter() - started
        results = {**task_metrics(task, model, x_train, y_train, "train_"),
                   **task_metrics(task, model, x_val, y_val, "val_"), "fit_seconds": fit_s}
        mt.log_metrics(results, step=0)
        classes = list(model.classes_) if task == "classification" else None
        with tempfile.TemporaryDirectory() as tmp:
            from mlops_desktop.registry.flavors.sklearn import skops_io

            sio = skops_io()

            folder = Path(tmp) / "model"
            folder.mkdir()
            sio.dump(model, folder / "model.skops")
            write_model_extras(folder, x, y, task, classes, x_val,
                               sorted({"sklearn", "numpy", "scipy", "pandas", "skops", estimator_path.split(".")[0]}))
            (folder / "MLmodel.json").write_text(json.dumps({"flavor": "sklearn", "format": "skops",
                                                             "estimator": estimator_path, "run": active.uuid}))
            mt.log_artifact(folder)
        if register:
            mt.set_tags({"mlops.register": register})
        print("recipe sklearn: " + ", ".join(f"{k}={v:.4g}" for k, v in results.items()), flush=True)
    register_after_run(active.uuid, register, NAME)
    return results


def load_model(path: str | Path) -> Any:
    """Load a model saved by this recipe; only types skops trusts by default (no arbitrary unpickling)."""
    from mlops_desktop.registry.flavors.sklearn import load_skops

    return load_skops(path)
