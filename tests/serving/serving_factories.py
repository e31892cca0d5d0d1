"""Predictors for the server tests: real scikit-learn pipelines fitted on synthetic data (small, fast to fit)."""

from __future__ import annotations

from typing import Any

from mlops_desktop.registry.flavors.sklearn import SklearnPredictor
from mlops_desktop.registry.signature import ColumnSpec, Signature

FEATURES = [f"x{i}" for i in range(20)]


def classifier_signature(n_features: int = 20) -> Signature:
    return Signature(tuple(ColumnSpec(f"x{i}", "float64") for i in range(n_features)),
                     (ColumnSpec("prediction", "int64"),), task="classification", classes=(0, 1, 2))


def fit_classifier(n_features: int = 20, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, n_features))
    y = (x[:, 0] > 0.5).astype(int) + (x[:, 1] > 0).astype(int)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(n_features)])
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(frame, y)


def classifier(name: str | None = None, version: str | None = None, n_features: int = 20) -> SklearnPredictor:
    return SklearnPredictor(fit_classifier(n_features, seed=int(version or 1)), classifier_signature(n_features))


def mixed_signature() -> Signature:
    return Signature((ColumnSpec("age", "int64", nullable=False), ColumnSpec("income", "float64"),
                      ColumnSpec("city", "string"), ColumnSpec("member", "bool")),
                     (ColumnSpec("prediction", "float64"),), task="regression")


class EchoPredictor:
    """A real predictor without a library: prediction = age + income (+ 1000 for members); lets a test check
    which rows came back to which caller."""

    flavor = "python"
    serving_path = "python"

    def __init__(self) -> None:
        self.signature = mixed_signature()
        self.calls: list[int] = []

    def predict(self, columns: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        self.calls.append(len(columns["age"]))
        income = np.nan_to_num(np.asarray(columns["income"], dtype=float))
        member = np.asarray([bool(v) for v in columns["member"]])
        return {"prediction": np.asarray(columns["age"], dtype=float) + income + 1000.0 * member}


def echo(name: str | None = None, version: str | None = None) -> EchoPredictor:
    return EchoPredictor()
