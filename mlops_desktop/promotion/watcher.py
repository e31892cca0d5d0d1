"""The policies' triggers, run by themselves: a watcher follows the audit log from a cursor and, when a version is
created or an alias is set, moved or rolled back on a model that a `new-version` or `alias:NAME` policy covers,
starts that policy's request (`pipeline.trigger`, which never starts one twice) and runs its checks.

The first poll is a full scan, so a version registered while no watcher ran is not missed; later polls read only
the audit rows after the cursor (one indexed query). Policies are read again on every poll that has work, so an
edited `mlops.toml` counts without a restart; a policy file that no longer parses is reported in words and the
last good policies stay in force. A request whose checks crash is recorded by the pipeline and the watcher goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops_desktop.errors import MlopsError
from mlops_desktop.promotion import pipeline

if TYPE_CHECKING:
    from mlops_desktop.promotion.policy import Policy
    from mlops_desktop.promotion.requests import PromotionRequest
    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)

TRIGGER_KINDS = ("model.version.created", "model.alias.set", "model.alias.moved", "model.alias.rollback")


@dataclass
class PollResult:
    started: list[PromotionRequest] = field(default_factory=list)
    events: int = 0           # audit rows read since the last poll that could trigger something
    problem: str = ""         # why this poll could not act (in words), "" when it could


class TriggerWatcher:
    """`poll()` once, or `watch()` until `stop` is set; `run=False` only starts requests (a person runs them)."""

    def __init__(self, ws: Workspace, load_policies: Callable[[], dict[str, Policy]], *, run: bool = True,
                 actor: str | None = None, on_started: Callable[[PromotionRequest], None] | None = None) -> None:
        self.ws = ws
        self.load_policies = load_policies
        self.run = run
        self.actor = actor
        self.on_started = on_started
        self.cursor: int | None = None  # audit_events.id already seen; None before the first (full) poll
        self._policies: dict[str, Policy] = {}

    def _latest_id(self) -> int:
        rows = self.ws.db.query("SELECT COALESCE(MAX(id), 0) FROM audit_events")
        return int(rows[0][0])

    def _changed_models(self) -> tuple[set[str] | None, int, int]:
        """Models with triggering events after the cursor (None: all, the first poll), their count, new cursor."""
        latest = self._latest_id()
        if self.cursor is None:
            return None, 0, latest
        marks = ",".join("?" for _ in TRIGGER_KINDS)
        rows = self.ws.db.query(f"SELECT subject FROM audit_events WHERE id > ? AND id <= ? "  # noqa: S608 - marks only
                                f"AND kind IN ({marks})", (self.cursor, latest, *TRIGGER_KINDS))
        models = {str(s).removeprefix("model:") for (s,) in rows if str(s).startswith("model:")}
        return models, len(rows), latest

    def poll(self) -> PollResult:
        models, events, latest = self._changed_models()
        out = PollResult(events=events)
        if models is not None and not models:
            self.cursor = latest
            return out
        try:
            self._policies = self.load_policies()
        except MlopsError as exc:
            out.problem = f"the promotion policies cannot be read: {exc.message}"
            if not self._policies:
                return out  # nothing good to fall back on; the cursor stays, so this is tried again
        wanted = {name: p for name, p in self._policies.items()
                  if p.trigger != "manual" and (models is None or p.model in models)}
        if wanted:
            out.started = pipeline.trigger(self.ws, wanted, actor=self.actor)
        self.cursor = latest
        for req in out.started:
            if self.on_started is not None:
                self.on_started(req)
            if self.run:
                try:
                    pipeline.run(self.ws, req.id)
                except MlopsError as exc:  # recorded on the request by the pipeline; the watcher goes on
                    log.warning("promotion %s: %s", req.id, exc.message)
        return out

    def watch(self, stop: threading.Event, *, interval: float = 5.0,
              on_poll: Callable[[PollResult], None] | None = None) -> None:
        while not stop.is_set():
            result = self.poll()
            if on_poll is not None:
                on_poll(result)
            stop.wait(interval)
