"""The router's live settings (weights, kill switch, shadow, thresholds), how a request picks its arm, and the
append-only, hash-chained change log that records who changed what and why.

Arm choice. Without a sticky key an arm is drawn at random in proportion to the weights. With a sticky key (the
configured header's value) the arm is the one with the highest `w / -ln(u)`, where `u` is a 64-bit hash of
(arm name, key) mapped into (0, 1): weighted rendezvous hashing. It needs no state, so every router replica and a
restarted router agree, and:
  - each arm gets its weight's share of the keys (in expectation);
  - raising an arm's weight only moves keys to that arm, lowering it only moves keys away from it; with two arms a
    change moves exactly the changed share (90/10 -> 80/20 moves 10 % of the users, all from the first arm to the
    second; nobody leaves the second);
  - an arm at weight 0 (or a removed one) gives up only its own keys;
  - the kill switch sends everyone to the stable arm, and turning it off puts every user back on their arm.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_desktop.serving.router")
GENESIS = "0" * 64
_TWO64 = float(1 << 64)


@dataclass(frozen=True)
class Settings:
    """What can change live. `thresholds` maps an arm to its classifier decision ({"threshold", "positive_class"})
    or None (the model's own argmax)."""

    weights: dict[str, float]
    kill_switch: bool = False
    shadow_enabled: bool = False
    shadow_percent: float = 0.0
    thresholds: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Selector:
    """The arm table built from one Settings snapshot (rebuilt on every change, read on every request)."""

    def __init__(self, arms: tuple[str, ...], weights: dict[str, float], *, kill_switch: bool, stable: str) -> None:
        self.kill_switch = kill_switch
        self.stable = stable
        live = [(a, float(weights.get(a, 0.0))) for a in arms if weights.get(a, 0.0) > 0]
        if not live:  # never from a checked config; be safe anyway
            live = [(stable, 1.0)]
        self.names = [a for a, _ in live]
        self.weights = [w for _, w in live]
        total = sum(self.weights)
        acc, cum = 0.0, []
        for w in self.weights:
            acc += w / total
            cum.append(acc)
        cum[-1] = 1.0
        self._cum = cum
        self._salts = [a.encode() + b"\x00" for a in self.names]
        self.only = self.names[0] if len(self.names) == 1 else None

    def pick(self, u: float) -> str:
        """The arm for a uniform draw `u` in [0, 1)."""
        if self.kill_switch:
            return self.stable
        if self.only is not None:
            return self.only
        return self.names[bisect.bisect_right(self._cum, u)]

    def sticky(self, key: bytes) -> str:
        """The arm of a sticky key (weighted rendezvous hashing; see the module's docstring)."""
        if self.kill_switch:
            return self.stable
        if self.only is not None:
            return self.only
        best, best_score = self.names[0], -1.0
        for name, salt, w in zip(self.names, self._salts, self.weights, strict=True):
            h = int.from_bytes(hashlib.blake2b(salt + key, digest_size=8).digest(), "big")
            score = w / -math.log((h + 0.5) / _TWO64)
            if score > best_score:
                best, best_score = name, score
        return best


# ----------------------------------------------------------------------------- change events and their log

@dataclass(frozen=True)
class ChangeEvent:
    """One live change: the fields of an audit event (mlops_desktop.audit) so the deployment code can append it
    there as it is (`audit.append(conn, **event.audit_fields())`)."""

    seq: int
    ts: float
    actor: str
    kind: str            # router.weights | router.shadow | router.kill_switch | router.threshold
    subject: str         # router:<name>
    from_value: str      # canonical JSON of what it was
    to_value: str        # ... and what it is now
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def audit_fields(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "from_value": self.from_value,
                "to_value": self.to_value, "reason": self.reason, "actor": self.actor, "ts": self.ts,
                "details": self.details | {"router_seq": self.seq, "router_hash": self.hash}}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _digest(seq: int, ts: float, actor: str, kind: str, subject: str, frm: str, to: str, reason: str,
            details: dict[str, Any], prev: str) -> str:
    body = canonical([seq, repr(float(ts)), actor, kind, subject, frm, to, reason, canonical(details), prev])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class ChangeLog:
    """`changes.jsonl` in the state folder: one JSON line per change, fsynced before the change is answered, each
    line chained to the one before by its sha256 (an edited or removed line breaks `verify`). Without a folder
    (tests, a throwaway router) the log lives in memory only."""

    def __init__(self, directory: Path | None, router: str) -> None:
        self.subject = f"router:{router}"
        self.path = directory / "changes.jsonl" if directory is not None else None
        self._lock = threading.Lock()
        self._events: list[ChangeEvent] = []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._events = read_changes(self.path)

    def append(self, kind: str, actor: str, reason: str, before: Any, after: Any,
               details: dict[str, Any] | None = None) -> ChangeEvent:
        with self._lock:
            prev = self._events[-1] if self._events else None
            seq = prev.seq + 1 if prev else 1
            ts = time.time()
            frm, to = canonical(before), canonical(after)
            det = dict(details or {})
            digest = _digest(seq, ts, actor, kind, self.subject, frm, to, reason, det,
                             prev.hash if prev else GENESIS)
            event = ChangeEvent(seq, ts, actor, kind, self.subject, frm, to, reason, det,
                                prev.hash if prev else GENESIS, digest)
            if self.path is not None:
                line = (canonical(event.to_dict()) + "\n").encode("utf-8")
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self._events.append(event)
            return event

    def events(self, after: int = 0) -> list[ChangeEvent]:
        with self._lock:
            return [e for e in self._events if e.seq > after]


def read_changes(path: Path) -> list[ChangeEvent]:
    """The events of a change log; a torn last line (a crash mid-write) is skipped, anything else refused."""
    from mlops_desktop.errors import UsageError

    out: list[ChangeEvent] = []
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    for i, raw in enumerate(lines, 1):
        try:
            out.append(ChangeEvent(**json.loads(raw)))
        except (ValueError, TypeError):
            if i == len(lines):
                log.warning("router change log %s: the last line is incomplete (a crash while writing); "
                            "it is ignored", path)
                break
            raise UsageError(f"the router change log {path} is damaged at line {i}") from None
    return out


def verify_changes(events: list[ChangeEvent]) -> list[str]:
    """Problems in a change log's chain (empty when intact)."""
    problems, prev = [], GENESIS
    for i, e in enumerate(events):
        if e.seq != i + 1:
            problems.append(f"event {i + 1} has number {e.seq} (one is missing or reordered)")
        if e.prev_hash != prev:
            problems.append(f"event {e.seq} does not follow the one before it")
        if _digest(e.seq, e.ts, e.actor, e.kind, e.subject, e.from_value, e.to_value, e.reason, e.details,
                   e.prev_hash) != e.hash:
            problems.append(f"event {e.seq} was changed after it was written")
        prev = e.hash
    return problems


# ----------------------------------------------------------------------------- the live settings on disk

def save_settings(directory: Path | None, settings: Settings) -> None:
    """`state.json`: what a restarted router resumes with (so a pod restart does not undo a kill switch)."""
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "state.json.tmp"
    tmp.write_text(canonical(settings.to_dict()), encoding="utf-8")
    os.replace(tmp, directory / "state.json")


def load_settings(directory: Path | None, arms: tuple[str, ...]) -> Settings | None:
    """The saved live settings, when they fit the configured arms (else None: the config wins, with a warning)."""
    if directory is None:
        return None
    path = directory / "state.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        settings = Settings(weights={k: float(v) for k, v in doc["weights"].items()},
                            kill_switch=bool(doc["kill_switch"]), shadow_enabled=bool(doc["shadow_enabled"]),
                            shadow_percent=float(doc["shadow_percent"]), thresholds=dict(doc.get("thresholds", {})))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("router: the saved live settings in %s cannot be read; starting from the config", path)
        return None
    if set(settings.weights) != set(arms):
        log.warning("router: the saved live settings in %s are for arms %s, the config has %s; starting from the "
                    "config", path, sorted(settings.weights), sorted(arms))
        with contextlib.suppress(OSError):
            path.rename(path.with_suffix(".json.stale"))
        return None
    return settings
