"""`monitor` and `alerts`: watch a deployment (live series, drift, arms), export to Prometheus/Grafana, switch back
to the stable version; alert rules, silences and acknowledgements."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.errors import UsageError

MONITOR_HELP = """watch a deployment: live serving series, drift against the training data, A/B arms

  monitor status D [--sample 1]           targets up/down, requests/s, errors, p50/p95/p99 per arm, open alerts
  monitor run D [--interval 2] [--duration S] [--project DIR] [--webhook URL] [--metrics-port P] [--no-revert]
                                          collect every interval, evaluate the alert rules, revert when one says so
  monitor drift D [--window 1h] [--method COL=psi] [--threshold COL=0.2] [--project DIR]
  monitor compare-arms D [--window 1h] [--outcomes DATASET] [--outcome-column C]
  monitor series D                        the stored series and their last values
  monitor export D [--grafana OUT.json] [--prometheus-rules OUT.yml] [--scrape-config OUT.yml]
  monitor revert D --reason WHY           back to the stable version now (a router's kill switch, the deploy
                                          service's last stable revision, a server's previous version)
D is a deployment, a managed local router (`router start`) or a managed local server (`serve --detach`).
"""
ALERTS_HELP = """alert rules, alerts, silences and acknowledgements

  alerts list [--deployment D] [--all]   firing and pending alerts (--all: resolved too)
  alerts rules                           the rules
  alerts add NAME --expr 'p99_latency > 0.5' [--for 1m] [--keep-firing-for 2m] [--severity critical]
             [--deployment GLOB] [--action revert] [--label k=v] [--summary TEXT]
  alerts remove NAME
  alerts load PROJECT                    the [[monitoring.rules]] of a project's mlops.toml
  alerts silence [--deployment GLOB] [--rule GLOB] --for 1h --comment WHY
  alerts ack ID [--note TEXT]
