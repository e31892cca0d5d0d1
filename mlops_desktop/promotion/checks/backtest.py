"""Back-test: the candidate and the champion replayed window by window over a pinned, time-ordered dataset version
(`mlops_desktop.backtest`), judged on the aggregate metrics (`accuracy >= champion - 0.02`); the windows are
evidence. Without the back-test capability in this build the check fails, saying so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlops_desktop.errors import MlopsError, UsageError
from mlops_desktop.promotion.checks.base import CheckContext, CheckResult, Keys, pinned_dataset, unavailable
from mlops_desktop.promotion.rules import Rule, evaluate_all, parse_rules


def backtest_api() -> Any:
    """The back-test module, or None when this build has none."""
    import importlib

    try:
        api = importlib.import_module("mlops_desktop.backtest.api")
    except ImportError:
        return None
    return api if hasattr(api, "run_backtest") and hasattr(api, "BacktestSpec") else None


@dataclass
class BacktestCheck:
    kind: ClassVar[str] = "backtest"
    name: str
    dataset: str
    time_col: str
    test_window: str
    stride: str
    train_window: str | None
    gap: str | None
    target: str | None
    rules: tuple[Rule, ...]

    @classmethod
    def from_config(cls, raw: dict[str, Any], where: str) -> BacktestCheck:
        keys = Keys(raw, where, {"dataset", "time_col", "test_window", "stride", "train_window", "gap", "target",
                                 "require"})
        rules = parse_rules(raw.get("require"), f"{where}.require")
        if not rules:
            raise UsageError(f"{where}.require: a back-test check needs at least one rule",
                             hint="e.g. require = [\"accuracy >= champion - 0.02\"]")
        test_window = keys.text("test_window", required=True) or ""
        return cls(name=keys.text("name", "backtest") or "backtest", dataset=pinned_dataset(keys),
                   time_col=keys.text("time_col", required=True) or "", test_window=test_window,
                   stride=keys.text("stride", test_window) or test_window, train_window=keys.text("train_window"),
                   gap=keys.text("gap"), target=keys.text("target"), rules=rules)

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "dataset": self.dataset,
                               "time_col": self.time_col, "test_window": self.test_window, "stride": self.stride,
                               "require": [r.text for r in self.rules]}
        for key in ("train_window", "gap", "target"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def run(self, ctx: CheckContext) -> CheckResult:
        api = backtest_api()
        if api is None:
            return unavailable(self.kind, "back-testing")
        refs = [ctx.candidate.ref] + ([ctx.champion.ref] if ctx.champion is not None else [])
        spec = api.BacktestSpec(self.dataset, self.time_col, refs, test_window=self.test_window, stride=self.stride,
                                train_window=self.train_window, gap=self.gap, target=self.target,
                                experiment="promotion-backtests")
        try:
            result = api.run_backtest(ws=ctx.ws, spec=spec, progress=ctx.progress)
        except MlopsError as exc:
            return CheckResult(False, f"the back-test on {self.dataset} could not run: {exc.message}",
                               {"dataset": self.dataset})
        cand = dict(result.aggregate.get(ctx.candidate.ref, {}))
        champ = dict(result.aggregate.get(ctx.champion.ref, {})) if ctx.champion is not None else None
        windows = [{"index": w.index, "test_start": api.to_jsonable(w.test_start),
                    "test_end": api.to_jsonable(w.test_end), "rows": w.rows,
                    "candidate": w.metrics.get(ctx.candidate.ref, {}),
                    "champion": w.metrics.get(ctx.champion.ref, {}) if ctx.champion is not None else None}
                   for w in result.windows]
        results = evaluate_all(self.rules, cand, champ)
        evidence = {"backtest_id": result.id, "parent_run": result.parent_run, "dataset": result.dataset_version,
                    "candidate": cand, "champion": champ, "windows": windows,
                    "rules": [r.to_dict() for r in results]}
        failed = [r for r in results if not r.passed]
        if failed:
            return CheckResult(False, f"{len(windows)} window(s) of {result.dataset_version}: "
                               + "; ".join(f"{r.rule} failed ({r.detail})" for r in failed), evidence)
        return CheckResult(True, f"{len(windows)} window(s) of {result.dataset_version}: "
                           + ", ".join(r.detail.split(":")[0] for r in results), evidence)
