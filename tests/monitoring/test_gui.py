"""The Monitoring area with real widgets (offscreen): stored series drawn per arm with spikes kept, "Watch live" on
a real router and servers redrawing within a second of each scrape, the revert with a confirmation naming the
version, the drift table with sparklines and an overlay, and alerts acknowledged and silenced from the table."""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from router_factories import body  # noqa: E402

from mlops_desktop.monitoring.alerts import AlertStore  # noqa: E402
from mlops_desktop.monitoring.drift import compute_drift  # noqa: E402
from mlops_desktop.monitoring.engine import Evaluator  # noqa: E402
from mlops_desktop.monitoring.live_drift import LiveDrift, VersionDrift, overlay  # noqa: E402
from mlops_desktop.monitoring.rules import Rule  # noqa: E402
from mlops_desktop.monitoring.series import Point, SeriesStore, label_key  # noqa: E402
from mlops_desktop.monitoring.sketch import build_sketch  # noqa: E402
from mlops_desktop.serving import router_manager  # noqa: E402


def _idle(qtbot, ctx, timeout=20_000):
    qtbot.waitUntil(lambda: not ctx.tasks.running(), timeout=timeout)


@pytest.fixture
def view(ctx, qtbot):
    from mlops_desktop.gui.views.monitoring_view import MonitoringView

    v = MonitoringView(ctx)
    qtbot.addWidget(v)
    v.resize(1400, 900)
    v.show()
    yield v
    v._stop_monitor()
    _idle(qtbot, ctx)


def test_stored_series_are_drawn_per_arm_and_a_spike_survives(ws, ctx, qtbot, view):
    now = time.time()
    n = 20_000
    ts = now - 600 + np.arange(n) * 0.03
    rps = np.full(n, 50.0)
    rps[12_345] = 5000.0  # one spike among 20,000 points
    store = SeriesStore(ws.db)
    for arm, scale in (("v1", 1.0), ("v2", 0.2)):
        store.append("churn", [Point("requests_per_s", label_key({"arm": arm, "version": arm[1:]}), float(t),
                                     float(v * scale)) for t, v in zip(ts, rps, strict=True)])
    store.append("churn", [Point("p99_latency", label_key({}), float(t), 0.01) for t in ts[::50]])
    view.refresh()
    _idle(qtbot, ctx)
    assert view.picker.currentText() == "churn"
    qtbot.waitUntil(lambda: any(k[1] == "requests_per_s" for k in view.live.curves), timeout=10_000)
    curves = {k: c for k, c in view.live.curves.items() if k[0] == "requests"}
    assert len(curves) == 2
    for curve in curves.values():
        x, y = curve.getData()
        assert len(x) < n and np.nanmax(y) in (5000.0, 1000.0)  # downsampled, the spike kept
    assert "stable" in view.info.text()


def test_watch_live_redraws_within_a_second_and_reverts_with_confirmation(ws, ctx, qtbot, view, deployment,
                                                                         monkeypatch):
    router, _bad = deployment
    view.refresh()
    _idle(qtbot, ctx)
    view.picker.setCurrentText("churn")
    _idle(qtbot, ctx)
    view.live_button.setChecked(True)
    qtbot.waitUntil(lambda: view.monitor is not None, timeout=20_000)
    ring = view.monitor.collector.ring
    lags = []
    with requests.Session() as s:
        for _ in range(6):
            for _ in range(20):
                s.post(router.url + "/invocations", json=body(0.3), timeout=5)
            seen = ring.version
            qtbot.waitUntil(lambda seen=seen: ring.version > seen, timeout=10_000)
            last = ring.last("requests_per_s") or ring.last("targets")
            assert last is not None
            qtbot.waitUntil(lambda last=last: view.live.last_drawn_ts >= last[0], timeout=5_000)
            lags.append(view.live.drawn_at - last[0])
    assert max(lags) <= 1.0, lags
    asked = []

    def answer(parent, title, text, *args, **kwargs):
        asked.append(text)
        return "v2 misbehaves", True

    monkeypatch.setattr("mlops_desktop.gui.views.monitoring_view.QInputDialog.getText", answer)
    view._ask_revert()
    qtbot.waitUntil(lambda: router_manager.client(ws, "churn").state()["settings"]["kill_switch"], timeout=20_000)
    assert "Revert churn to version 1?" in asked[0] and "arm v1" in asked[0]
    view.live_button.setChecked(False)
    _idle(qtbot, ctx)
    assert view.monitor is None