Expressions: SERIES[{arm="v2"}] OP NUMBER, or no_data; series: requests_per_s, error_rate, p50_latency,
p95_latency, p99_latency, in_flight, targets_down, drift.any, drift.share, drift.<feature>.
"""
MONITOR_ACTIONS = ("status", "run", "drift", "compare-arms", "series", "export", "revert")
ALERT_ACTIONS = ("list", "rules", "add", "remove", "load", "silence", "ack")


def register(sub: Any) -> None:
    p = command(sub, "monitor", run_monitor, "watch a deployment: serving series, drift, A/B arms, exports, revert",
                epilog=MONITOR_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=MONITOR_ACTIONS, help="what to do")
    p.add_argument("deployment", metavar="DEPLOYMENT", help="deployment, managed router or managed server name")
    p.add_argument("--window", default="1h", help="drift/compare-arms: how far back (default 1h)")
    p.add_argument("--method", action="append", default=[], metavar="COL=METHOD",
                   help="drift: a feature's method (ks, chisquare, z, wasserstein, jensenshannon, psi; * for all)")
    p.add_argument("--threshold", action="append", default=[], metavar="COL=VALUE",
                   help="drift: a feature's threshold (* for all)")
    p.add_argument("--project", metavar="DIR", help="a project whose mlops.toml has [monitoring] settings")
    p.add_argument("--outcomes", metavar="DATASET", help="compare-arms: a lake dataset with request_id + outcome")
    p.add_argument("--outcome-column", default="outcome", help="compare-arms: the outcome column (default outcome)")
    p.add_argument("--interval", type=float, default=2.0, help="run: seconds between scrapes (default 2)")
    p.add_argument("--duration", type=float, help="run: stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--webhook", metavar="URL", help="run: POST alert notifications here (Alertmanager's shape)")
    p.add_argument("--metrics-port", type=int, metavar="P", help="run: expose drift gauges on 127.0.0.1:P")
    p.add_argument("--drift-every", type=float, default=60.0, help="run: seconds between drift checks (0: off)")
    p.add_argument("--no-revert", action="store_true", help="run: never revert automatically")
    p.add_argument("--sample", type=float, default=1.0, help="status: seconds between the two scrapes (default 1)")
    p.add_argument("--grafana", metavar="OUT.json", help="export: the Grafana dashboard")
    p.add_argument("--prometheus-rules", metavar="OUT.yml", help="export: the alert rules as Prometheus rules")
    p.add_argument("--scrape-config", metavar="OUT.yml", help="export: the Prometheus scrape config")
    p.add_argument("--scrape-interval", type=float, default=15.0, help="export: scrape interval (default 15 s)")
    p.add_argument("--exporter", metavar="HOST:PORT", help="export: where `monitor run --metrics-port` listens")
    p.add_argument("--reason", help="revert: why")

    a = command(sub, "alerts", run_alerts, "alert rules, alerts, silences, acknowledgements", epilog=ALERTS_HELP,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("action", choices=ALERT_ACTIONS, help="what to do")
    a.add_argument("target", nargs="?", metavar="NAME|ID|PROJECT", help="rule name, alert id or project folder")
    a.add_argument("--expr", help="add: the condition, e.g. 'error_rate > 0.01 for 1m'")
    a.add_argument("--for", dest="for_", default="0s", help="add: how long it must hold before firing")
    a.add_argument("--keep-firing-for", default="0s", help="add: how long it keeps firing after it stops holding")
    a.add_argument("--severity", default="warning", help="add: info, warning or critical")
    a.add_argument("--deployment", default=None, help="add/silence/list: deployment (a glob; default all)")
    a.add_argument("--rule", default="*", help="silence: rule name glob (default all)")
    a.add_argument("--action", dest="rule_action", default="none", choices=("none", "revert"),
                   help="add: revert to the stable version when it fires")
    a.add_argument("--label", action="append", default=[], metavar="K=V", help="add: a label (repeatable)")
    a.add_argument("--summary", default="", help="add: a line for notifications")
    a.add_argument("--duration", dest="silence_for", default=None, metavar="DURATION",
                   help="silence: how long (e.g. 30m); also --for")
    a.add_argument("--comment", default="", help="silence: why")
    a.add_argument("--note", default="", help="ack: what you are doing about it")
    a.add_argument("--all", action="store_true", help="list: resolved alerts too")


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def clean(obj: Any) -> Any:
    """NaN/inf -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj


def _emit(doc: Any) -> None:
    from mlops_desktop.cli.output import emit_json

    emit_json(clean(doc))


