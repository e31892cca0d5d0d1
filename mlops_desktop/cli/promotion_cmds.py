"""`mlops-desktop promote ...` and `mlops-desktop reviews ...`: the promotion pipeline and the review queue."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import clean_json, emit_json, fmt_time, fmt_value, table
from mlops_desktop.errors import NotFoundError


def register(sub: argparse._SubParsersAction) -> None:
    promote = sub.add_parser("promote", help="the promotion pipeline: start a candidate through its policy's checks")
    ps = promote.add_subparsers(dest="promote_command", metavar="COMMAND", required=True)
    p = command(ps, "start", cmd_start, "start MODEL/VERSION through its policy ([promotion.MODEL] of mlops.toml) "
                "and run the checks")
    p.add_argument("ref", metavar="MODEL/VERSION", help="the candidate (MODEL@ALIAS works too)")
    p.add_argument("--policy", metavar="NAME", help="the policy table [promotion.NAME] (default: the model's)")
    p.add_argument("--project", metavar="DIR", help="the folder with mlops.toml (default: here or a parent)")
    p.add_argument("--no-run", action="store_true", help="only record the request; `promote resume ID` runs it")
    p = command(ps, "status", cmd_status, "a request's state and each check's outcome")
    p.add_argument("id", help="the request id")
    p = command(ps, "resume", cmd_resume, "run a request's checks again from the first one not passed (waiting "
                "for shadow traffic, cancelled, or its runner died)")
    p.add_argument("id")
    p = command(ps, "cancel", cmd_cancel, "cancel an undecided request")
    p.add_argument("id")
    p.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    p = command(ps, "list", cmd_list, "promotion requests, newest first")
    p.add_argument("--model", help="only this model's")
    p.add_argument("--state", action="append", help="only these states (repeat)")
    p = command(ps, "scan", cmd_scan, "start requests for what the policies' triggers name (a new version, an "
                "alias such as challenger) and run them")
    p.add_argument("--project", metavar="DIR")
    p.add_argument("--no-run", action="store_true")
    p = command(ps, "watch", cmd_watch, "run the policies' triggers by themselves: follow the audit log and start "
                "(and run) a request when a version is registered or an alias moves, until Ctrl-C")
    p.add_argument("--project", metavar="DIR")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between looks at the audit log (default 5)")
    p.add_argument("--once", action="store_true", help="look once (a full scan) and exit")
    p.add_argument("--no-run", action="store_true", help="only start requests; `promote resume ID` runs them")
    command(ps, "notices", cmd_notices, "what the pipeline told people (failed checks, expiries) not yet read")

    reviews = sub.add_parser("reviews", help="the review queue: evidence, labels, approve or reject")
    rs = reviews.add_subparsers(dest="reviews_command", metavar="COMMAND", required=True)
    p = command(rs, "list", cmd_reviews_list, "candidates waiting for review (oldest first)")
    p.add_argument("--all", action="store_true", help="decided ones too (newest first)")
    p = command(rs, "show", cmd_reviews_show, "everything a reviewer reads: checks, metric diff, shadow, drift, "
                "image, lineage, labels, history")
    p.add_argument("id")
    p.add_argument("--samples", action="store_true", help="list the live samples (disagreements first)")
    p = command(rs, "label", cmd_reviews_label, "label a live sample: champion, candidate, or the right answer")
    p.add_argument("id")
    p.add_argument("sample", help="its number in `reviews show ID --samples`, or REQUEST_ID:ROW")
    p.add_argument("label", help="champion (c), candidate (n), or the right answer itself")
    p.add_argument("--typed", action="store_true", help="take LABEL as the answer even if it reads 'champion'")
    for name, verb in (("approve", "approve (the last approval needed moves the alias and redeploys)"),
                       ("reject", "reject (nothing changes but the record of why)")):
        p = command(rs, name, cmd_decide, f"{verb}; a comment is required")
        p.add_argument("id")
        p.add_argument("--comment", "-m", required=True, help="why (recorded with your user name)")
        p.set_defaults(decision=name)


def _project(args: argparse.Namespace) -> Path:
    if getattr(args, "project", None):
        return Path(args.project)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "mlops.toml").is_file():
            return folder
    raise NotFoundError(f"no mlops.toml in {here} or any parent directory",
                        hint="run inside the project, or pass --project DIR")


def _progress() -> Any:
    from mlops_desktop.progress import Progress

    if not sys.stderr.isatty():
        return Progress()
    return Progress(lambda f, m: print(f"\r{f:5.0%} {m[:70]:<70}", end="", file=sys.stderr), min_step=0.02)


def _print_request(args: argparse.Namespace, req: Any) -> int:
    if args.json:
        emit_json(clean_json(req.to_dict()))
        return 0
    print(f"request {req.id}: {req.ref} under policy {req.policy} — {req.state}")
    print(f"  {req.message}")
    print(f"  champion: {req.champion_ref or '(none)'}; registered by {req.candidate_by}; started by "
          f"{req.requested_by} {fmt_time(req.created_at)}")
    if req.expires_at:
        print(f"  review expires {fmt_time(req.expires_at)}; approvals {len(req.approvals)}/{req.approvals_needed}")
    if req.checks:
        table(["check", "kind", "state", "summary"], [(c.name, c.kind, c.state, c.summary) for c in req.checks],
              max_width=100)
    for d in req.decisions:
        print(f"  {d.decision}d by {d.actor}{f' ({d.display_name})' if d.display_name else ''} "
              f"{fmt_time(d.ts)}: {d.comment}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from mlops_desktop import registry
    from mlops_desktop.promotion import pipeline
    from mlops_desktop.promotion.policy import find_policy

    root = _project(args)
    ws = open_workspace(args)
    with ws:
        model = registry.store(ws).resolve(args.ref).name
        req = pipeline.start(ws, args.ref, find_policy(root, model, args.policy))
        if not args.no_run:
            req = pipeline.run(ws, req.id, progress=_progress())
            if sys.stderr.isatty():
                print(file=sys.stderr)
        return _print_request(args, req) or (1 if req.state == "failed" else 0)


def cmd_status(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import requests, reviews

    with open_workspace(args) as ws:
        reviews.expire_due(ws)
        return _print_request(args, requests.get(ws, args.id))


def cmd_resume(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import pipeline, requests

    with open_workspace(args) as ws:
        req = pipeline.run(ws, requests.get(ws, args.id).id, progress=_progress())
        return _print_request(args, req) or (1 if req.state == "failed" else 0)


def cmd_cancel(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import pipeline, requests

    with open_workspace(args) as ws:
        return _print_request(args, pipeline.cancel(ws, requests.get(ws, args.id).id, reason=args.reason))


def _rows(reqs: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.id, r.ref, r.policy, r.state, r.champion_ref, f"{len(r.approvals)}/{r.approvals_needed}",
             fmt_time(r.created_at), fmt_time(r.expires_at) if r.state == "review" else "-", r.message)
            for r in reqs]


HEADERS = ["id", "candidate", "policy", "state", "champion", "approvals", "started", "expires", "message"]


def cmd_list(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import requests, reviews

    with open_workspace(args) as ws:
        reviews.expire_due(ws)
        reqs = requests.list_requests(ws, states=tuple(args.state) if args.state else None, model=args.model)
        if args.json:
            emit_json(clean_json([r.to_dict() for r in reqs]))
        else:
            table(HEADERS, _rows(reqs), max_width=60)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import pipeline
    from mlops_desktop.promotion.policy import load_policies

    root = _project(args)
    with open_workspace(args) as ws:
        started = pipeline.trigger(ws, load_policies(root))
        if not args.no_run:
            started = [pipeline.run(ws, r.id) for r in started]
        if args.json:
            emit_json(clean_json([r.to_dict() for r in started]))
        else:
            table(HEADERS, _rows(started), max_width=60)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import signal
    import threading

    from mlops_desktop.errors import UsageError
    from mlops_desktop.promotion.policy import load_policies
    from mlops_desktop.promotion.watcher import PollResult, TriggerWatcher

    if not args.interval > 0:
        raise UsageError(f"--interval must be positive (got {args.interval:g})")
    root = _project(args)
    stop = threading.Event()

    def said(result: PollResult) -> None:
        if result.problem:
            print(f"promote watch: {result.problem}", file=sys.stderr, flush=True)
        for req in result.started:
            if args.json:
                print(json.dumps(clean_json(req.to_dict())), flush=True)
            else:
                print(f"started {req.id}: {req.model}/{req.version} under policy {req.policy} "
                      f"(trigger {req.trigger})", flush=True)

    with open_workspace(args) as ws:
        watcher = TriggerWatcher(ws, lambda: load_policies(root), run=not args.no_run)
        if args.once:
            said(watcher.poll())
            return 0
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            watcher.watch(stop, interval=args.interval, on_poll=said)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    return 0


def cmd_notices(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import requests

    with open_workspace(args) as ws:
        notes = requests.unread_notices(ws, mark_read=True)
        if args.json:
            emit_json([n.to_dict() for n in notes])
        else:
            table(["request", "when", "level", "message"],
                  [(n.request_id, fmt_time(n.ts), n.level, n.message) for n in notes], max_width=100)
    return 0


def cmd_reviews_list(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import requests, reviews

    with open_workspace(args) as ws:
        reqs = requests.list_requests(ws) if args.all else reviews.queue(ws)
        if args.json:
            emit_json(clean_json([r.to_dict() for r in reqs]))
        else:
            table(HEADERS, _rows(reqs), max_width=60)
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else fmt_value(v)


def cmd_reviews_show(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import reviews, samples

    with open_workspace(args) as ws:
        page = reviews.page(ws, args.id)
        kept = samples.load(ws, page["request"]["id"]) if args.samples else []
    if args.json:
        if args.samples:
            page["sample_rows"] = [s.to_dict() for s in kept]
        emit_json(clean_json(page))
        return 0
    r = page["request"]
    print(f"review {r['id']}: {r['ref']} vs {r['champion_ref'] or '(no champion)'} — {r['state']}; "
          f"approvals {r['approvals_given']}/{r['approvals_needed']}")
    cand = page["candidate"]
    print(f"  registered by {cand['created_by']} {fmt_time(cand['created_at'])}; run {cand['run'] or '-'}; "
          f"bundle {cand['bundle_hash'][:12]}; trained on "
          + (", ".join(f"{i['dataset']}@{i['version']}" for i in cand["inputs"]) or "-"))
    print("\nchecks")
    table(["check", "state", "summary"], [(c["name"], c["state"], c["summary"]) for c in r["checks"]],
          max_width=110)
    if page["metric_diff"]:
        print("\nholdout metrics")
        table(["metric", "candidate", "champion", "diff"],
              [(m["metric"], _fmt(m["candidate"]), _fmt(m["champion"]), _fmt(m["diff"]))
               for m in page["metric_diff"]])
    if page["backtest_windows"]:
        print("\nback-test windows")
        table(["window", "test start", "rows", "candidate", "champion"],
              [(w["index"], w["test_start"], w["rows"], json.dumps(w["candidate"])[:40],
                json.dumps(w["champion"])[:40]) for w in page["backtest_windows"]])
    if page["shadow"]:
        sh = page["shadow"]
        cand_s, champ_s = sh.get("candidate") or {}, sh.get("champion") or {}
        print(f"\nshadow: {sh.get('requests')} requests on arm {sh.get('arm')}, {sh.get('disagreed_requests')} "
              "disagreed")
        table(["figure", "candidate", "champion"],
              [(k, _fmt(cand_s.get(k)), _fmt(champ_s.get(k))) for k in cand_s])
    if page["drift"] and "features" in page["drift"]:
        d = page["drift"]
        print(f"\ndrift of the shadowed inputs vs {d['reference']}: "
              f"{'DRIFT' if d['dataset_drift'] else 'no dataset drift'} "
              f"({', '.join(d['drifted_features']) or 'no feature drifted'})")
    if page["image"]:
        print(f"\nimage: {page['image']}")
    s = page["samples"]
    print(f"\nlive samples: {s['total']} ({s['disagreements']} disagreements), {s['labelled']} labelled")
    if kept:
        table(["#", "request", "inputs", "champion", "candidate", "agree", "label"],
              [(x.sample, x.key, json.dumps(x.inputs), x.champion, x.candidate, "yes" if x.agree else "NO",
                fmt_value(x.label)) for x in kept], max_width=70)
    print("\nhistory")
    table(["when", "who", "what", "why"], [(fmt_time(e["ts"]), e["actor"], e["kind"], e["reason"])
                                           for e in page["history"]], max_width=90)
    return 0


def cmd_reviews_label(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import labels, requests

    with open_workspace(args) as ws:
        req = requests.get(ws, args.id)
        sample = labels.label(ws, req.id, args.sample, args.label, typed=args.typed)
        version = labels.export(ws, req.model)
    doc = sample.to_dict() | {"dataset": version.ref if version is not None else None}
    if args.json:
        emit_json(clean_json(doc))
    else:
        print(f"sample {sample.sample} ({sample.key}) labelled {sample.label!r} ({sample.picked}); "
              f"labels in {doc['dataset']}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from mlops_desktop.promotion import reviews

    with open_workspace(args) as ws:
        req = reviews.decide(ws, args.id, args.decision, args.comment)
    return _print_request(args, req)
