"""A classifier's live decision threshold, applied by the model server to the model's probabilities.

Rule: with threshold t and positive class c, a row is labelled c when P(c) >= t, else the most probable of the other
classes. For a binary model c defaults to its second class (scikit-learn's positive label), so t = 0.5 is the
model's own choice; a model with more classes needs c named. Without a threshold the model's own labels stand.
The setting changes live (`PUT /admin/settings`, or the router's admin API, which pushes it to every replica of an
arm); each batch is decided with one setting, read when the model is called.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.registry.predictor import Predictor


class Decision:
    """The live setting of one served classifier (thread-safe: set on the event loop, read on the model thread)."""

    def __init__(self, name: str, classes: tuple[Any, ...], has_probabilities: bool) -> None:
        self.name = name
        self.classes = classes
        self.has_probabilities = has_probabilities
        self._value: tuple[float, int] | None = None  # (threshold, index of the positive class)
        self._lock = threading.Lock()
        self.changes: list[dict[str, Any]] = []        # the last few, newest last (the router keeps the log)

    def current(self) -> dict[str, Any] | None:
        value = self._value
        if value is None:
            return None
        return {"threshold": value[0], "positive_class": _plain(self.classes[value[1]])}

    def set(self, threshold: float | None, positive_class: Any = None, *, actor: str = "", reason: str = "") \
            -> dict[str, Any] | None:
        """Check and apply; raises UsageError in words (a regressor, an unknown class, a threshold out of range)."""
        if threshold is None:
            new = None
        else:
            if not self.has_probabilities or len(self.classes) < 2:
                raise UsageError(f"model {self.name!r} is not a classifier with class probabilities; a decision "
                                 "threshold does not apply to it")
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold) \
                    or not 0 <= threshold <= 1:
                raise UsageError(f"the threshold must be a probability from 0 to 1 (got {threshold!r})")
            new = (float(threshold), self._index(positive_class))
        before = self.current()
        with self._lock:
            self._value = new
        after = self.current()
        self.changes = [*self.changes[-19:], {"at": time.time(), "actor": actor, "reason": reason,
                                              "from": before, "to": after}]
        return after

    def _index(self, positive_class: Any) -> int:
        if positive_class is None:
            if len(self.classes) == 2:
                return 1
            raise UsageError(f"model {self.name!r} has {len(self.classes)} classes "
                             f"({', '.join(map(str, self.classes))}); name the positive class the threshold is for")
        for i, c in enumerate(self.classes):
            if str(c) == str(positive_class):
                return i
        raise UsageError(f"model {self.name!r} has no class {positive_class!r}; its classes: "
                         f"{', '.join(map(str, self.classes))}")

    def apply(self, outputs: dict[str, Any]) -> dict[str, Any]:
        value = self._value
        if value is None or "probabilities" not in outputs:
            return outputs
        import numpy as np

        threshold, pos = value
        proba = np.asarray(outputs["probabilities"], dtype=float)
        if proba.ndim != 2 or proba.shape[1] != len(self.classes):
            return outputs
        others = proba.copy()
        others[:, pos] = -np.inf
        index = np.where(proba[:, pos] >= threshold, pos, np.argmax(others, axis=1))
        labels = np.asarray(self.classes, dtype=np.asarray(outputs["prediction"]).dtype)
        return outputs | {"prediction": labels[index]}


class DecidingPredictor:
    """A predictor whose labels follow the live decision; everything else is the wrapped predictor's."""

    def __init__(self, inner: Predictor, decision: Decision) -> None:
        self.inner = inner
        self.decision = decision
        self.signature = inner.signature
        self.flavor = inner.flavor
        self.serving_path = inner.serving_path

    def predict(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        return self.decision.apply(self.inner.predict(columns))


def _plain(value: Any) -> Any:
    """A class label as JSON writes it (numpy scalars to Python)."""
    return value.item() if hasattr(value, "item") else value
