"""Promotion checks, one plug-in per kind behind one interface (`base.Check`); `build(raw, where)` makes one."""

from __future__ import annotations

from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.promotion.checks.backtest import BacktestCheck
from mlops_desktop.promotion.checks.base import NOT_AVAILABLE, Check, CheckContext, CheckResult
from mlops_desktop.promotion.checks.contract import ContractCheck
from mlops_desktop.promotion.checks.holdout import HoldoutCheck
from mlops_desktop.promotion.checks.image import ImageCheck
from mlops_desktop.promotion.checks.shadow import ShadowCheck

KINDS: dict[str, Any] = {c.kind: c for c in (HoldoutCheck, ContractCheck, BacktestCheck, ImageCheck, ShadowCheck)}

__all__ = ["KINDS", "NOT_AVAILABLE", "Check", "CheckContext", "CheckResult", "build"]


def build(raw: Any, where: str) -> Check:
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a table with kind = \"...\"")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise UsageError(f"{where}.kind: unknown check kind {kind!r}", hint="use one of " + ", ".join(KINDS))
    check: Check = KINDS[kind].from_config(raw, where)
    return check
