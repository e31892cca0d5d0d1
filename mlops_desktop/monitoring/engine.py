"""Rule evaluation for one deployment: each tick's values through every rule's state machine, alerts recorded,
notifications sent (in the app, the desktop's notification service, an optional webhook) and actions run.

State survives a restart: open alerts are read back into the rules' state machines. A silenced alert changes state
as usual but sends nothing and runs no automatic action (the operator said they know). The revert action runs once
per alert, when it fires, and is recorded with the alert (monitor_alerts.action, an alert event, the audit log).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_desktop.monitoring.alerts import Alert, AlertStore
from mlops_desktop.monitoring.rules import Rule, RuleState
from mlops_desktop.monitoring.series import SeriesStore

if TYPE_CHECKING:
    import sqlite3

    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)
Lookup = Callable[[str, Mapping[str, str]], "float | None"]
RevertFn = Callable[[str, str, int], dict[str, Any]]  # (deployment, reason, alert id) -> what was done


@dataclass
class Transition:
    rule: str
    deployment: str
    event: str            # pending | firing | resolved | inactive
    alert_id: int
    value: float | None
    at: float
    silenced: bool = False
    action: dict[str, Any] | None = None


def pick(values: Mapping[tuple[str, str], float], name: str, labels: Mapping[str, str]) -> float | None:
    """The value of the series `name` whose labels include `labels`, preferring the one with the fewest labels
    ({} is the deployment; {arm: v2} beats a single target of that arm); among equally specific series (drift of
    two versions) the largest value, the worst case."""
    best: tuple[int, float] | None = None
    want = dict(labels)
    for (n, key), v in values.items():
        if n != name:
            continue
        have = json.loads(key)
        if all(have.get(k) == val for k, val in want.items()):
            if best is None or len(have) < best[0] or (len(have) == best[0] and (math.isnan(best[1]) or v > best[1])):
                best = (len(have), v)
    return None if best is None else best[1]


class Notifier:
    """Where alert notifications go: callbacks (the GUI's notification channel), `notify-send`, a webhook."""

    def __init__(self, *, webhook: str | None = None, desktop: bool = False,
                 callbacks: list[Callable[[Alert, str], None]] | None = None) -> None:
        self.webhook = webhook
        self.desktop = desktop and shutil.which("notify-send") is not None
        self.callbacks = list(callbacks or [])
        self.sent: list[tuple[int, str]] = []
        self._threads: list[threading.Thread] = []

    def notify(self, alert: Alert, event: str, rule: Rule) -> None:
        self.sent.append((alert.id, event))
        for cb in self.callbacks:
            try:
                cb(alert, event)
            except Exception:
                log.exception("alert notification callback failed")
        title = f"[{alert.severity}] {alert.rule} {event} on {alert.deployment}"
        text = rule.summary or f"{rule.expr} (value {alert.value})"
        if self.desktop:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(["notify-send", "--app-name=MLOps Desktop", title, text], timeout=5, check=False,
                               capture_output=True)
        if self.webhook:
            payload = {"version": "4", "status": "resolved" if event == "resolved" else "firing",
                       "receiver": "mlops-desktop", "alerts": [{
                           "status": "resolved" if event == "resolved" else "firing",
                           "labels": {"alertname": alert.rule, "deployment": alert.deployment,
                                      "severity": alert.severity} | rule.labels,
                           "annotations": {"summary": text, "value": str(alert.value)},
                           "startsAt": _iso(alert.started_at), "endsAt": _iso(alert.resolved_at),
                           "fingerprint": str(alert.id)}]}
            t = threading.Thread(target=_post, args=(self.webhook, payload), daemon=True, name="mlops-webhook")
            t.start()
            self._threads.append(t)

    def join(self, timeout: float = 5.0) -> None:
        for t in self._threads:
            t.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]


def _iso(ts: float | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _post(url: str, payload: dict[str, Any]) -> None:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",  # noqa: S310
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - the user's configured webhook
            resp.read()
    except OSError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)


