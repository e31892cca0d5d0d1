"""Promotion policies: `[promotion.<name>]` tables of a project's mlops.toml, parsed with errors naming the key.

    [promotion.churn]                   # the table's name is the model's unless `model = "..."` says otherwise
    trigger = "alias:challenger"        # "new-version" | "alias:NAME" | "manual" (default)
    champion_alias = "champion"         # what the candidate is measured against, and the alias approval moves
    approvals = 1                       # approvals needed
    allow_self_approval = false         # may the person who registered the candidate approve it?
    expires = "72h"                     # a review not decided by then expires (s, m, h, d, w)
    deployments = ["churn-prod"]        # updated on approval (default: those serving MODEL@champion_alias)
    [[promotion.churn.checks]]
    kind = "holdout"                    # holdout | contract | backtest | image | shadow (see promotion/checks/)
    dataset = "churn_holdout@2"
    target = "churned"
    require = ["accuracy >= champion - 0.01"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.promotion import checks as checks_mod
from mlops_desktop.registry.names import check_alias, check_model_name

_KEYS = {"model", "trigger", "champion_alias", "approvals", "allow_self_approval", "expires", "deployments",
         "checks"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise UsageError(f"{where} = {value!r} is not a duration", hint="write e.g. \"30m\", \"72h\" or \"7d\"")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class Policy:
    name: str
    model: str
    trigger: str = "manual"
    champion_alias: str = "champion"
    approvals: int = 1
    allow_self_approval: bool = False
    expires_s: float = 72 * 3600.0
    deployments: tuple[str, ...] | None = None
    checks: list[Any] = field(default_factory=list)
    origin: str = ""

    @property
    def trigger_alias(self) -> str | None:
        return self.trigger.split(":", 1)[1] if self.trigger.startswith("alias:") else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "trigger": self.trigger,
                "champion_alias": self.champion_alias, "approvals": self.approvals,
                "allow_self_approval": self.allow_self_approval, "expires": self.expires_s,
                "deployments": list(self.deployments) if self.deployments is not None else None,
                "checks": [c.to_config() for c in self.checks], "origin": self.origin}


def parse_policy(name: str, raw: Any, where: str) -> Policy:
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}", hint="known: " + ", ".join(sorted(_KEYS)))
    model = raw.get("model", name)
    if not isinstance(model, str):
        raise UsageError(f"{where}.model must be a model name")
    try:
        check_model_name(model)
    except UsageError as exc:
        raise UsageError(f"{where}.model: {exc.message}", hint=exc.hint) from None
    trigger = raw.get("trigger", "manual")
    if not isinstance(trigger, str) or not (trigger in ("manual", "new-version") or trigger.startswith("alias:")):
        raise UsageError(f"{where}.trigger = {trigger!r}", hint="use \"manual\", \"new-version\" or \"alias:NAME\"")
    if trigger.startswith("alias:"):
        try:
            check_alias(trigger[6:])
        except UsageError as exc:
            raise UsageError(f"{where}.trigger: {exc.message}") from None
    champion_alias = raw.get("champion_alias", "champion")
    if not isinstance(champion_alias, str):
        raise UsageError(f"{where}.champion_alias must be an alias name")
    try:
        check_alias(champion_alias)
    except UsageError as exc:
        raise UsageError(f"{where}.champion_alias: {exc.message}") from None
    approvals = raw.get("approvals", 1)
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= 20:
        raise UsageError(f"{where}.approvals must be a whole number from 1 to 20, got {approvals!r}")
    self_ok = raw.get("allow_self_approval", False)
    if not isinstance(self_ok, bool):
        raise UsageError(f"{where}.allow_self_approval must be true or false, got {self_ok!r}")
    expires = parse_duration(raw.get("expires", "72h"), f"{where}.expires")
    deployments = raw.get("deployments")
    if deployments is not None and (not isinstance(deployments, list)
                                    or not all(isinstance(d, str) and d for d in deployments)):
        raise UsageError(f"{where}.deployments must be a list of deployment names")
    raw_checks = raw.get("checks", [])
    if not isinstance(raw_checks, list):
        raise UsageError(f"{where}.checks must be an array of tables ([[{where.strip('[]')}.checks]])")
    built = [checks_mod.build(c, f"{where}.checks[{i}]") for i, c in enumerate(raw_checks)]
    names = [c.name for c in built]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{where}.checks: the name(s) {', '.join(dupes)} are used twice",
                         hint="give each check its own name = \"...\"")
    return Policy(name, model, trigger, champion_alias, approvals, self_ok, expires,
                  tuple(deployments) if deployments is not None else None, built, where)


def from_dict(data: dict[str, Any]) -> Policy:
    """A policy back from its snapshot (`to_dict`), as stored with a request."""
    raw: dict[str, Any] = {k: data[k] for k in ("model", "trigger", "champion_alias", "approvals", "allow_self_approval")
           if k in data}
    raw["expires"] = data.get("expires", 72 * 3600.0)
    if data.get("deployments") is not None:
        raw["deployments"] = data["deployments"]
    raw["checks"] = data.get("checks", [])
    return parse_policy(str(data["name"]), raw, data.get("origin") or f"[promotion.{data['name']}]")


def load_policies(project_root: str | Path) -> dict[str, Policy]:
    """Every policy of the project's mlops.toml (an empty dict when it has none)."""
    import tomllib

    path = Path(project_root) / "mlops.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no mlops.toml in {path.parent}",
                            hint="run inside the project, or pass --project DIR") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    section = raw.get("promotion", {})
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [promotion] must be a table of policies ([promotion.MODEL])")
    return {name: parse_policy(name, spec, f"{path} [promotion.{name}]") for name, spec in section.items()}


def find_policy(project_root: str | Path, model: str, name: str | None = None) -> Policy:
    policies = load_policies(project_root)
    if name is not None:
        if name not in policies:
            raise NotFoundError(f"no policy [promotion.{name}] in {Path(project_root) / 'mlops.toml'}",
                                hint="policies: " + (", ".join(policies) or "none"))
        policy = policies[name]
        if policy.model != model:
            raise UsageError(f"policy {name!r} is for model {policy.model!r}, not {model!r}")
        return policy
    matching = [p for p in policies.values() if p.model == model]
    if not matching:
        raise NotFoundError(f"no promotion policy for model {model!r} in {Path(project_root) / 'mlops.toml'}",
                            hint=f"add a [promotion.{model}] table, or pass --policy NAME")
    if len(matching) > 1:
        raise UsageError(f"several policies are for model {model!r}: {', '.join(p.name for p in matching)}",
                         hint="pick one with --policy NAME")
    return matching[0]
