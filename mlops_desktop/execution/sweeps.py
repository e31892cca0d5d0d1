"""Sweep specs: grid and random search over job parameters, expanded to one child run per point."""

from __future__ import annotations

import itertools
import math
import random
import re
from typing import Any

from mlops_desktop.execution.errors import JobError

MAX_POINTS = 10_000
_DIST = re.compile(r"^(uniform|loguniform|randint|choice)\((.*)\)$")

SPEC_HELP = ("grid:lr=0.1,0.01;depth=3,5  (every combination)  or  "
             "random:20:lr=loguniform(1e-4,1e-1);depth=choice(3,5,7);drop=uniform(0,0.5);units=randint(32,256)")


def expand(spec: str, *, seed: int | None = None) -> list[dict[str, str]]:
    """The parameter sets of a sweep spec (see SPEC_HELP); errors name the part that is wrong."""
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    if kind == "grid":
        return _grid(rest)
    if kind == "random":
        count_text, _, body = rest.partition(":")
        if not count_text.strip().isdigit() or int(count_text) < 1:
            raise JobError(f"sweep {spec!r}: random needs a positive count, as in random:20:lr=uniform(0,1)")
        return _random(body, int(count_text), seed)
    raise JobError(f"sweep {spec!r} must start with grid: or random:", hint=SPEC_HELP)


def _items(body: str, spec_kind: str) -> list[tuple[str, str]]:
    items = []
    for part in body.split(";"):
        if not part.strip():
            continue
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or not key or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", key):
            raise JobError(f"{spec_kind} sweep: {part.strip()!r} must look like name=values", hint=SPEC_HELP)
        items.append((key, values.strip()))
    if not items:
        raise JobError(f"{spec_kind} sweep names no parameter", hint=SPEC_HELP)
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise JobError(f"{spec_kind} sweep names a parameter twice: {', '.join(keys)}")
    return items


def _grid(body: str) -> list[dict[str, str]]:
    axes = []
    for key, values in _items(body, "grid"):
        options = [v.strip() for v in values.split(",")]
        if not values or any(o == "" for o in options):
            raise JobError(f"grid sweep: parameter {key!r} has an empty value in {values!r}")
        axes.append((key, options))
    total = math.prod(len(o) for _, o in axes)
    if total > MAX_POINTS:
        raise JobError(f"grid sweep has {total} points; at most {MAX_POINTS} are allowed")
    return [dict(zip([k for k, _ in axes], combo, strict=True)) for combo in itertools.product(*[o for _, o in axes])]


def _random(body: str, count: int, seed: int | None) -> list[dict[str, str]]:
    if count > MAX_POINTS:
        raise JobError(f"random sweep asks for {count} points; at most {MAX_POINTS} are allowed")
    rng = random.Random(seed)  # noqa: S311 - search, not crypto
    samplers = [(key, _sampler(key, values)) for key, values in _items(body, "random")]
    return [{key: sample(rng) for key, sample in samplers} for _ in range(count)]


def _sampler(key: str, text: str) -> Any:
    match = _DIST.match(text)
    if not match:
        raise JobError(f"random sweep: parameter {key!r}: {text!r} is not one of uniform(a,b), loguniform(a,b), "
                       "randint(a,b), choice(x,y,...)")
    dist, args_text = match.groups()
    args = [a.strip() for a in args_text.split(",") if a.strip()]
    if dist == "choice":
        if not args:
            raise JobError(f"random sweep: parameter {key!r}: choice() needs at least one value")
        return lambda rng: rng.choice(args)
    if len(args) != 2:
        raise JobError(f"random sweep: parameter {key!r}: {dist}() takes two bounds, got {len(args)}")
    try:
        if dist == "randint":
            lo_i, hi_i = int(args[0]), int(args[1])
        else:
            lo, hi = float(args[0]), float(args[1])
    except ValueError:
        raise JobError(f"random sweep: parameter {key!r}: bounds {args} are not numbers") from None
    if dist == "randint":
        if lo_i > hi_i:
            raise JobError(f"random sweep: parameter {key!r}: {lo_i} > {hi_i}")
        return lambda rng: str(rng.randint(lo_i, hi_i))
    if lo > hi:
        raise JobError(f"random sweep: parameter {key!r}: {lo} > {hi}")
    if dist == "loguniform":
        if lo <= 0:
            raise JobError(f"random sweep: parameter {key!r}: loguniform bounds must be > 0")
        return lambda rng: f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.6g}"
    return lambda rng: f"{rng.uniform(lo, hi):.6g}"
