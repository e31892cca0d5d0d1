"""Alert rules as Prometheus writes them: an expression over monitored series, `for`, `keep_firing_for`, severity,
labels; and the state machine normal -> pending -> firing -> resolved.

Expressions:
    p99_latency > 0.5                 the deployment's p99 (seconds); `{arm="v2"}` picks one arm or target
    error_rate{arm="v2"} >= 0.01      comparison with > >= < <= == !=
    drift.any > 0.2                   drift series (drift.share, drift.dataset, drift.<feature>)
    no_data                           a target of the deployment does not answer (targets_down > 0)
A trailing `for 1m` / `keep_firing_for 5m` in the text sets those durations (s, m, h, d; `1m30s`).
Semantics follow Prometheus: a condition that becomes true makes the alert pending, firing once it held for `for`
(at once when `for` is 0); a pending alert whose condition turns false is dropped; a firing alert resolves when the
condition has been false for `keep_firing_for` (anti-flap). A series without a value (NaN: no data) makes a threshold
condition false, as an absent series does in PromQL; `no_data` rules watch for that case.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_desktop.errors import UsageError

SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("none", "revert")
OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                  "<=": operator.le, "==": operator.eq, "!=": operator.ne}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_EXPR_RE = re.compile(r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*(?:\{(?P<labels>[^}]*)\})?\s*"
                      r"(?:(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?\s*$")
_LABEL_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"]*)"\s*$')
_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")
_TRAILER_RE = re.compile(r"\s+(for|keep_firing_for)\s+(\S+)\s*$")


def parse_duration(text: str | float | int, where: str = "duration") -> float:
    """'90s', '1m', '1h30m', '2d' or a number of seconds -> seconds."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        raw = str(text).strip()
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            seconds = float(raw)
        else:
            m = _DURATION_RE.match(raw)
            if not raw or m is None or not any(m.groups()):
                raise UsageError(f"{where}: {text!r} is not a duration", hint="e.g. 30s, 5m, 1h30m, 2d")
            d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            seconds = d * 86400 + h * 3600 + mi * 60 + s
    if seconds < 0 or not math.isfinite(seconds):
        raise UsageError(f"{where}: {text!r} must be a non-negative duration")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds <= 0:
        return "0s"
    if seconds < 1 or seconds != int(seconds) and seconds < 60:
        return f"{round(seconds * 1000)}ms"
    out, rest = "", int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