def _pairs(items: list[str], what: str, number: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise UsageError(f"{what} {item!r} is not COLUMN=VALUE")
        if number:
            try:
                out[key] = float(value)
            except ValueError:
                raise UsageError(f"{what} {item!r}: {value!r} is not a number") from None
        else:
            out[key] = value
    return out


def run_monitor(args: argparse.Namespace) -> int:
    from mlops_desktop.monitoring.rules import parse_duration

    ws = open_workspace(args)
    try:
        action, name = args.action, args.deployment
        if action == "status":
            return _status(args, ws, name)
        if action == "run":
            return _run(args, ws, name)
        if action == "drift":
            from mlops_desktop.monitoring import live_drift

            methods, thresholds, window = live_drift.drift_settings(args.project)
            methods |= _pairs(args.method, "--method", False)
            thresholds |= _pairs(args.threshold, "--threshold", True)
            seconds = parse_duration(args.window, "--window") if args.window != "1h" or window is None else window
            report = live_drift.deployment_drift(ws, name, window_s=seconds, methods=methods, thresholds=thresholds)
            return _drift_out(args, report)
        if action == "compare-arms":
            from mlops_desktop.monitoring.arms import compare_arms

            rep = compare_arms(ws, name, window_s=parse_duration(args.window, "--window"), outcomes=args.outcomes,
                               outcome_column=args.outcome_column)
            return _arms_out(args, rep)
        if action == "series":
            from mlops_desktop.monitoring.series import SeriesStore

            infos = SeriesStore(ws.db).list_series(name)
            if _json(args):
                _emit([i.to_dict() for i in infos])
                return 0
            from mlops_desktop.cli.output import fmt_time, table

            table(["series", "labels", "last", "at"],
                  [[i.name, ",".join(f"{k}={v}" for k, v in i.labels.items()), i.last_value, fmt_time(i.last_ts)]
                   for i in infos], max_width=60)
            return 0
        if action == "export":
            return _export(args, ws, name)
        if not args.reason:
            raise UsageError("`monitor revert` needs --reason: every switch back records why")
        from mlops_desktop.monitoring.revert import revert

        done = revert(ws, name, reason=args.reason)
        if _json(args):
            _emit(done)
        else:
            print(f"{name}: back on version {done.get('to')} ({done.get('how', done.get('kind'))}, "
                  f"{done.get('seconds')} s)")
        return 0
    finally:
        ws.close()


def _status(args: argparse.Namespace, ws: Any, name: str) -> int:
    from mlops_desktop.monitoring import targets
    from mlops_desktop.monitoring.alerts import AlertStore
    from mlops_desktop.monitoring.collector import Collector

    dep = targets.resolve(ws, name)
    col = Collector(None, name, lambda: dep.targets, host_interval_s=0, store=None)
    try:
        col.tick()
        time.sleep(max(args.sample, 0.1))
        tick = col.tick()
    finally:
        col.stop()
    rows: list[dict[str, Any]] = []
    seen = sorted({p.labels for p in tick.points if p.name == "requests_per_s"})
    import json as _j

    for key in seen:
        labels = _j.loads(key)
        if "target" in labels:
            continue
        row = {"arm": labels.get("arm", "(all)"), "version": labels.get("version", "")}
        for metric in ("requests_per_s", "error_rate", "p50_latency", "p95_latency", "p99_latency"):
            row[metric] = tick.value(metric, labels)
        rows.append(row)
    alerts = AlertStore(ws).alerts(deployment=name, states=("pending", "firing"))
    doc = {"deployment": dep.to_dict(), "down": tick.down, "arms": rows, "alerts": [a.to_dict() for a in alerts]}
    if _json(args):
        _emit(doc)
        return 0
    from mlops_desktop.cli.output import table

    up = len(dep.targets) - len(tick.down)
    print(f"{name} ({dep.kind}, model {dep.model or '?'}, stable {dep.stable or '?'}): {up}/{len(dep.targets)} "
          f"targets answering" + (f"; not answering: {', '.join(tick.down)}" if tick.down else ""))
    table(["arm", "version", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms"],
          [[r["arm"], r["version"], r["requests_per_s"], _pct(r["error_rate"]), _ms(r["p50_latency"]),
            _ms(r["p95_latency"]), _ms(r["p99_latency"])] for r in rows])
    if alerts:
        print()
        table(["alert", "rule", "state", "severity", "value", "since"],
              [[a.id, a.rule, a.state + (" (silenced)" if a.silenced else ""), a.severity, a.value,
                time.strftime("%H:%M:%S", time.localtime(a.started_at))] for a in alerts])
    return 0


def _ms(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v * 1000:.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.2%}"


def _run(args: argparse.Namespace, ws: Any, name: str) -> int:
    from mlops_desktop.monitoring.alerts import AlertStore, read_monitoring_section
    from mlops_desktop.monitoring.engine import Notifier
    from mlops_desktop.monitoring.monitor import Monitor

    webhook = args.webhook
    if args.project:
        from pathlib import Path

        AlertStore(ws).load_project(args.project)
        path = Path(args.project)
        webhook = webhook or read_monitoring_section(path / "mlops.toml" if path.is_dir() else path).get("webhook")
    if args.interval <= 0:
        raise UsageError("--interval must be above 0 s")
    notifier = Notifier(webhook=webhook, desktop=True)
    mon = Monitor(ws, name, interval_s=args.interval, notifier=notifier, auto_revert=not args.no_revert)
    mon.on_transition.append(lambda tr: print(
        f"{time.strftime('%H:%M:%S')} alert {tr.alert_id} {tr.rule}: {tr.event} (value {tr.value})"
        + (" [silenced]" if tr.silenced else "") + (f" -> {tr.action}" if tr.action else ""), flush=True))
    http = None
    if args.metrics_port is not None:
        from mlops_desktop.monitoring import exporter
        from mlops_desktop.monitoring.series import SeriesStore

        http, port = exporter.serve(SeriesStore(ws.db), [name], args.metrics_port)
        print(f"drift gauges on http://127.0.0.1:{port}/metrics", flush=True)
    print(f"monitoring {name}: {len(mon.dep.targets)} targets every {args.interval:g} s, "
          f"{len(mon.evaluator.rules)} rules (Ctrl-C stops)", flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    next_drift = time.monotonic() + min(args.drift_every, 10.0) if args.drift_every > 0 else math.inf
    mon.start()
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            if time.monotonic() >= next_drift:
                next_drift = time.monotonic() + args.drift_every
                _drift_tick(ws, name)
    except KeyboardInterrupt:
        pass
    finally:
        mon.stop()
        if http is not None:
            http.shutdown()
            http.server_close()
    return 0


def _drift_tick(ws: Any, name: str) -> None:
    import logging

    from mlops_desktop.errors import MlopsError
    from mlops_desktop.monitoring import live_drift

    try:
        live_drift.deployment_drift(ws, name, window_s=3600)
    except MlopsError as exc:
        logging.getLogger(__name__).warning("drift of %s: %s", name, exc)


def _drift_out(args: argparse.Namespace, report: Any) -> int:
    if _json(args):
        _emit(report.to_dict())
        return 0
    from mlops_desktop.cli.output import table

    for note in report.notes:
        print(note)
    for v in report.versions:
        r = v.report
        print(f"version {v.version}: {v.rows} rows against {v.reference}; "
              f"{'DATASET DRIFT' if r.dataset_drift else 'no dataset drift'} "
              f"({len(r.drifted_features)} of {len(r.features)} features drifted, share {r.share_drifted:.2f})")
        feats = list(r.features) + ([v.prediction] if v.prediction else [])
        table(["feature", "kind", "method", "score", "threshold", "drift", "note"],
              [[f.column, f.kind, f.method, f.score, f.threshold, "DRIFT" if f.drifted else "-", f.note]
               for f in feats])
        for note in r.notes:
            print(note)
    return 0


def _arms_out(args: argparse.Namespace, rep: Any) -> int:
    if _json(args):
        _emit(rep.to_dict())
        return 0
    from mlops_desktop.cli.output import table

    for note in rep.notes:
        print(note)
    table(["arm", "version", "requests", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms", "outcomes", "quality"],
          [[a.arm, a.version, a.requests, a.requests_per_s, _pct(a.error_rate),
            a.p50_ms, a.p95_ms, a.p99_ms, a.outcomes, a.quality] for a in rep.arms])
    for c in rep.comparisons:
        print(f"- {c.verdict}")
    return 0


def _export(args: argparse.Namespace, ws: Any, name: str) -> int:
    from pathlib import Path

    from mlops_desktop.monitoring import exports, targets
    from mlops_desktop.monitoring.alerts import AlertStore

    if not (args.grafana or args.prometheus_rules or args.scrape_config):
        raise UsageError("`monitor export` needs at least one of --grafana, --prometheus-rules, --scrape-config")
    dep = targets.resolve(ws, name)
    written = []
    try:
        if args.grafana:
            exports.write_json(args.grafana, exports.grafana_dashboard(dep))
            written.append(args.grafana)
        if args.prometheus_rules:
            Path(args.prometheus_rules).write_text(exports.rules_yaml(AlertStore(ws).rules(name), name,
                                                                      interval_s=args.scrape_interval))
            written.append(args.prometheus_rules)
        if args.scrape_config:
            import yaml

            doc = exports.scrape_config(dep, interval_s=args.scrape_interval, exporter=args.exporter)
            Path(args.scrape_config).write_text(yaml.safe_dump(doc, sort_keys=False))
            written.append(args.scrape_config)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from None
    if _json(args):
        _emit({"written": written})
    else:
        print("wrote " + ", ".join(written))
    return 0


def run_alerts(args: argparse.Namespace) -> int:
    from mlops_desktop.monitoring.alerts import AlertStore
    from mlops_desktop.monitoring.rules import Rule

    ws = open_workspace(args)
    try:
        store = AlertStore(ws)
        action = args.action
        if action == "list":
            states = None if args.all else ("pending", "firing")
            alerts = store.alerts(deployment=args.deployment, states=states)
            if _json(args):
                _emit([a.to_dict() for a in alerts])
                return 0
            from mlops_desktop.cli.output import fmt_time, table

            table(["id", "rule", "deployment", "state", "severity", "value", "since", "acked", "action"],
                  [[a.id, a.rule, a.deployment, a.state + (" (silenced)" if a.silenced else ""), a.severity,
                    a.value, fmt_time(a.started_at), a.acked_by or "-", a.action or "-"] for a in alerts])
            return 0
        if action == "rules":
            rules = store.rules()
            if _json(args):
                _emit([r.to_dict() for r in rules])
                return 0
            from mlops_desktop.cli.output import table
            from mlops_desktop.monitoring.rules import format_duration

            table(["name", "expr", "for", "keep firing", "severity", "deployment", "action", "source"],
                  [[r.name, r.expr, format_duration(r.for_s), format_duration(r.keep_firing_for_s), r.severity,
                    r.deployment, r.action, r.source] for r in rules], max_width=60)
            return 0
        if action == "add":
            if not args.target or not args.expr:
                raise UsageError("`alerts add` needs a rule NAME and --expr")
            rule = Rule(args.target, args.expr, for_s=args.for_, keep_firing_for_s=args.keep_firing_for,
                        severity=args.severity, deployment=args.deployment or "*",
                        labels=_pairs(args.label, "--label", False), summary=args.summary, action=args.rule_action)
            store.add_rule(rule)
            return _said(args, rule.to_dict(), f"rule {rule.name}: {rule.expr}")
        if action == "remove":
            if not args.target:
                raise UsageError("`alerts remove` needs a rule NAME")
            store.remove_rule(args.target)
            return _said(args, {"removed": args.target}, f"removed rule {args.target}")
        if action == "load":
            if not args.target:
                raise UsageError("`alerts load` needs a PROJECT folder (or its mlops.toml)")
            rules = store.load_project(args.target)
            return _said(args, [r.to_dict() for r in rules], f"{len(rules)} rules from {args.target}")
        if action == "silence":
            duration = args.silence_for or (args.for_ if args.for_ != "0s" else None)
            if not duration:
                raise UsageError("`alerts silence` needs --for DURATION (e.g. 30m)")
            s = store.silence(deployment=args.deployment or "*", rule=args.rule, duration=duration,
                              comment=args.comment)
            return _said(args, s.to_dict(), f"silence {s.id} until "
                                            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(s.ends_at))}")
        if not args.target or not args.target.isdigit():
            raise UsageError("`alerts ack` needs an alert ID (a number; `alerts list` shows them)")
        a = store.ack(int(args.target), note=args.note)
        return _said(args, a.to_dict(), f"alert {a.id} acknowledged by {a.acked_by}")
    finally:
        ws.close()


def _said(args: argparse.Namespace, doc: Any, text: str) -> int:
    if _json(args):
        _emit(doc)
    else:
        print(text)
    return 0
