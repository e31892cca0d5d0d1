"""Alert rules, alerts, silences and acknowledgements in the workspace database; rules from a project's mlops.toml.

    [monitoring]
    webhook = "http://127.0.0.1:9093/hook"     # optional: alerts POSTed as JSON (Alertmanager's webhook shape)
    [[monitoring.rules]]
    name = "p99-slow"
    expr = "p99_latency > 0.5"
    for = "1m"
    keep_firing_for = "2m"
    severity = "critical"
    deployment = "churn"                       # a glob; "*" (the default) is every deployment
    action = "revert"                          # "revert": back to the last stable revision when it fires
    labels = { team = "ml" }

A silence mutes notifications and automatic actions for matching alerts (deployment and rule globs) until it ends;
an acknowledgement records who looks at a firing alert and why. Every change is also an audit event.
"""

from __future__ import annotations

import fnmatch
import getpass
import json
import os
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.monitoring.rules import Rule, parse_duration

if TYPE_CHECKING:
    import sqlite3

    from mlops_desktop.workspace import Workspace

_RULE_COLS = ("name, expr, for_s, keep_firing_for_s, severity, deployment, labels, summary, action, source, "
              "enabled")
_ALERT_COLS = ("id, rule, deployment, state, severity, value, labels, started_at, fired_at, resolved_at, "
               "last_true_at, acked_by, acked_at, ack_note, action")


def actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass
class Alert:
    id: int
    rule: str
    deployment: str
    state: str
    severity: str
    value: float | None
    labels: dict[str, str]
    started_at: float
    fired_at: float | None
    resolved_at: float | None
    last_true_at: float | None
    acked_by: str | None
    acked_at: float | None
    ack_note: str
    action: str
    silenced: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Silence:
    id: int
    deployment: str
    rule: str
    starts_at: float
    ends_at: float
    created_by: str
    comment: str

    def matches(self, deployment: str, rule: str, now: float) -> bool:
        return self.starts_at <= now < self.ends_at and fnmatch.fnmatchcase(deployment, self.deployment) and \
            fnmatch.fnmatchcase(rule, self.rule)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _audit(conn: sqlite3.Connection, kind: str, subject: str, *, reason: str = "", details: dict[str, Any] | None = None,
           from_value: str | None = None, to_value: str | None = None, who: str | None = None) -> None:
    from mlops_desktop import audit

    audit.append(conn, kind, subject, from_value=from_value, to_value=to_value, reason=reason,
                 details=details or {}, actor=who or actor())