class Evaluator:
    def __init__(self, ws: Workspace, deployment: str, *, notifier: Notifier | None = None,
                 revert: RevertFn | None = None) -> None:
        self.ws = ws
        self.deployment = deployment
        self.alerts = AlertStore(ws)
        self.series = SeriesStore(ws.db)
        self.notifier = notifier or Notifier()
        self.revert = revert
        self._states: dict[str, RuleState] = {}
        self._alert_ids: dict[str, int] = {}
        self.rules: list[Rule] = []
        self.reload()

    def reload(self) -> None:
        """Read the rules again (after an edit), keeping the state of rules that did not change."""
        self.rules = [r for r in self.alerts.rules(self.deployment) if r.enabled]
        for rule in self.rules:
            st = self._states.get(rule.name)
            if st is not None and (st.for_s, st.keep_firing_for_s) == (rule.for_s, rule.keep_firing_for_s):
                continue
            open_alert = self.alerts.open_alert(self.deployment, rule.name)
            st = RuleState(rule.for_s, rule.keep_firing_for_s)
            if open_alert is not None:
                st.state = open_alert.state
                st.active_since, st.fired_at = open_alert.started_at, open_alert.fired_at
                st.last_true_at = open_alert.last_true_at
                self._alert_ids[rule.name] = open_alert.id
            self._states[rule.name] = st

    def latest_values(self, overlay: Mapping[tuple[str, str], float] | None = None) -> dict[tuple[str, str], float]:
        """The last value of every series of the deployment (stored), overlaid with the newest tick's points."""
        values: dict[tuple[str, str], float] = {}
        for info in self.series.list_series(self.deployment):
            if info.last_value is not None:
                values[(info.name, json.dumps(info.labels, separators=(",", ":"), sort_keys=True))] = info.last_value
        values.update(overlay or {})
        return values

    def evaluate(self, values: Mapping[tuple[str, str], float], now: float | None = None) -> list[Transition]:
        now = time.time() if now is None else now
        out: list[Transition] = []
        for rule in self.rules:
            cond = rule.condition
            value = pick(values, cond.metric, cond.label_dict)
            st = self._states[rule.name]
            event = st.step(now, cond.holds(value))
            if event is None:
                if st.state in ("pending", "firing") and rule.name in self._alert_ids:
                    self._touch(self._alert_ids[rule.name], value, st)
                continue
            out.append(self._record(rule, st, event, value, now))
        return out

    def _touch(self, alert_id: int, value: float | None, st: RuleState) -> None:
        self.ws.db.write(lambda c: c.execute("UPDATE monitor_alerts SET value = ?, last_true_at = ? WHERE id = ?",
                                             (value, st.last_true_at, alert_id)))

    def _record(self, rule: Rule, st: RuleState, event: str, value: float | None, now: float) -> Transition:
        from mlops_desktop import audit

        dep = self.deployment
        silenced = self.alerts.silenced(dep, rule.name, now)

        def write(conn: sqlite3.Connection) -> int:
            alert_id = self._alert_ids.get(rule.name)
            if alert_id is None:
                cur = conn.execute(
                    "INSERT INTO monitor_alerts(rule, deployment, state, severity, value, labels, started_at, "
                    "fired_at, last_true_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rule.name, dep, "firing" if event == "firing" else "pending", rule.severity, value,
                     json.dumps(rule.labels), now, now if event == "firing" else None, st.last_true_at))
                alert_id = int(cur.lastrowid or 0)
            elif event == "firing":
                conn.execute("UPDATE monitor_alerts SET state = 'firing', fired_at = ?, value = ?, last_true_at = ? "
                             "WHERE id = ?", (now, value, st.last_true_at, alert_id))
            else:
                state = "resolved" if event == "resolved" else "inactive"
                conn.execute("UPDATE monitor_alerts SET state = ?, resolved_at = ?, value = ? WHERE id = ?",
                             (state, now, value, alert_id))
            conn.execute("INSERT INTO monitor_alert_events(alert_id, at, event, detail) VALUES (?, ?, ?, ?)",
                         (alert_id, now, event, f"{rule.expr}: value {value}" + (" (silenced)" if silenced else "")))
            if event in ("firing", "resolved"):
                audit.append(conn, f"monitor.alert.{event}", f"deployment:{dep}", reason=rule.expr,
                             details={"alert_id": alert_id, "rule": rule.name, "value": value,
                                      "severity": rule.severity, "silenced": silenced}, actor="monitoring")
            return alert_id

        alert_id = self.ws.db.write(write)
        if event in ("pending", "firing"):
            self._alert_ids[rule.name] = alert_id
        else:
            self._alert_ids.pop(rule.name, None)
        tr = Transition(rule.name, dep, event, alert_id, value, now, silenced)
        if event in ("firing", "resolved") and not silenced:
            self.notifier.notify(self.alerts.get(alert_id), event, rule)
        if event == "firing" and rule.action == "revert" and not silenced and self.revert is not None:
            tr.action = self._run_revert(rule, alert_id, value)
        return tr

    def _run_revert(self, rule: Rule, alert_id: int, value: float | None) -> dict[str, Any]:
        reason = f"alert {alert_id} ({rule.name}: {rule.expr}, value {value})"
        try:
            assert self.revert is not None
            done = dict(self.revert(self.deployment, reason, alert_id))
            detail, ok = json.dumps(done, default=str), True
        except Exception as exc:  # recorded with the alert; the operator sees why the switch back did not happen
            log.exception("revert of %s for alert %s failed", self.deployment, alert_id)
            done, detail, ok = {"error": str(exc)}, f"revert failed: {exc}", False
        summary = ("reverted to " + str(done.get("to", "?"))) if ok else detail

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE monitor_alerts SET action = ? WHERE id = ?", (summary, alert_id))
            conn.execute("INSERT INTO monitor_alert_events(alert_id, at, event, detail) VALUES (?, ?, ?, ?)",
                         (alert_id, time.time(), "revert" if ok else "revert_failed", detail))

        self.ws.db.write(write)
        return done
