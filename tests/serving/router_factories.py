"""Predictors for the router tests: cheap, exact, library-free, so thousands of requests stay fast.

`threshold_clf`: a binary classifier whose P(class 1) is the input `p` itself (clipped to [0, 1]); its own label is
the argmax, so a live decision threshold moves the labels in a way a test can predict row by row.
`negated`: the same signature answering the other label, a shadow that always disagrees.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_desktop.registry.signature import ColumnSpec, Signature


def signature() -> Signature:
    return Signature((ColumnSpec("p", "float64"),), (ColumnSpec("prediction", "int64"),), task="classification",
                     classes=(0, 1))


class ThresholdClassifier:
    flavor = "python"
    serving_path = "python"

    def __init__(self, flip: bool = False) -> None:
        self.signature = signature()
        self.flip = flip

    def predict(self, columns: dict[str, Any]) -> dict[str, Any]:
        p = np.clip(np.asarray(columns["p"], dtype=float), 0.0, 1.0)
        proba = np.column_stack([1.0 - p, p])
        label = (p > 0.5).astype("int64")
        if self.flip:
            label = 1 - label
            proba = proba[:, ::-1].copy()
        return {"prediction": label, "probabilities": proba}


class Regressor:
    flavor = "python"
    serving_path = "python"

    def __init__(self) -> None:
        self.signature = Signature((ColumnSpec("p", "float64"),), (ColumnSpec("prediction", "float64"),),
                                   task="regression")

    def predict(self, columns: dict[str, Any]) -> dict[str, Any]:
        return {"prediction": np.asarray(columns["p"], dtype=float) * 2}


def threshold_clf(name: str | None = None, version: str | None = None) -> ThresholdClassifier:
    return ThresholdClassifier()


def negated(name: str | None = None, version: str | None = None) -> ThresholdClassifier:
    return ThresholdClassifier(flip=True)


def body(*ps: float) -> dict[str, Any]:
    return {"dataframe_split": {"columns": ["p"], "data": [[p] for p in ps]}}
