"""The switch back, end to end on real processes: a managed router (a detached process) in front of two real model
servers; the new version starts failing (planted) under load; the monitor's rule fires and turns the kill switch on;
every later request is answered by the stable version; the revert is recorded with the alert that caused it.
Also: a manual revert needs a reason, and the confirmation names the version it goes back to."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from router_factories import body

from mlops_desktop import audit
from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring import revert, targets
from mlops_desktop.monitoring.alerts import AlertStore
from mlops_desktop.monitoring.monitor import Monitor
from mlops_desktop.monitoring.rules import Rule
from mlops_desktop.serving import router_manager


def test_planted_failure_is_reverted_to_the_stable_version(ws, deployment):
    router, bad = deployment
    dep = targets.resolve(ws, "churn")
    assert dep.kind == "router" and dep.stable == "v1" and dep.arms == {"v1": "1", "v2": "2"}
    assert {t.role for t in dep.targets} == {"router", "replica"} and len(dep.targets) == 3
    assert revert.stable_version(ws, "churn") == {"kind": "router", "to": "1", "arm": "v1"}
    AlertStore(ws).add_rule(Rule("errors", "error_rate > 0.05", action="revert", severity="critical"))
    stop = threading.Event()
    answers: list[tuple[float, int, str]] = []

    def load() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                r = s.post(router.url + "/invocations", json=body(0.3), timeout=10)
                answers.append((time.monotonic(), r.status_code, r.headers.get("x-mlops-arm", "")))
                time.sleep(0.005)

    loader = threading.Thread(target=load, daemon=True)
    with Monitor(ws, "churn", interval_s=0.5, host_interval_s=0) as mon:
        loader.start()
        time.sleep(1.5)
        broke_at = time.monotonic()
        bad.broken = True
        deadline = broke_at + 30
        while not router_manager.client(ws, "churn").state()["settings"]["kill_switch"]:
            assert time.monotonic() < deadline, mon.transitions
            time.sleep(0.05)
        reverted_at = time.monotonic()
        time.sleep(1.0)
        stop.set()
        loader.join(20)
    assert reverted_at - broke_at <= 15
    after = [a for a in answers if a[0] > reverted_at + 0.5]
    assert after and all(code == 200 and arm == "v1" for _, code, arm in after)
    assert any(code == 500 for _, code, _ in answers)  # the failure was real
    [alert] = AlertStore(ws).alerts(deployment="churn")
    assert alert.state in ("firing", "resolved") and alert.action == "reverted to 1"  # resolves once reverted
    events = [e for e in audit.events(ws.db) if e.kind == "monitor.revert"]
    assert events and events[0].details["alert_id"] == alert.id and events[0].to_value == "1"
    assert any(e.kind.startswith("router.") and "alert:" in e.reason for e in audit.events(ws.db))
    print(f"planted failure -> kill switch on: {reverted_at - broke_at:.2f} s")


def test_manual_revert_needs_a_reason_and_unknown_names_are_refused(ws):
    with pytest.raises(UsageError, match="reason"):
        revert.revert(ws, "churn", reason=" ")
    from mlops_desktop.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no deployment"):
        targets.resolve(ws, "nothing")


def test_switches_through_the_routers_admin_api(ws, deployment):
    from mlops_desktop.monitoring import switches

    st = switches.state(ws, "churn")
    assert st["settings"]["weights"] == {"v1": 50, "v2": 50} and set(st["arms"]) == {"v1", "v2"}
    with pytest.raises(UsageError, match="reason"):
        switches.change(ws, "churn", actor="ana", reason=" ", weights={"v1": 1, "v2": 0})
    answer = switches.change(ws, "churn", actor="ana", reason="ramp down v2", weights={"v1": 80, "v2": 20})
    assert [e["kind"] for e in answer["changes"]] == ["router.weights"]
    st = switches.state(ws, "churn")
    assert st["settings"]["weights"] == {"v1": 80, "v2": 20}
    assert st["change_log"][-1]["actor"] == "ana" and st["change_log"][-1]["reason"] == "ramp down v2"