class AlertStore:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.db = ws.db

    # -- rules -------------------------------------------------------------------------------------------------
    def add_rule(self, rule: Rule, *, replace: bool = False) -> Rule:
        def write(conn: sqlite3.Connection) -> None:
            exists = conn.execute("SELECT 1 FROM monitor_rules WHERE name = ?", (rule.name,)).fetchone()
            if exists and not replace:
                raise UsageError(f"a rule named {rule.name!r} exists", hint="remove it first, or pick another name")
            conn.execute("DELETE FROM monitor_rules WHERE name = ?", (rule.name,))
            conn.execute(f"INSERT INTO monitor_rules({_RULE_COLS}, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         (rule.name, rule.expr, rule.for_s, rule.keep_firing_for_s, rule.severity, rule.deployment,
                          json.dumps(rule.labels), rule.summary, rule.action, rule.source, int(rule.enabled),
                          time.time()))
            _audit(conn, "monitor.rule.set", f"rule:{rule.name}", to_value=rule.expr,
                   details=rule.to_dict())

        self.db.write(write)
        return rule

    def remove_rule(self, name: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM monitor_rules WHERE name = ?", (name,)).rowcount == 0:
                raise NotFoundError(f"no alert rule named {name!r}")
            _audit(conn, "monitor.rule.removed", f"rule:{name}")

        self.db.write(write)

    def rules(self, deployment: str | None = None) -> list[Rule]:
        out = []
        for r in self.db.query(f"SELECT {_RULE_COLS} FROM monitor_rules ORDER BY name"):
            rule = Rule(name=r[0], expr=r[1], for_s=r[2], keep_firing_for_s=r[3], severity=r[4], deployment=r[5],
                        labels=json.loads(r[6]), summary=r[7], action=r[8], source=r[9], enabled=bool(r[10]))
            if deployment is None or rule.applies_to(deployment):
                out.append(rule)
        return out

    def load_project(self, project: str | Path) -> list[Rule]:
        """Upsert the `[[monitoring.rules]]` of a project's mlops.toml (source 'toml'); toml rules that are gone
        from the file are removed. Returns the file's rules."""
        path = Path(project)
        path = path / "mlops.toml" if path.is_dir() else path
        doc = read_monitoring_section(path)
        rules = [Rule.from_dict(raw, source="toml", where=f"{path}: monitoring.rules[{i}]")
                 for i, raw in enumerate(doc.get("rules") or [])]
        names = [r.name for r in rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UsageError(f"{path}: two monitoring rules are named {dup[0]!r}")
        for rule in rules:
            self.add_rule(rule, replace=True)
        for old in self.rules():
            if old.source == "toml" and old.name not in names:
                self.remove_rule(old.name)
        return rules

    # -- alerts ------------------------------------------------------------------------------------------------
    def _alert(self, row: tuple[Any, ...]) -> Alert:
        values = list(row)
        values[6] = json.loads(values[6])
        return Alert(*values)

    def alerts(self, *, deployment: str | None = None, states: tuple[str, ...] | None = None,
               limit: int = 200) -> list[Alert]:
        sql = f"SELECT {_ALERT_COLS} FROM monitor_alerts WHERE state != 'inactive'"
        params: list[Any] = []
        if deployment is not None:
            sql += " AND deployment = ?"
            params.append(deployment)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params += list(states)
        rows = self.db.query(sql + " ORDER BY (state = 'firing') DESC, started_at DESC LIMIT ?", (*params, limit))
        now = time.time()
        silences = self.silences(active_at=now)
        out = []
        for row in rows:
            a = self._alert(row)
            a.silenced = any(s.matches(a.deployment, a.rule, now) for s in silences)
            out.append(a)
        return out

    def get(self, alert_id: int) -> Alert:
        rows = self.db.query(f"SELECT {_ALERT_COLS} FROM monitor_alerts WHERE id = ?", (alert_id,))
        if not rows:
            raise NotFoundError(f"no alert {alert_id}", hint="`alerts list` shows them")
        return self._alert(rows[0])

    def open_alert(self, deployment: str, rule: str) -> Alert | None:
        rows = self.db.query(f"SELECT {_ALERT_COLS} FROM monitor_alerts WHERE deployment = ? AND rule = ? AND "
                             "state IN ('pending', 'firing') ORDER BY id DESC LIMIT 1", (deployment, rule))
        return self._alert(rows[0]) if rows else None

    def events(self, alert_id: int) -> list[dict[str, Any]]:
        return [{"at": r[0], "event": r[1], "detail": r[2]} for r in self.db.query(
            "SELECT at, event, detail FROM monitor_alert_events WHERE alert_id = ? ORDER BY id", (alert_id,))]

    def ack(self, alert_id: int, *, note: str = "", who: str | None = None) -> Alert:
        alert = self.get(alert_id)
        who = who or actor()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE monitor_alerts SET acked_by = ?, acked_at = ?, ack_note = ? WHERE id = ?",
                         (who, time.time(), note, alert_id))
            conn.execute("INSERT INTO monitor_alert_events(alert_id, at, event, detail) VALUES (?, ?, 'acked', ?)",
                         (alert_id, time.time(), f"{who}: {note}"))
            _audit(conn, "monitor.alert.acked", f"alert:{alert_id}", reason=note, who=who,
                   details={"rule": alert.rule, "deployment": alert.deployment})

        self.db.write(write)
        return self.get(alert_id)

    # -- silences ----------------------------------------------------------------------------------------------
    def silence(self, *, deployment: str = "*", rule: str = "*", duration: str | float = "1h", comment: str = "",
                who: str | None = None, starts_at: float | None = None) -> Silence:
        seconds = parse_duration(duration, "silence duration")
        if seconds <= 0:
            raise UsageError("a silence needs a duration above 0", hint="e.g. --for 30m")
        if not comment.strip():
            raise UsageError("a silence needs a comment saying why", hint="--comment 'deploying a fix'")
        start = time.time() if starts_at is None else starts_at
        who = who or actor()

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute("INSERT INTO monitor_silences(deployment, rule, starts_at, ends_at, created_by, "
                               "comment) VALUES (?, ?, ?, ?, ?, ?)",
                               (deployment, rule, start, start + seconds, who, comment))
            _audit(conn, "monitor.silence.added", f"silence:{cur.lastrowid}", reason=comment, who=who,
                   details={"deployment": deployment, "rule": rule, "seconds": seconds})
            return int(cur.lastrowid or 0)

        sid = self.db.write(write)
        return Silence(sid, deployment, rule, start, start + seconds, who, comment)

    def expire_silence(self, silence_id: int) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if conn.execute("UPDATE monitor_silences SET ends_at = ? WHERE id = ?",
                            (time.time(), silence_id)).rowcount == 0:
                raise NotFoundError(f"no silence {silence_id}")
            _audit(conn, "monitor.silence.expired", f"silence:{silence_id}")

        self.db.write(write)

    def silences(self, *, active_at: float | None = None) -> list[Silence]:
        rows = self.db.query("SELECT id, deployment, rule, starts_at, ends_at, created_by, comment "
                             "FROM monitor_silences ORDER BY id")
        out = [Silence(*r) for r in rows]
        if active_at is not None:
            out = [s for s in out if s.starts_at <= active_at < s.ends_at]
        return out

    def silenced(self, deployment: str, rule: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return any(s.matches(deployment, rule, now) for s in self.silences(active_at=now))


def read_monitoring_section(path: Path) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no project file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    section = doc.get("monitoring") or {}
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [monitoring] must be a table")
    return section
