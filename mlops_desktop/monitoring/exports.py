"""Exports for teams that run Prometheus and Grafana: a deployment's scrape config, its alert rules as Prometheus
rule YAML, and a Grafana dashboard (schemaVersion 39, the datasource as a `${datasource}` variable).

Every scraped target gets the labels `deployment`, `role`, `arm` (and `version` where the model server's own label
is missing), so the same PromQL works for a managed server, a local router's backends and a deployment's replicas.
Our series map to PromQL over the model servers' metrics (serving/metrics.py):
    requests_per_s   sum(rate(mlops_requests_total{<sel>, route=~PREDICT}[W]))
    error_rate       the 5xx share of the above
    pNN_latency      histogram_quantile(0.NN, sum by (le) (rate(mlops_request_duration_seconds_bucket{...}[W])))
    in_flight        sum(mlops_requests_in_flight{<sel>})
    targets_down     sum(1 - up{deployment=...})   (our `no_data`)
    drift.*          mlops_drift_*{deployment=...}  (the gauges `monitor run --metrics-port` exposes)
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring.rules import Condition, Rule, format_duration
from mlops_desktop.monitoring.targets import MonitoredDeployment

PREDICT_RE = "/invocations|/v2/models/\\\\{name\\\\}/infer"  # a PromQL string: \\{ is a literal brace in the regex
WINDOW = "1m"
QUANTILE_OF = {"p50_latency": 0.5, "p95_latency": 0.95, "p99_latency": 0.99}


def _job(deployment: str) -> str:
    return "mlops-" + re.sub(r"[^A-Za-z0-9_-]", "-", deployment)


def scrape_config(dep: MonitoredDeployment, *, interval_s: float = 15.0, exporter: str | None = None) -> dict[str, Any]:
    """`scrape_configs` entries (a dict ready for YAML) scraping every target with our labels, and the drift
    exporter (`monitor run --metrics-port`) at `exporter` (host:port) when given."""
    groups = []
    for t in dep.targets:
        labels = {"deployment": dep.name, "role": t.role}
        if t.arm:
            labels["arm"] = t.arm
        if t.version and t.role == "router":
            labels["version"] = t.version
        groups.append({"targets": [t.name], "labels": labels})
    interval = format_duration(interval_s)
    timeout = format_duration(min(interval_s, 10.0))
    jobs: list[dict[str, Any]] = [{"job_name": _job(dep.name), "scrape_interval": interval, "scrape_timeout": timeout,
             "metrics_path": "/metrics", "static_configs": groups}]
    if exporter:
        jobs.append({"job_name": _job(dep.name) + "-drift", "scrape_interval": interval, "scrape_timeout": timeout,
                     "metrics_path": "/metrics", "honor_labels": True,
                     "static_configs": [{"targets": [exporter], "labels": {"role": "monitor"}}]})
    return {"scrape_configs": jobs}


def _selector(deployment: str, cond_labels: dict[str, str], extra: str = "") -> str:
    parts = [f'deployment="{_esc(deployment)}"', 'role!="router"']
    for k, v in sorted(cond_labels.items()):
        if k == "target":
            parts.append(f'instance="{_esc(v)}"')
        elif k in ("arm", "version"):
            parts.append(f'{k}="{_esc(v)}"')
        else:
            raise UsageError(f"label {k!r} has no Prometheus equivalent", hint="use arm, version or target")
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


def promql(metric: str, deployment: str, labels: dict[str, str] | None = None, *, window: str = WINDOW,
           by: str = "") -> str:
    """The PromQL of one of our series for a deployment (`by`: an extra grouping label, e.g. arm)."""
    labels = labels or {}
    grouping = f" by ({by})" if by else ""
    le_by = f" by (le, {by})" if by else " by (le)"
    route = f'route=~"{PREDICT_RE}"'
    if metric == "requests_per_s":
        return f"sum{grouping} (rate(mlops_requests_total{_selector(deployment, labels, route)}[{window}]))"
    if metric == "error_rate":
        bad = f'{route},code=~"5.."'
        return (f"(sum{grouping} (rate(mlops_requests_total{_selector(deployment, labels, bad)}[{window}])) or "
                f"{promql('requests_per_s', deployment, labels, window=window, by=by)} * 0) / "
                f"{promql('requests_per_s', deployment, labels, window=window, by=by)}")
    if metric in QUANTILE_OF:
        return (f"histogram_quantile({QUANTILE_OF[metric]}, sum{le_by} (rate(mlops_request_duration_seconds_bucket"
                f"{_selector(deployment, labels, route)}[{window}])))")
    if metric == "in_flight":
        return f"sum{grouping} (mlops_requests_in_flight{_selector(deployment, labels)})"
    if metric == "targets_down":
        return f'sum(1 - up{{deployment="{_esc(deployment)}",role!="monitor"}})'
    if metric.startswith("drift."):
        what = metric.split(".", 1)[1]
        sel = [f'deployment="{_esc(deployment)}"'] + [f'{k}="{_esc(v)}"' for k, v in sorted(labels.items())]
        if what in ("any", "share", "dataset", "prediction"):
            return f"max{grouping} (mlops_drift_{what}{{{','.join(sel)}}})"
        sel.append('feature="' + _esc(what) + '"')
        return f"max{grouping} (mlops_drift_feature{{{','.join(sel)}}})"
    raise UsageError(f"the series {metric!r} has no Prometheus equivalent",
                     hint="requests_per_s, error_rate, p50/p95/p99_latency, in_flight, no_data, drift.*")


def rule_expr(cond: Condition, deployment: str) -> str:
    return f"{promql(cond.metric, deployment, cond.label_dict)} {cond.op} {cond.threshold:g}"


def rules_yaml(rules: list[Rule], deployment: str, *, interval_s: float = 15.0) -> str:
    """The rules that apply to `deployment` as a Prometheus rule file (`promtool check rules` accepts it)."""
    import yaml

    out = []
    for rule in rules:
        if not rule.applies_to(deployment) or not rule.enabled:
            continue
        doc: dict[str, Any] = {"alert": rule.name, "expr": rule_expr(rule.condition, deployment)}
        if rule.for_s:
            doc["for"] = format_duration(rule.for_s)
        if rule.keep_firing_for_s:
            doc["keep_firing_for"] = format_duration(rule.keep_firing_for_s)
        doc["labels"] = {"severity": rule.severity, "deployment": deployment} | rule.labels
        doc["annotations"] = {"summary": rule.summary or f"{rule.expr} on {deployment}",
                              "mlops_expr": rule.expr, "mlops_action": rule.action}
        out.append(doc)
    text: str = yaml.safe_dump({"groups": [{"name": _job(deployment), "interval": format_duration(interval_s),
                                            "rules": out}]}, sort_keys=False, width=1000)
    return text


def _panel(pid: int, title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int,
           w: int = 12, h: int = 8) -> dict[str, Any]:
    return {"id": pid, "type": "timeseries", "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit, "custom": {"drawStyle": "line", "lineWidth": 1,
                                                                  "spanNulls": False}}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
            "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                        for i, (expr, legend) in enumerate(targets)]}


def grafana_dashboard(dep: MonitoredDeployment) -> dict[str, Any]:
    """A dashboard for one deployment: rate, errors, latency quantiles (histogram_quantile), in-flight, targets
    up, drift. Import it in Grafana and pick the Prometheus datasource."""
    d = "$deployment"
    w = "$__rate_interval"
    panels = [
        _panel(1, "Requests per second by arm", [(promql("requests_per_s", d, window=w, by="arm"), "{{arm}}")],
               "reqps", 0, 0),
        _panel(2, "Error rate (5xx share) by arm", [(promql("error_rate", d, window=w, by="arm"), "{{arm}}")],
               "percentunit", 12, 0),
        _panel(3, "Latency quantiles", [(promql(m, d, window=w), m.split("_")[0]) for m in QUANTILE_OF],
               "s", 0, 8),
        _panel(4, "p99 latency by arm", [(promql("p99_latency", d, window=w, by="arm"), "{{arm}}")], "s", 12, 8),
        _panel(5, "Requests in flight", [(promql("in_flight", d, by="arm"), "{{arm}}")], "short", 0, 16, 8),
        _panel(6, "Targets down", [(promql("targets_down", d), "down")], "short", 8, 16, 8),
        _panel(7, "Drift (largest feature score, share of drifted features)",
               [(promql("drift.any", d, by="version"), "any v{{version}}"),
                (promql("drift.share", d, by="version"), "share v{{version}}")], "short", 16, 16, 8),
    ]
    return {
        "uid": _job(dep.name)[:40], "title": f"MLOps Desktop: {dep.name}", "schemaVersion": 39, "version": 1,
        "editable": True, "tags": ["mlops-desktop", "serving"], "timezone": "browser", "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"}, "graphTooltip": 1,
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "options": []},
            {"name": "deployment", "label": "Deployment", "type": "constant", "query": dep.name, "hide": 2,
             "current": {"text": dep.name, "value": dep.name}, "options": []},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def dashboard_queries(dashboard: dict[str, Any], deployment: str, window: str = "1m") -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target, variables substituted as Grafana would."""
    out = []
    for p in dashboard["panels"]:
        for t in p["targets"]:
            out.append((p["title"], t["expr"].replace("$__rate_interval", window).replace("$deployment",
                                                                                          deployment)))
    return out


def write_json(path: str, doc: dict[str, Any]) -> None:
    from pathlib import Path

    Path(path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
