"""The Models area's "Serve locally" panel against real managed server processes: start, live request rate and
latency from /metrics, restart with another version on the same port, stop; a killed server shows as lost; a
server that cannot start says why. Also the metrics arithmetic on real /metrics text."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest
from gui_helpers import wait_idle
from models_helpers import demo_copy

from mlops_desktop.gui.views import models_data as data
from mlops_desktop.progress import Progress
from mlops_desktop.workspace import Workspace


@pytest.fixture
def ws(tmp_path, request):
    workspace = Workspace.open(demo_copy(request, tmp_path))
    yield workspace
    from mlops_desktop.serving import manager

    for server in manager.list_servers(workspace):   # never leave a server process behind
        if server.state in ("running", "starting"):
            manager.stop(workspace, server.name, timeout=20)
    workspace.close()


@pytest.fixture
def view(ctx, qtbot):
    from mlops_desktop.gui.views.models_view import ModelsView

    widget = ModelsView(ctx)
    qtbot.addWidget(widget)
    widget.resize(1400, 900)
    widget.show()
    wait_idle(qtbot, ctx)
    return widget


def open_serve(view, qtbot, ctx, name: str, version: int) -> None:
    view.show_item(model=name, version=version, tab="serve")
    qtbot.waitUntil(lambda: view.page is not None and view.page.model.name == name
                    and view.current_version() == version, timeout=10_000)
    wait_idle(qtbot, ctx)


def predict(url: str, rows: int = 3) -> dict:
    body = json.dumps({"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                                           "data": [[5.1, 3.5, 1.4, 0.2]] * rows}}).encode()
    req = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_start_watch_restart_and_stop_a_local_server(view, qtbot, ctx, ws):
    panel = view.serve_panel
    open_serve(view, qtbot, ctx, "iris-classifier", 2)
    assert "No local server" in panel.state.text()
    assert panel.start_button.text() == "Start v2" and panel.start_button.isEnabled()
    assert not panel.stop_button.isEnabled()
    panel.start_button.click()
    assert not panel.start_button.isEnabled()   # busy while the worker starts it
    qtbot.waitUntil(lambda: panel.server is not None and panel.server.state == "running", timeout=90_000)
    server = panel.server
    assert server.host == "127.0.0.1" and server.port > 0 and server.version == "2"
    assert server.url in panel.state.text() and "running" in panel.state.text()
    assert panel.stop_button.isEnabled() and panel.restart_button.text() == "Restart with v2"
    assert predict(server.url)["predictions"] == ["setosa"] * 3

    # live figures: requests sent between two scrapes show as a rate and a latency
    panel.tick()
    qtbot.waitUntil(lambda: len(panel.samples) == 1, timeout=10_000)
    for _ in range(20):
        predict(server.url)
    panel.tick()
    qtbot.waitUntil(lambda: len(panel.history) >= 1, timeout=10_000)
    rates = panel.history[-1]
    assert rates.requests_per_s > 0 and rates.p50_s is not None and rates.p50_s < 5
    assert panel.rate_value.text() != "–" and panel.p50_value.text().endswith("ms")
    qtbot.waitUntil(lambda: "starting iris-classifier/2" in panel.log.toPlainText(), timeout=10_000)

    # restart with another version: same port, the new version answers
    view.show_item(model="iris-classifier", version=3)
    qtbot.waitUntil(lambda: view.current_version() == 3, timeout=10_000)
    assert panel.restart_button.text() == "Restart with v3"
    panel.restart_button.click()
    qtbot.waitUntil(lambda: panel.server is not None and panel.server.version == "3" and not panel.busy,
                    timeout=90_000)
    assert panel.server.port == server.port and panel.server.pid != server.pid
    with urllib.request.urlopen(f"{panel.server.url}/version", timeout=10) as resp:
        assert json.loads(resp.read())["version"] == "3"

    panel.stop_button.click()
    qtbot.waitUntil(lambda: panel.server is not None and panel.server.state == "stopped" and not panel.busy,
                    timeout=60_000)
    assert "stopped" in panel.state.text() and panel.start_button.isEnabled()
    with pytest.raises(OSError):
        predict(server.url)


def test_a_killed_server_shows_as_lost(view, qtbot, ctx, ws):
    from mlops_desktop.serving import manager

    started = manager.start(ws, "iris-classifier@production", port=0)
    panel = view.serve_panel
    open_serve(view, qtbot, ctx, "iris-classifier", 2)
    qtbot.waitUntil(lambda: panel.server is not None and panel.server.state == "running", timeout=10_000)
    os.killpg(started.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: panel.server is not None and panel.server.state == "lost", timeout=20_000)
    assert "lost" in panel.state.text() and "gone without shutting down" in panel.state.text()
    assert panel.start_button.isEnabled()


def test_a_server_that_cannot_start_says_why(view, qtbot, ctx, ws):
    from mlops_desktop import registry

    mv = registry.store(ws).get_version("iris-classifier", 4)
    target = registry.bundle_dir(ws, mv) / "model" / "model.skops"
    target.chmod(0o644)
    target.write_bytes(b"not the model")
    panel = view.serve_panel
    open_serve(view, qtbot, ctx, "iris-classifier", 4)
    panel.start_button.click()
    qtbot.waitUntil(lambda: not panel.busy, timeout=90_000)
    text = panel.message.text()
    assert "exited" in text or "not ready" in text, text
    assert "Traceback" not in text
    assert panel.server is None or panel.server.state != "running"


def test_metrics_of_a_real_server_give_rate_and_latency(ws):
    from mlops_desktop.serving import manager

    server = manager.start(ws, "iris-classifier/1", port=0)
    first = data.scrape(server.url, progress=Progress())
    for _ in range(10):
        predict(server.url, rows=2)
    bad = urllib.request.Request(f"{server.url}/invocations", data=b"{not json",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(bad, timeout=10)
    second = data.scrape(server.url, progress=Progress())
    assert second.requests - first.requests == 11 and second.errors - first.errors == 1
    assert second.latency_count - first.latency_count == 11
    rates = data.rates(first, second)
    assert rates.requests_per_s > 0 and rates.errors_per_s > 0
    assert rates.p50_s is not None and rates.p95_s is not None and 0 < rates.p50_s <= rates.p95_s < 5
    manager.stop(ws, server.name)
    with pytest.raises(Exception, match="cannot read"):
        data.scrape(server.url, progress=Progress())


def test_quantile_and_counter_reset():
    buckets = {0.001: 0.0, 0.005: 50.0, 0.01: 90.0, 0.1: 100.0, float("inf"): 100.0}
    assert data.quantile(buckets, 0.5) == pytest.approx(0.005)
    assert data.quantile(buckets, 0.95) == pytest.approx(0.01 + 0.09 * 0.5)
    assert data.quantile({}, 0.5) is None and data.quantile({1.0: 0.0}, 0.5) is None
    before = data.MetricsSample(at=10.0, requests=500.0)
    after = data.MetricsSample(at=12.0, requests=20.0)   # the server restarted in between
    assert data.rates(before, after).requests_per_s == pytest.approx(10.0)


def test_a_start_can_be_cancelled(view, qtbot, ctx, ws):
    from mlops_desktop.procs import pid_alive
    from mlops_desktop.serving import manager

    panel = view.serve_panel
    open_serve(view, qtbot, ctx, "iris-classifier", 1)
    panel.start_button.click()
    assert panel.stop_button.text() == "Cancel start" and panel.stop_button.isEnabled()
    panel.stop_button.click()
    assert not panel.stop_button.isEnabled()      # one cancel at a time
    qtbot.waitUntil(lambda: not panel.busy, timeout=90_000)
    assert panel.message.text().startswith("start cancelled")
    record = manager.get(ws, "iris-classifier")
    assert record.state != "running"
    qtbot.waitUntil(lambda: record.pid is None or not pid_alive(record.pid), timeout=20_000)
    assert panel.stop_button.text() == "Stop" and panel.start_button.isEnabled()
