"""Alert rules: the expression language and its errors in words, the Prometheus state machine (pending, for,
keep_firing_for, no data, resolve), alerts recorded and restored after a restart, silences and acknowledgements,
rules from mlops.toml, and notifications through a real webhook receiver."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mlops_desktop import audit
from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring.alerts import AlertStore
from mlops_desktop.monitoring.engine import Evaluator, Notifier, pick
from mlops_desktop.monitoring.rules import Rule, RuleState, parse_duration, parse_expr
from mlops_desktop.monitoring.series import label_key


def test_expressions_and_durations():
    cond, for_s, keep = parse_expr('error_rate{arm="v2"} >= 0.01 for 1m30s keep_firing_for 5m')
    assert (cond.metric, cond.label_dict, cond.op, cond.threshold) == ("error_rate", {"arm": "v2"}, ">=", 0.01)
    assert (for_s, keep) == (90.0, 300.0)
    assert parse_expr("no_data for 2m")[0].metric == "targets_down" and parse_expr("no_data for 2m")[1] == 120
    assert parse_expr("drift.any > 0.2")[0].metric == "drift.any"
    assert parse_duration("1h") == 3600 and parse_duration(15) == 15.0
    for bad in ("p99_latency >", "p99 ~ 3", '{arm="x"} > 1', 'p99{arm=x} > 1', ""):
        with pytest.raises(UsageError):
            parse_expr(bad)
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration("5 minutes")
    with pytest.raises(UsageError, match="severity"):
        Rule("r", "p99_latency > 1", severity="page")
    with pytest.raises(UsageError, match="invalid rule name"):
        Rule("bad name", "p99_latency > 1")
    rule = Rule("slow", "p99_latency > 0.5 for 1m")
    assert rule.for_s == 60 and rule.expr == "p99_latency > 0.5"


def test_state_machine_pending_for_keep_firing_for_and_resolve():
    st = RuleState(for_s=10, keep_firing_for_s=5)
    assert st.step(0, False) is None and st.state == "inactive"
    assert st.step(1, True) == "pending"
    assert st.step(5, True) is None and st.state == "pending"
    assert st.step(6, False) == "inactive"  # dropped before `for` elapsed: never fired
    assert st.step(7, True) == "pending"
    assert st.step(17, True) == "firing" and st.fired_at == 17
    assert st.step(18, False) is None and st.state == "firing"  # keep_firing_for holds it (anti-flap)
    assert st.step(20, True) is None
    assert st.step(24, False) is None
    assert st.step(25, False) == "resolved" and st.state == "inactive"
    instant = RuleState(for_s=0, keep_firing_for_s=0)
    assert instant.step(0, True) == "firing" and instant.step(1, False) == "resolved"


def test_no_data_makes_a_threshold_false_and_fires_a_no_data_rule():
    slow = Rule("slow", "p99_latency > 0.5").condition
    assert not slow.holds(None) and not slow.holds(math.nan) and slow.holds(0.6)
    nodata = Rule("silent", "no_data").condition
    assert nodata.holds(1.0) and not nodata.holds(0.0)


def test_pick_prefers_the_narrowest_matching_series():
    values = {("p99_latency", label_key({})): 0.1,
              ("p99_latency", label_key({"arm": "v2", "version": "2"})): 0.7,
              ("p99_latency", label_key({"arm": "v2", "version": "2", "target": "x", "role": "replica"})): 0.9}
    assert pick(values, "p99_latency", {}) == 0.1
    assert pick(values, "p99_latency", {"arm": "v2"}) == 0.7
    assert pick(values, "p99_latency", {"arm": "v3"}) is None


def _vals(v: float | None) -> dict:
    return {} if v is None else {("error_rate", label_key({})): v}


def test_evaluator_records_alerts_survives_a_restart_and_resolves(ws):
    store = AlertStore(ws)
    store.add_rule(Rule("errors", "error_rate > 0.05", for_s=4, keep_firing_for_s=2, severity="critical",
                        deployment="churn*"))
    store.add_rule(Rule("other", "error_rate > 0.05", deployment="elsewhere"))
    with pytest.raises(UsageError, match="exists"):
        store.add_rule(Rule("errors", "error_rate > 0.5"))
    notes = Notifier()
    ev = Evaluator(ws, "churn", notifier=notes)
    assert [r.name for r in ev.rules] == ["errors"]
    assert [t.event for t in ev.evaluate(_vals(0.2), now=100)] == ["pending"]
    [pending] = store.alerts(deployment="churn")
    assert pending.state == "pending" and notes.sent == []  # pending notifies nobody
    # the process restarts: the pending alert's clock goes on from where it was
    ev2 = Evaluator(ws, "churn", notifier=notes)
    [tr] = ev2.evaluate(_vals(0.3), now=104)
    assert tr.event == "firing" and tr.alert_id == pending.id
    assert store.get(pending.id).state == "firing" and notes.sent == [(pending.id, "firing")]
    assert ev2.evaluate(_vals(None), now=105) == []  # no data: false, but keep_firing_for holds it
    [tr] = ev2.evaluate(_vals(0.0), now=107)
    assert tr.event == "resolved" and store.get(pending.id).state == "resolved"
    assert [e["event"] for e in store.events(pending.id)] == ["pending", "firing", "resolved"]
    kinds = [e.kind for e in audit.events(ws.db)]
    assert "monitor.alert.firing" in kinds and "monitor.alert.resolved" in kinds


def test_silence_mutes_notifications_and_actions_ack_records_who(ws):
    store = AlertStore(ws)
    store.add_rule(Rule("errors", "error_rate > 0.05", action="revert"))
    with pytest.raises(UsageError, match="comment"):
        store.silence(deployment="churn", duration="10m")
    silence = store.silence(deployment="churn", rule="err*", duration="10m", comment="fix being deployed")
    reverts: list[tuple] = []
    notes = Notifier()
    ev = Evaluator(ws, "churn", notifier=notes, revert=lambda d, r, a: reverts.append((d, r, a)) or {"to": "1"})
    [tr] = ev.evaluate(_vals(0.5))
    assert tr.event == "firing" and tr.silenced and notes.sent == [] and reverts == []
    [alert] = store.alerts()
    assert alert.silenced
    acked = store.ack(alert.id, note="looking at it", who="ana")
    assert acked.acked_by == "ana" and acked.ack_note == "looking at it"
    store.expire_silence(silence.id)
    assert not store.silenced("churn", "errors")
    ev.evaluate(_vals(0.0))
    [tr] = ev.evaluate(_vals(0.5))
    assert tr.event == "firing" and not tr.silenced and reverts and reverts[0][2] == tr.alert_id
    assert store.get(tr.alert_id).action == "reverted to 1"


def test_a_failing_revert_is_recorded_with_the_alert(ws):
    store = AlertStore(ws)
    store.add_rule(Rule("errors", "error_rate > 0.05", action="revert"))

    def broken(d, r, a):
        raise RuntimeError("the deploy engine is gone")

    [tr] = Evaluator(ws, "churn", revert=broken).evaluate(_vals(0.5))
    assert tr.action == {"error": "the deploy engine is gone"}
    assert "revert failed" in store.get(tr.alert_id).action
    assert store.events(tr.alert_id)[-1]["event"] == "revert_failed"


def test_rules_from_mlops_toml_are_upserted_and_bad_ones_named(ws, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mlops.toml").write_text(
        '[[monitoring.rules]]\nname = "slow"\nexpr = "p99_latency > 0.5"\nfor = "1m"\nseverity = "critical"\n'
        'labels = { team = "ml" }\n[[monitoring.rules]]\nname = "silent"\nexpr = "no_data for 2m"\n')
    store = AlertStore(ws)
    store.add_rule(Rule("manual", "error_rate > 0.1"))
    rules = store.load_project(project)
    assert [r.name for r in rules] == ["slow", "silent"]
    got = {r.name: r for r in store.rules()}
    assert got["slow"].for_s == 60 and got["slow"].labels == {"team": "ml"} and got["silent"].for_s == 120
    (project / "mlops.toml").write_text('[[monitoring.rules]]\nname = "slow"\nexpr = "p99_latency > 1"\n')
    store.load_project(project)
    assert sorted(r.name for r in store.rules()) == ["manual", "slow"]  # the toml rule gone from the file is gone
    (project / "mlops.toml").write_text('[[monitoring.rules]]\nname = "x"\nexpr = "p99 >"\n')
    with pytest.raises(UsageError, match=r"monitoring.rules\[0\]"):
        store.load_project(project)
    (project / "mlops.toml").write_text('[[monitoring.rules]]\nname = "x"\nexpr = "p99 > 1"\nfour = "1m"\n')
    with pytest.raises(UsageError, match="unknown field 'four'"):
        store.load_project(project)


def test_webhook_receives_firing_and_resolved(ws):
    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        AlertStore(ws).add_rule(Rule("errors", "error_rate > 0.05", labels={"team": "ml"}))
        notes = Notifier(webhook=f"http://127.0.0.1:{server.server_port}/hook")
        ev = Evaluator(ws, "churn", notifier=notes)
        ev.evaluate(_vals(0.5))
        notes.join()
        ev.evaluate(_vals(0.0))
        notes.join()
    finally:
        server.shutdown()
        server.server_close()
    assert [g["status"] for g in got] == ["firing", "resolved"]
    assert got[0]["alerts"][0]["labels"] == {"alertname": "errors", "deployment": "churn", "severity": "warning",
                                             "team": "ml"}
