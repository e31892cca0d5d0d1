"""Per-window metrics by task, computed with numpy (scikit-learn's answers, without its per-call input checks), and
their aggregate over windows from sufficient statistics.

classification: accuracy, f1 (binary: the positive class is the second of the sorted classes, as roc_auc's;
multi-class: macro), roc_auc where probabilities are given (binary, or one-vs-rest macro); regression: rmse, mae,
r2. The aggregate pools the windows' rows exactly for accuracy, f1, rmse, mae and r2 (counts and sums add up);
roc_auc, which does not pool, is the row-weighted mean of the windows' values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CLASSIFICATION = ("accuracy", "f1", "roc_auc")
REGRESSION = ("rmse", "mae", "r2")


def _rank_auc(y_pos: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic, ties given their mean rank (equals sklearn's).

    One argsort; each run of equal scores gets its mean rank, weighted by the positives in it (binary searches
    of every positive into the sorted scores cost 5x more on 200k rows: cache misses).
    """
    n = len(score)
    n_pos = int(np.count_nonzero(y_pos))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(score)
    ordered = score[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, n))
    mean_rank = starts + (counts + 1) / 2.0  # 1-based ranks starts+1 .. starts+counts
    positives = np.add.reduceat(y_pos[order].astype(np.int64), starts)
    u = float(mean_rank @ positives) - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _codes(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Index of each label in the sorted `classes` (-1 for a label the model never saw)."""
    pos = np.searchsorted(classes, y)
    pos = np.clip(pos, 0, len(classes) - 1)
    return np.where(classes[pos] == y, pos, -1)


@dataclass
class Stats:
    """What one window (or several, added together) contributes to the aggregate."""

    task: str
    rows: int = 0
    # classification: per class true positives, predicted counts, actual counts, and correct predictions
    classes: np.ndarray | None = None
    tp: np.ndarray | None = None
    predicted: np.ndarray | None = None
    actual: np.ndarray | None = None
    correct: int = 0
    pos_label: Any = None  # binary models: the positive class (the second of their sorted classes)
    auc_weighted: float = 0.0
    auc_rows: int = 0
    # regression: sums of errors and of the target
    sse: float = 0.0
    sae: float = 0.0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, other: Stats) -> None:
        self.rows += other.rows
        if self.task == "classification":
            if self.pos_label is None:
                self.pos_label = other.pos_label
            if other.classes is not None:
                self._add_counts(other)
            self.correct += other.correct
            self.auc_weighted += other.auc_weighted
            self.auc_rows += other.auc_rows
        else:
            self.sse += other.sse
            self.sae += other.sae
            self.sum_y += other.sum_y
            self.sum_y2 += other.sum_y2

    def _add_counts(self, other: Stats) -> None:
        assert other.classes is not None and other.tp is not None
        assert other.predicted is not None and other.actual is not None
        if self.classes is None:
            self.classes, self.tp, self.predicted, self.actual = other.classes, other.tp, other.predicted, other.actual
            return
        assert self.tp is not None and self.predicted is not None and self.actual is not None
        labels = np.union1d(self.classes, other.classes)  # a label seen in one window only
        mine, theirs = np.searchsorted(labels, self.classes), np.searchsorted(labels, other.classes)
        merged = []
        for a, b in ((self.tp, other.tp), (self.predicted, other.predicted), (self.actual, other.actual)):
            m = np.zeros(len(labels), dtype=np.int64)
            m[mine] += a
            m[theirs] += b
            merged.append(m)
        self.classes = labels
        self.tp, self.predicted, self.actual = merged

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a remote job sends back for each window."""
        out: dict[str, Any] = {"task": self.task, "rows": self.rows}
        if self.task == "classification":
            out |= {"classes": None if self.classes is None else self.classes.tolist(),
                    "tp": None if self.tp is None else self.tp.tolist(),
                    "predicted": None if self.predicted is None else self.predicted.tolist(),
                    "actual": None if self.actual is None else self.actual.tolist(), "correct": self.correct,
                    "pos_label": self.pos_label.item() if hasattr(self.pos_label, "item") else self.pos_label,
                    "auc_weighted": self.auc_weighted, "auc_rows": self.auc_rows,
                    "roc_auc": self.extra.get("roc_auc")}
        else:
            out |= {"sse": self.sse, "sae": self.sae, "sum_y": self.sum_y, "sum_y2": self.sum_y2}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        s = cls(d["task"], rows=int(d["rows"]))
        if s.task == "classification":
            if d.get("classes") is not None:
                s.classes = np.asarray(d["classes"])
                s.tp, s.predicted, s.actual = (np.asarray(d[k], dtype=np.int64) for k in ("tp", "predicted", "actual"))
            s.correct, s.pos_label = int(d["correct"]), d.get("pos_label")
            s.auc_weighted, s.auc_rows = float(d["auc_weighted"]), int(d["auc_rows"])
            if d.get("roc_auc") is not None:
                s.extra["roc_auc"] = float(d["roc_auc"])
        else:
            s.sse, s.sae, s.sum_y, s.sum_y2 = (float(d[k]) for k in ("sse", "sae", "sum_y", "sum_y2"))
        return s

    def metrics(self) -> dict[str, float]:
        if self.rows == 0:
            return {}
        if self.task == "classification":
            out = {"accuracy": self.correct / self.rows, "f1": self._f1()}
            if self.auc_rows:
                out["roc_auc"] = self.auc_weighted / self.auc_rows
            return out
        sst = self.sum_y2 - self.sum_y * self.sum_y / self.rows
        return {"rmse": math.sqrt(self.sse / self.rows), "mae": self.sae / self.rows,
                "r2": (1.0 - self.sse / sst) if sst > 0 else math.nan}

    def _f1(self) -> float:
        assert self.tp is not None and self.predicted is not None and self.actual is not None
        denom = self.predicted + self.actual
        f1 = np.divide(2.0 * self.tp, denom, out=np.zeros(len(self.tp)), where=denom > 0)
        if self.pos_label is not None and self.classes is not None:
            return float(f1[int(np.searchsorted(self.classes, self.pos_label))])
        present = self.actual + self.predicted > 0  # sklearn's macro averages over labels seen in y or predictions
        return float(f1[present].mean()) if present.any() else 0.0


def classification_stats(y: Any, pred: Any, proba: Any | None, classes: Any) -> Stats:
    """Stats of one window: `classes` are the model's (sorted, as scikit-learn keeps them)."""
    y = np.asarray(y)
    pred = np.asarray(pred)
    known = np.asarray(classes)
    labels = np.unique(np.concatenate([known, np.unique(y), np.unique(pred)])) if len(known) else \
        np.unique(np.concatenate([np.unique(y), np.unique(pred)]))
    return stats_from_codes(_codes(y, labels), _codes(pred, labels), labels, proba, known)


def stats_from_codes(yc: np.ndarray, pc: np.ndarray, labels: np.ndarray, proba: Any | None,
                     known: np.ndarray) -> Stats:
    """Stats from label codes: `yc`/`pc` index the sorted `labels` (which hold the model's `known` classes and any
    label of the window it never saw). The fast path of a back-test computes the codes without touching a string."""
    k = len(labels)
    hit = yc == pc
    stats = Stats("classification", rows=len(yc), classes=labels,
                  tp=np.bincount(yc[hit], minlength=k).astype(np.int64),
                  predicted=np.bincount(pc, minlength=k).astype(np.int64),
                  actual=np.bincount(yc, minlength=k).astype(np.int64), correct=int(hit.sum()),
                  pos_label=known[1] if len(known) == 2 else None)
    if proba is not None and len(known) >= 2 and np.asarray(proba).shape[1] == len(known):
        known_codes = np.searchsorted(labels, known)
        auc = roc_auc_codes(yc, np.asarray(proba), known_codes)
        if not math.isnan(auc):
            stats.auc_weighted, stats.auc_rows = auc * len(yc), len(yc)
            stats.extra["roc_auc"] = auc
    return stats


def roc_auc_codes(yc: np.ndarray, proba: np.ndarray, known_codes: np.ndarray) -> float:
    """Binary: the second class is positive; multi-class: one-vs-rest, macro (sklearn's multi_class="ovr")."""
    if len(known_codes) == 2:
        return _rank_auc(yc == known_codes[1], proba[:, 1])
    aucs = [_rank_auc(yc == c, proba[:, i]) for i, c in enumerate(known_codes)]
    if any(math.isnan(a) for a in aucs):  # a class absent from this window: sklearn refuses, we report none
        return math.nan
    return float(np.mean(aucs))


def roc_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    labels = np.asarray(classes)
    return roc_auc_codes(_codes(np.asarray(y), labels), proba, np.arange(len(labels)))


def regression_stats(y: Any, pred: Any) -> Stats:
    y = np.asarray(y, dtype=np.float64)
    err = np.asarray(pred, dtype=np.float64) - y
    return Stats("regression", rows=len(y), sse=float(err @ err), sae=float(np.abs(err).sum()),
                 sum_y=float(y.sum()), sum_y2=float(y @ y))


def window_metrics(stats: Stats) -> dict[str, float]:
    """A window's metrics: exact per window (its own roc_auc, not a weighted one)."""
    out = stats.metrics()
    if "roc_auc" in stats.extra:
        out["roc_auc"] = stats.extra["roc_auc"]
    return {k: float(v) for k, v in out.items()}


def aggregate(per_window: list[Stats]) -> dict[str, float]:
    if not per_window:
        return {}
    total = Stats(per_window[0].task)
    for s in per_window:
        total.add(s)
    return {k: float(v) for k, v in total.metrics().items()}
