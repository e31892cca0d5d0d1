"""Threshold rules of a check (`accuracy >= champion - 0.01`, `error_rate <= 0.01`, `p95_latency_ms <= champion *
1.5`): parsed once with errors naming the key, evaluated against the candidate's and the champion's figures."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mlops_desktop.errors import UsageError

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_RULE_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|==|>|<)\s*"
    r"(?:(?P<champion>champion)(?:\s*(?P<arith>[-+*])\s*(?P<delta>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))?"
    r"|(?P<number>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))\s*$")


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str
    op: str
    relative: bool          # against the champion's value of the same metric
    arith: str | None       # + - * applied to the champion's value
    value: float            # the number (a delta or factor when relative)

    def reference(self, champion: Mapping[str, Any] | None) -> float | None:
        """The number the candidate is compared with (None: the champion has no such figure)."""
        if not self.relative:
            return self.value
        base = (champion or {}).get(self.metric)
        if not isinstance(base, int | float) or isinstance(base, bool) or not math.isfinite(float(base)):
            return None
        base = float(base)
        if self.arith == "+":
            return base + self.value
        if self.arith == "-":
            return base - self.value
        if self.arith == "*":
            return base * self.value
        return base


@dataclass(frozen=True)
class RuleResult:
    rule: str
    metric: str
    passed: bool
    candidate: float | None
    reference: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_rule(text: Any, where: str, metrics: tuple[str, ...] | None = None) -> Rule:
    if not isinstance(text, str):
        raise UsageError(f"{where}: a rule must be a string like \"accuracy >= champion - 0.01\", got {text!r}")
    m = _RULE_RE.match(text)
    if m is None:
        raise UsageError(f"{where}: cannot read the rule {text!r}",
                         hint="write METRIC OP NUMBER or METRIC OP champion [+|-|* NUMBER], "
                              "e.g. \"accuracy >= champion - 0.01\" or \"error_rate <= 0.01\"")
    metric = m.group("metric")
    if metrics is not None and metric not in metrics:
        raise UsageError(f"{where}: unknown metric {metric!r} in {text!r}", hint="known: " + ", ".join(metrics))
    relative = m.group("champion") is not None
    value = float(m.group("delta") or 0.0) if relative else float(m.group("number"))
    return Rule(text.strip(), metric, m.group("op"), relative, m.group("arith"), value)


def parse_rules(raw: Any, where: str, metrics: tuple[str, ...] | None = None) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise UsageError(f"{where}: must be a list of rules, e.g. [\"accuracy >= champion - 0.01\"]")
    return tuple(parse_rule(r, f"{where}[{i}]", metrics) for i, r in enumerate(raw))


def evaluate(rule: Rule, candidate: Mapping[str, Any], champion: Mapping[str, Any] | None) -> RuleResult:
    value = candidate.get(rule.metric)
    cand = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if cand is None or not math.isfinite(cand):
        return RuleResult(rule.text, rule.metric, False, None, None, f"the candidate has no {rule.metric}")
    ref = rule.reference(champion)
    if ref is None:
        why = "there is no champion" if champion is None else f"the champion has no {rule.metric}"
        return RuleResult(rule.text, rule.metric, False, cand, None, f"cannot compare: {why}")
    passed = _OPS[rule.op](cand, ref)
    return RuleResult(rule.text, rule.metric, passed, cand, ref,
                      f"{rule.metric} {_fmt(cand)} {rule.op} {_fmt(ref)}: {'yes' if passed else 'no'}")


def evaluate_all(rules: tuple[Rule, ...], candidate: Mapping[str, Any],
                 champion: Mapping[str, Any] | None) -> list[RuleResult]:
    return [evaluate(r, candidate, champion) for r in rules]


def _fmt(value: float) -> str:
    return f"{value:.4g}"
