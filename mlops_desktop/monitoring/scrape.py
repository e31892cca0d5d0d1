"""Reading `/metrics` of a model server or router and turning two scrapes into rates, error rates and quantiles.

A model server exposes `mlops_requests_total{route, code}` and `mlops_request_duration_seconds` (serving/metrics.py);
the router `mlops_router_requests_total{arm, code}` and `mlops_router_upstream_duration_seconds{arm}`
(serving/router_metrics.py). Both are reduced to the same `Window`: requests, errors (5xx), the latency histogram's
bucket increments and the time between the scrapes; windows add up, so an arm's or a deployment's quantiles come
from the merged histograms (as `histogram_quantile(sum by (le) (rate(...)))` does), never from averaged quantiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PREDICT_ROUTES = frozenset(("/invocations", "/v2/models/{name}/infer"))
ROUTER_OWN_ARM = "router"  # the router's own routes and refusals


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_text(text: str) -> list[Sample]:
    """Samples of the Prometheus text format (comments skipped; a malformed line raises ValueError)."""
    out: list[Sample] = []
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        labels: dict[str, str] = {}
        if brace >= 0:
            name = line[:brace]
            end = line.rfind("}")
            if end < brace:
                raise ValueError(f"malformed metrics line: {line[:120]!r}")
            labels = _labels(line[brace + 1:end])
            rest = line[end + 1:].split()
        else:
            parts = line.split()
            name, rest = parts[0], parts[1:]
        if not rest:
            raise ValueError(f"malformed metrics line: {line[:120]!r}")
        out.append(Sample(name, labels, float(rest[0])))
    return out


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        eq = text.find("=", i)
        if eq < 0:
            break
        key = text[i:eq].strip().lstrip(",").strip()
        j = eq + 2  # past ="
        value = []
        while j < n and text[j] != '"':
            if text[j] == "\\" and j + 1 < n:
                j += 1
                value.append({"n": "\n"}.get(text[j], text[j]))
            else:
                value.append(text[j])
            j += 1
        labels[key] = "".join(value)
        i = j + 1
    return labels


@dataclass
class Counters:
    """Cumulative counters of one scrape, per arm (a model server's own arm is its version)."""

    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)  # arm -> le -> cumulative count
    in_flight: float = 0.0


def counters(samples: list[Sample], role: str, arm: str = "") -> Counters:
    """Reduce a scrape to per-arm cumulative counters. `arm` names a model server's arm (its version if blank)."""
    c = Counters()
    if role == "router":
        for s in samples:
            if s.name == "mlops_router_requests_total":
                a = s.labels.get("arm", "")
                if a == ROUTER_OWN_ARM:
                    continue
                c.requests[a] = c.requests.get(a, 0.0) + s.value
                if s.labels.get("code", "").startswith("5"):
                    c.errors[a] = c.errors.get(a, 0.0) + s.value
            elif s.name == "mlops_router_upstream_duration_seconds_bucket":
                a = s.labels.get("arm", "")
                le = _le(s.labels.get("le", "+Inf"))
                per = c.buckets.setdefault(a, {})
                per[le] = per.get(le, 0.0) + s.value
            elif s.name == "mlops_router_requests_in_flight":
                c.in_flight += s.value
        return c
    for s in samples:
        if s.name == "mlops_requests_total" and s.labels.get("route") in PREDICT_ROUTES:
            a = arm or s.labels.get("version", "")
            c.requests[a] = c.requests.get(a, 0.0) + s.value
            if s.labels.get("code", "").startswith("5"):
                c.errors[a] = c.errors.get(a, 0.0) + s.value
        elif s.name == "mlops_request_duration_seconds_bucket" and s.labels.get("route") in PREDICT_ROUTES:
            a = arm or s.labels.get("version", "")
            le = _le(s.labels.get("le", "+Inf"))
            per = c.buckets.setdefault(a, {})
            per[le] = per.get(le, 0.0) + s.value
        elif s.name == "mlops_requests_in_flight":
            c.in_flight += s.value
    return c


def _le(text: str) -> float:
    return math.inf if text in ("+Inf", "Inf", "inf") else float(text)


@dataclass
class Window:
    """What happened between two scrapes: counts and the latency histogram's increments (non-cumulative per le)."""

    seconds: float = 0.0
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative increment

    def add(self, other: Window) -> None:
        self.seconds = max(self.seconds, other.seconds)
        self.requests += other.requests
        self.errors += other.errors
        for le, v in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + v

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else math.nan

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else 0.0

    def quantile(self, q: float) -> float:
        return histogram_quantile(q, self.buckets)


def _delta(cur: float, prev: float | None) -> float:
    if prev is None:
        return 0.0
    return cur if cur < prev else cur - prev  # a counter that went down was reset (the process restarted)


def windows(prev: Counters | None, cur: Counters, seconds: float) -> dict[str, Window]:
    """Per-arm windows between two scrapes of one target (the first scrape gives empty windows)."""
    out: dict[str, Window] = {}
    for arm in set(cur.requests) | set(cur.buckets):
        w = Window(seconds=seconds)
        p_req = None if prev is None else prev.requests.get(arm, 0.0)
        p_err = None if prev is None else prev.errors.get(arm, 0.0)
        w.requests = _delta(cur.requests.get(arm, 0.0), p_req)
        reset = p_req is not None and cur.requests.get(arm, 0.0) < p_req
        w.errors = cur.errors.get(arm, 0.0) if reset else _delta(cur.errors.get(arm, 0.0), p_err)
        prev_b = None if prev is None else prev.buckets.get(arm, {})
        for le, v in cur.buckets.get(arm, {}).items():
            pv = None if prev_b is None else prev_b.get(le, 0.0)
            w.buckets[le] = v if reset else _delta(v, pv)
        out[arm] = w
    return out


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus's histogram_quantile over cumulative bucket counts: linear inside the bucket, NaN without data,
    the highest finite bound when the rank falls in the +Inf bucket."""
    if not buckets:
        return math.nan
    les = sorted(buckets)
    counts = [buckets[le] for le in les]
    for i in range(1, len(counts)):  # monotonic, as Prometheus enforces
        counts[i] = max(counts[i], counts[i - 1])
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    for i, (le, count) in enumerate(zip(les, counts, strict=True)):
        if count >= rank:
            if math.isinf(le):
                return les[i - 1] if i > 0 else math.nan
            lower = les[i - 1] if i > 0 else 0.0
            below = counts[i - 1] if i > 0 else 0.0
            inside = count - below
            if i == 0 and le <= 0:
                return le
            return lower + (le - lower) * ((rank - below) / inside if inside > 0 else 1.0)
    return les[-2] if len(les) > 1 and math.isinf(les[-1]) else les[-1]