@dataclass(frozen=True)
class Condition:
    metric: str
    labels: tuple[tuple[str, str], ...] = ()
    op: str = ">"
    threshold: float = 0.0

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def holds(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        labels = "{" + ",".join(f'{k}="{v}"' for k, v in self.labels) + "}" if self.labels else ""
        return f"{self.metric}{labels} {self.op} {self.threshold:g}"


def parse_expr(text: str, where: str = "expr") -> tuple[Condition, float | None, float | None]:
    """An expression (with optional trailing `for`/`keep_firing_for`) -> (condition, for_s, keep_firing_for_s)."""
    body = str(text).strip()
    durations: dict[str, float] = {}
    while True:
        m = _TRAILER_RE.search(body)
        if m is None:
            break
        durations[m.group(1)] = parse_duration(m.group(2), f"{where}: {m.group(1)}")
        body = body[:m.start()]
    if body == "no_data":
        return Condition("targets_down", (), ">", 0.0), durations.get("for"), durations.get("keep_firing_for")
    m = _EXPR_RE.match(body)
    if m is None or m.group("op") is None:
        raise UsageError(f"{where}: cannot read {text!r}",
                         hint='write METRIC[{label="value"}] OP NUMBER [for 1m], e.g. p99_latency > 0.5 for 1m, '
                              'error_rate{arm="v2"} > 0.01, drift.any > 0.2, or no_data for 2m')
    labels: list[tuple[str, str]] = []
    if m.group("labels"):
        for part in m.group("labels").split(","):
            if not part.strip():
                continue
            lm = _LABEL_RE.match(part)
            if lm is None:
                raise UsageError(f"{where}: label matcher {part.strip()!r} in {text!r} is not name=\"value\"")
            labels.append((lm.group(1), lm.group(2)))
    cond = Condition(m.group("metric"), tuple(sorted(labels)), m.group("op"), float(m.group("value")))
    return cond, durations.get("for"), durations.get("keep_firing_for")


@dataclass
class Rule:
    name: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    severity: str = "warning"
    deployment: str = "*"
    labels: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    action: str = "none"
    source: str = "cli"
    enabled: bool = True

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if not NAME_RE.match(self.name):
            raise UsageError(f"invalid rule name {self.name!r}", hint="letters, digits, '.', '_' and '-', up to 63")
        cond, for_s, keep = parse_expr(self.expr, f"{where}: expr")
        self.expr = str(cond) if self.expr.strip().split()[0] != "no_data" else "no_data"
        if for_s is not None:
            self.for_s = for_s
        if keep is not None:
            self.keep_firing_for_s = keep
        self.for_s = parse_duration(self.for_s, f"{where}: for")
        self.keep_firing_for_s = parse_duration(self.keep_firing_for_s, f"{where}: keep_firing_for")
        if self.severity not in SEVERITIES:
            raise UsageError(f"{where}: severity {self.severity!r} is not one of " + ", ".join(SEVERITIES))
        if self.action not in ACTIONS:
            raise UsageError(f"{where}: action {self.action!r} is not one of " + ", ".join(ACTIONS))
        for k, v in self.labels.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(k)) or not isinstance(v, str):
                raise UsageError(f"{where}: label {k!r} needs a name of letters, digits and '_' and a text value")

    @property
    def condition(self) -> Condition:
        return parse_expr(self.expr)[0]

    def applies_to(self, deployment: str) -> bool:
        import fnmatch

        return fnmatch.fnmatchcase(deployment, self.deployment)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, source: str = "cli", where: str = "rule") -> Rule:
        known = {"name", "expr", "for", "for_s", "keep_firing_for", "keep_firing_for_s", "severity", "deployment",
                 "labels", "summary", "action", "enabled", "source"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise UsageError(f"{where}: unknown field {unknown[0]!r}", hint="fields: " + ", ".join(sorted(known)))
        for key in ("name", "expr"):
            if not isinstance(doc.get(key), str) or not doc.get(key):
                raise UsageError(f"{where}: field {key!r} is required (text)")
        labels = doc.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise UsageError(f"{where}: field 'labels' must be a table of text values")
        try:
            return cls._build(doc, labels, source)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc.message}", hint=exc.hint) from None

    @classmethod
    def _build(cls, doc: Mapping[str, Any], labels: Mapping[str, Any], source: str) -> Rule:
        return cls(name=doc["name"], expr=doc["expr"], for_s=doc.get("for", doc.get("for_s", 0.0)),
                   keep_firing_for_s=doc.get("keep_firing_for", doc.get("keep_firing_for_s", 0.0)),
                   severity=str(doc.get("severity", "warning")), deployment=str(doc.get("deployment", "*")),
                   labels={str(k): v for k, v in labels.items()}, summary=str(doc.get("summary", "")),
                   action=str(doc.get("action", "none")), source=str(doc.get("source", source)),
                   enabled=bool(doc.get("enabled", True)))


@dataclass
class RuleState:
    """One rule on one deployment: the Prometheus alert state machine (inactive, pending, firing)."""

    for_s: float
    keep_firing_for_s: float
    state: str = "inactive"
    active_since: float | None = None
    fired_at: float | None = None
    last_true_at: float | None = None

    def step(self, now: float, holds: bool) -> str | None:
        """Advance with the condition's value at `now`; returns the transition made: pending, firing, resolved,
        inactive (a pending alert dropped) or None."""
        if holds:
            self.last_true_at = now
            if self.state == "inactive":
                self.active_since = now
                if self.for_s <= 0:
                    self.state, self.fired_at = "firing", now
                    return "firing"
                self.state = "pending"
                return "pending"
            if self.state == "pending" and now - (self.active_since or now) >= self.for_s:
                self.state, self.fired_at = "firing", now
                return "firing"
            return None
        if self.state == "pending":
            self.state, self.active_since = "inactive", None
            return "inactive"
        if self.state == "firing":
            if self.keep_firing_for_s > 0 and now - (self.last_true_at or now) < self.keep_firing_for_s:
                return None
            self.state, self.active_since, self.fired_at = "inactive", None, None
            return "resolved"
        return None