def test_drift_table_sparklines_and_overlay(ctx, qtbot, view):
    rng = np.random.default_rng(3)
    ref = pl.DataFrame({"tenure": rng.normal(20, 8, 5000), "plan": rng.choice(["basic", "pro"], 5000)})
    cur = pl.DataFrame({"tenure": rng.normal(35, 8, 800), "plan": rng.choice(["basic", "pro"], 800)})
    sketch = build_sketch(ref)
    report = LiveDrift("churn", 3600, 0, 1, [VersionDrift("1", 800, compute_drift(sketch, cur), None, "", "lake:x@1")])
    result = {"report": report, "timelines": {"1": {"tenure": [0.01, 0.02, 0.5, 0.9], "plan": [0.0] * 4}},
              "overlays": {"1": {"tenure": overlay(sketch.columns["tenure"], cur["tenure"]),
                                 "plan": overlay(sketch.columns["plan"], cur["plan"])}}}
    view.drift.set_result(result)
    m = view.drift.model
    assert m.rowCount() == 2 and m.index(0, 6).data() == "DRIFT" and m.index(1, 6).data() == "ok"
    assert m.index(0, 0).data() == "1" and m.index(0, 1).data() == "tenure"
    assert m.index(0, 7).data() == "▁▁▅█"
    assert "DATASET DRIFT" in view.drift.summary.text() or "tenure" in view.drift.summary.text()
    assert len(view.drift.plot.getPlotItem().listDataItems()) == 2
    view.drift.table.selectRow(1)
    assert view.drift.plot.getPlotItem().titleLabel.text.startswith("plan")


def test_alerts_acknowledged_and_silenced_from_the_table(ws, ctx, qtbot, view, monkeypatch):
    AlertStore(ws).add_rule(Rule("errors", "error_rate > 0.05"))
    Evaluator(ws, "churn").evaluate({("error_rate", label_key({})): 0.5})
    SeriesStore(ws.db).append("churn", [Point("error_rate", label_key({}), time.time(), 0.5)])
    view.refresh()
    _idle(qtbot, ctx)
    view.show_item(tab="alerts", deployment="churn")
    _idle(qtbot, ctx)
    assert view.alerts.model.rowCount() == 1 and "1 firing" in view.alerts.status.text()
    view.alerts.table.selectRow(0)
    monkeypatch.setattr("mlops_desktop.gui.views.monitoring_view.QInputDialog.getText",
                        lambda *a, **k: ("on it", True))
    view._ack()
    _idle(qtbot, ctx)
    assert view.alerts.model.index(0, 6).data() == f"{AlertStore(ws).alerts()[0].acked_by}: on it"
    view.alerts.table.selectRow(0)
    view._silence()
    _idle(qtbot, ctx)
    assert "(silenced)" in view.alerts.model.index(0, 2).data()


def test_switches_tab_changes_weights_and_kill_switch_live(ws, ctx, qtbot, view, deployment):
    from mlops_desktop import audit

    view.refresh()
    _idle(qtbot, ctx)
    view.show_item(tab="switches", deployment="churn")
    qtbot.waitUntil(lambda: view.switches.isEnabled() and bool(view.switches.weights), timeout=20_000)
    assert set(view.switches.weights) == {"v1", "v2"} and view.switches.weights["v1"].value() == 50
    assert view.switches.wanted() == {}
    view.switches.weights["v1"].setValue(90)
    view.switches.weights["v2"].setValue(10)
    view.switches.kill.setChecked(True)
    view.switches.reason.setText("v2 looks slow")
    view._apply_switches()
    _idle(qtbot, ctx)
    settings = router_manager.client(ws, "churn").state()["settings"]
    assert settings["weights"] == {"v1": 90, "v2": 10} and settings["kill_switch"] is True
    qtbot.waitUntil(lambda: view.switches.changes.rowCount() >= 2, timeout=10_000)
    assert view.switches.changes.index(0, 6).data() == "v2 looks slow"
    kinds = [e.kind for e in audit.events(ws.db) if e.subject == "router:churn"]
    assert "router.weights" in kinds and "router.kill_switch" in kinds
