"""Exports validated by the real tools: `promtool check rules` on the rule YAML; a real Prometheus scraping a real
model server on loopback (and the drift exporter) with the exported scrape config, answering every PromQL query of
the exported Grafana dashboard and firing an exported rule; the dashboard JSON's structure."""

from __future__ import annotations

import json
import math
import time

import pytest
import requests
import yaml
from router_factories import ThresholdClassifier, body
from serving_helpers import running

from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring import exporter, exports
from mlops_desktop.monitoring.rules import Rule
from mlops_desktop.monitoring.series import Point, SeriesStore, label_key
from mlops_desktop.monitoring.targets import MonitoredDeployment, ScrapeTarget
from mlops_desktop.serving.app import ServedModel

RULES = [Rule("slow", "p99_latency > 0.5 for 1m keep_firing_for 2m", severity="critical", labels={"team": "ml"}),
         Rule("v2-errors", 'error_rate{arm="v2"} > 0.01', action="revert"),
         Rule("silent", "no_data for 2m"),
         Rule("drifting", "drift.any > 0.2 for 10m"),
         Rule("tenure", "drift.tenure >= 0.1"),
         Rule("busy", "in_flight > 100"),
         Rule("elsewhere", "error_rate > 0.5", deployment="other")]


def test_rule_yaml_passes_promtool(tmp_path, promtool):
    text = exports.rules_yaml(RULES, "churn", interval_s=10)
    path = tmp_path / "rules.yml"
    path.write_text(text)
    proc = promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout
    doc = yaml.safe_load(text)
    slow = doc["groups"][0]["rules"][0]
    assert slow["for"] == "1m" and slow["keep_firing_for"] == "2m"
    assert slow["labels"] == {"severity": "critical", "deployment": "churn", "team": "ml"}
    assert "histogram_quantile(0.99" in slow["expr"]
    with pytest.raises(UsageError, match="no Prometheus equivalent"):
        exports.promql("nonsense", "churn")


def test_dashboard_structure():
    dep = MonitoredDeployment("churn", "server", [ScrapeTarget("http://127.0.0.1:1", "server", "1", "1")])
    dash = exports.grafana_dashboard(dep)
    assert dash["schemaVersion"] >= 39
    var = {v["name"]: v for v in dash["templating"]["list"]}
    assert var["datasource"]["type"] == "datasource" and var["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for needle in ("rate(mlops_requests_total", 'code=~"5.."', "histogram_quantile(", "mlops_drift_any"):
        assert needle in exprs
    for p in dash["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"])
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    json.dumps(dash)


def test_prometheus_scrapes_our_server_and_answers_the_dashboard(ws, tmp_path, prometheus):
    store = SeriesStore(ws.db)
    store.append("churn", [Point("drift.any", label_key({"version": "1"}), time.time(), 0.31),
                           Point("drift.share", label_key({"version": "1"}), time.time(), 0.5),
                           Point("drift.tenure", label_key({"version": "1"}), time.time(), 0.31)])
    http, port = exporter.serve(store, ["churn"], 0)
    try:
        with running(ServedModel("churn", "1", ThresholdClassifier())) as srv:
            dep = MonitoredDeployment("churn", "server", [ScrapeTarget(srv.url, "server", "1", "1", "churn")],
                                      model="churn")
            config = exports.scrape_config(dep, interval_s=1, exporter=f"127.0.0.1:{port}")
            rules = tmp_path / "rules.yml"
            rules.write_text(exports.rules_yaml([Rule("traffic", "requests_per_s > 1"),
                                                 Rule("drifting", "drift.any > 0.2")], "churn", interval_s=1))
            prom = prometheus(config["scrape_configs"], rule_files=[rules])
            prom.wait_target_up("mlops-churn")
            prom.wait_target_up("mlops-churn-drift")
            deadline = time.monotonic() + 8
            with requests.Session() as s:
                while time.monotonic() < deadline:
                    assert s.post(srv.url + "/invocations", json=body(0.3, 0.7), timeout=5).status_code == 200
                    time.sleep(0.01)
            queries = exports.dashboard_queries(exports.grafana_dashboard(dep), "churn", window="30s")
            answers = {}
            for title, q in queries:
                result = prom.query(q)
                assert result, f"{title}: {q} returned nothing"
                answers[q] = float(result[0]["value"][1])
            rate = answers[exports.promql("requests_per_s", "churn", window="30s", by="arm")]
            assert rate > 1
            assert answers[exports.promql("error_rate", "churn", window="30s", by="arm")] == 0
            p99 = answers[exports.promql("p99_latency", "churn", window="30s")]
            assert 0 < p99 < 1 and not math.isnan(p99)
            assert answers[exports.promql("drift.any", "churn", by="version")] == pytest.approx(0.31)
            assert answers[exports.promql("targets_down", "churn")] == 0

            def firing() -> set[str]:
                return {r["metric"]["alertname"] for r in prom.query('ALERTS{alertstate="firing"}')}

            deadline = time.monotonic() + 20
            while firing() != {"traffic", "drifting"}:
                assert time.monotonic() < deadline, prom.query("ALERTS")
                time.sleep(0.5)
    finally:
        http.shutdown()
        http.server_close()
