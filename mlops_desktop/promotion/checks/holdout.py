"""Holdout metrics of the candidate against the champion on one pinned dataset version, both scored by the
registry's batch scoring (the path production batch jobs use), with thresholds such as `accuracy >= champion - 0.01`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_desktop.errors import UsageError
from mlops_desktop.promotion.checks.base import CheckContext, CheckResult, Keys, pinned_dataset
from mlops_desktop.promotion.rules import Rule, evaluate_all, parse_rules

CLASSIFICATION = ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro")
REGRESSION = ("rmse", "mae", "r2")
METRICS = CLASSIFICATION + REGRESSION


def metrics_of(task: str, y_true: Any, y_pred: Any) -> dict[str, float]:
    """scikit-learn's metrics for the task (the same numbers a notebook would compute)."""
    import numpy as np
    from sklearn import metrics as skm

    if task == "classification":
        yt = np.asarray([str(v) for v in y_true])
        yp = np.asarray([str(v) for v in y_pred])
        return {"accuracy": float(skm.accuracy_score(yt, yp)),
                "balanced_accuracy": float(skm.balanced_accuracy_score(yt, yp)),
                "f1_macro": float(skm.f1_score(yt, yp, average="macro", zero_division=0)),
                "precision_macro": float(skm.precision_score(yt, yp, average="macro", zero_division=0)),
                "recall_macro": float(skm.recall_score(yt, yp, average="macro", zero_division=0))}
    yt_f = np.asarray(y_true, dtype=float)
    yp_f = np.asarray(y_pred, dtype=float)
    return {"rmse": float(np.sqrt(skm.mean_squared_error(yt_f, yp_f))),
            "mae": float(skm.mean_absolute_error(yt_f, yp_f)), "r2": float(skm.r2_score(yt_f, yp_f))}


@dataclass
class HoldoutCheck:
    kind: ClassVar[str] = "holdout"
    name: str
    dataset: str
    target: str
    rules: tuple[Rule, ...]

    @classmethod
    def from_config(cls, raw: dict[str, Any], where: str) -> HoldoutCheck:
        keys = Keys(raw, where, {"dataset", "target", "require"})
        rules = parse_rules(raw.get("require"), f"{where}.require", METRICS)
        if not rules:
            raise UsageError(f"{where}.require: a holdout check needs at least one rule",
                             hint="e.g. require = [\"accuracy >= champion - 0.01\"]")
        return cls(name=keys.text("name", "holdout") or "holdout", dataset=pinned_dataset(keys),
                   target=keys.text("target", required=True) or "", rules=rules)

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "dataset": self.dataset, "target": self.target,
                "require": [r.text for r in self.rules]}

    def _score(self, ctx: CheckContext, ref: str, label: str) -> tuple[dict[str, float], int, str]:
        import pyarrow.parquet as pq

        from mlops_desktop.registry.batch import predict_batch

        out = ctx.workdir / f"holdout-{label}.parquet"
        result = predict_batch(ctx.ws, ref, dataset=self.dataset, output=str(out), keep=[self.target],
                               progress=ctx.progress)
        table = pq.read_table(out, columns=[self.target, "prediction"])
        task = ctx.candidate.signature.task
        if task not in ("classification", "regression"):
            raise UsageError(f"{ref}: its signature's task is {task!r}; holdout metrics need classification or "
                             "regression")
        y_true = table.column(self.target).to_pylist()
        if any(v is None for v in y_true):
            raise UsageError(f"{self.dataset}: the target column {self.target!r} has empty values")
        return metrics_of(task, y_true, table.column("prediction").to_pylist()), result.rows, result.serving_path

    def run(self, ctx: CheckContext) -> CheckResult:
        from mlops_desktop.data import catalog

        version = catalog.resolve(ctx.ws.db, self.dataset)
        if self.target not in version.schema:
            return CheckResult(False, f"{self.dataset} has no target column {self.target!r}",
                               {"dataset": self.dataset, "columns": list(version.schema)})
        evidence: dict[str, Any] = {"dataset": version.ref, "content_hash": version.content_hash,
                                    "target": self.target, "task": ctx.candidate.signature.task}
        try:
            cand, rows, path = self._score(ctx, ctx.candidate.ref, "candidate")
        except UsageError as exc:
            return CheckResult(False, f"the candidate could not be scored on {self.dataset}: {exc.message}",
                               evidence)
        evidence |= {"rows": rows, "serving_path": path, "candidate": cand}
        champ: dict[str, float] | None = None
        if ctx.champion is not None:
            try:
                champ, _, _ = self._score(ctx, ctx.champion.ref, "champion")
            except UsageError as exc:
                evidence["champion_error"] = exc.message
            evidence["champion_ref"] = ctx.champion.ref
        evidence["champion"] = champ
        evidence["diff"] = {k: v - champ[k] for k, v in cand.items() if champ and k in champ}
        results = evaluate_all(self.rules, cand, champ)
        evidence["rules"] = [r.to_dict() for r in results]
        failed = [r for r in results if not r.passed]
        head = ", ".join(f"{r.metric} {cand[r.metric]:.4f}" for r in results if r.metric in cand)
        if failed:
            return CheckResult(False, f"on {version.ref}: " + "; ".join(f"{r.rule} failed ({r.detail})"
                                                                        for r in failed), evidence)
        vs = f" vs champion {ctx.champion.ref}" if ctx.champion is not None else ""
        return CheckResult(True, f"on {version.ref} ({rows:,} rows){vs}: {head}", evidence)
