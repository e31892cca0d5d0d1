"""Prometheus from Debian really works: scrapes a target on loopback, answers PromQL, evaluates rules; promtool checks."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from engines.common import wait_until
from engines.prometheus import scrape_config

pytestmark = pytest.mark.prometheus


class Metrics:
    """A /metrics endpoint in the text exposition format, with a counter the test moves."""

    def __init__(self) -> None:
        self.requests = 0
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = ("# HELP app_requests_total Requests served.\n# TYPE app_requests_total counter\n"
                        f'app_requests_total{{arm="a"}} {metrics.requests}\n'
                        "# HELP app_latency_seconds Latency.\n# TYPE app_latency_seconds histogram\n"
                        'app_latency_seconds_bucket{le="0.1"} 90\napp_latency_seconds_bucket{le="0.5"} 99\n'
                        'app_latency_seconds_bucket{le="+Inf"} 100\napp_latency_seconds_sum 7.5\n'
                        "app_latency_seconds_count 100\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def app_metrics():
    m = Metrics()
    yield m
    m.close()


def test_scrapes_a_target_and_answers_promql(prometheus, app_metrics):
    app_metrics.requests = 41
    prom = prometheus([scrape_config("app", [app_metrics.target], interval=0.5)])
    prom.wait_target_up("app")
    result = wait_until(lambda: prom.query('app_requests_total{job="app",arm="a"}'), 20, "the counter in Prometheus")
    assert float(result[0]["value"][1]) == 41
    app_metrics.requests = 42
    wait_until(lambda: float(prom.query("app_requests_total")[0]["value"][1]) == 42, 20, "the next scrape")
    p99 = prom.query('histogram_quantile(0.99, sum by (le) (app_latency_seconds_bucket{job="app"}))')
    assert 0.1 < float(p99[0]["value"][1]) <= 0.5
    with pytest.raises(RuntimeError, match="bad_data"):
        prom.query("sum(")  # a PromQL error comes back as Prometheus's own error


def test_a_target_that_stops_answering_is_down(prometheus, app_metrics):
    prom = prometheus([scrape_config("app", [app_metrics.target], interval=0.5)])
    prom.wait_target_up("app")
    app_metrics.close()
    wait_until(lambda: prom.query('up{job="app"}')[0]["value"][1] == "0", 20, "up to turn 0")


def test_alerting_rule_fires_in_prometheus(prometheus, app_metrics, tmp_path, promtool):
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: app\n  rules:\n  - alert: TooManyRequests\n"
                     "    expr: app_requests_total > 10\n    for: 0s\n    labels: {severity: page}\n")
    assert promtool("check", "rules", str(rules)).returncode == 0
    app_metrics.requests = 11
    prom = prometheus([scrape_config("app", [app_metrics.target], interval=0.5)], rule_files=[rules],
                      evaluation_interval=0.5)
    alerts = wait_until(lambda: [a for a in prom.api("alerts")["alerts"] if a["state"] == "firing"], 30,
                        "the alert to fire")
    assert alerts[0]["labels"]["alertname"] == "TooManyRequests" and alerts[0]["labels"]["severity"] == "page"


def test_promtool_checks_rule_files(promtool, tmp_path):
    good = tmp_path / "good.yml"
    good.write_text("groups:\n- name: g\n  rules:\n  - record: job:app_requests:rate1m\n"
                    "    expr: sum by (job) (rate(app_requests_total[1m]))\n")
    ok = promtool("check", "rules", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SUCCESS: 1 rules found" in ok.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: Broken\n    expr: rate(app_requests_total[1m]\n")
    out = promtool("check", "rules", str(bad))
    assert out.returncode != 0
    assert "bad.yml" in out.stdout + out.stderr and "parse error" in (out.stdout + out.stderr)
