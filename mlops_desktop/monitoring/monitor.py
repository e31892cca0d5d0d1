"""A running monitor of one deployment: the collector's ticks fed through the rule evaluator, targets re-resolved
periodically (a scaled or redeployed deployment gets new replicas), and the automatic revert wired to the deploy
service / router / server behind the name. `monitor run` (CLI) and the GUI's Monitoring area both use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_desktop.monitoring import targets as targets_mod
from mlops_desktop.monitoring.collector import Collector, Tick
from mlops_desktop.monitoring.engine import Evaluator, Notifier, Transition

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)


def tick_values(tick: Tick) -> dict[tuple[str, str], float]:
    return {(p.name, p.labels): p.value for p in tick.points}


class Monitor:
    def __init__(self, ws: Workspace, deployment: str, *, interval_s: float = 2.0, timeout_s: float = 1.0,
                 notifier: Notifier | None = None, auto_revert: bool = True, resolve_every_s: float = 30.0,
                 host_interval_s: float = 10.0, flush_s: float = 10.0) -> None:
        self.ws = ws
        self.deployment = deployment
        self.dep = targets_mod.resolve(ws, deployment)  # refused in words before anything starts
        self._resolved_at = time.monotonic()
        self._stale = False
        self.resolve_every_s = resolve_every_s
        self._lock = threading.Lock()
        self.collector = Collector(ws, deployment, self._targets, interval_s=interval_s, timeout_s=timeout_s,
                                   host_interval_s=host_interval_s, flush_s=flush_s)
        self.evaluator = Evaluator(ws, deployment, notifier=notifier,
                                   revert=self._revert if auto_revert else None)
        self.transitions: list[Transition] = []
        self.on_transition: list[Callable[[Transition], None]] = []
        self.collector.listeners.append(self._on_tick)

    def _targets(self) -> list[targets_mod.ScrapeTarget]:
        since = time.monotonic() - self._resolved_at
        # again every resolve_every_s, and soon (>= 2 s) after a target stopped answering or a revert replaced them
        if since >= self.resolve_every_s or (self._stale and since >= 2.0):
            self._stale = False
            self._resolved_at = time.monotonic()
            try:
                self.dep = targets_mod.resolve(self.ws, self.deployment)
            except Exception as exc:  # keep scraping what we knew; the targets' "no data" says the rest
                log.warning("cannot resolve %s again: %s", self.deployment, exc)
        return self.dep.targets

    def _revert(self, deployment: str, reason: str, alert_id: int) -> dict[str, Any]:
        from mlops_desktop.monitoring.revert import revert

        return revert(self.ws, deployment, reason=reason, alert_id=alert_id, who="monitoring")

    def _on_tick(self, tick: Tick) -> None:
        if tick.down:
            self._stale = True
        with self._lock:
            for tr in self.evaluator.evaluate(self.evaluator.latest_values(tick_values(tick)), now=tick.ts):
                self.transitions.append(tr)
                if tr.action:
                    self._stale = True
                del self.transitions[:-1000]
                for cb in list(self.on_transition):
                    cb(tr)

    def reload_rules(self) -> None:
        with self._lock:
            self.evaluator.reload()

    def start(self) -> Monitor:
        self.collector.start()
        return self

    def stop(self) -> None:
        self.collector.stop()
        self.evaluator.notifier.join()

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
