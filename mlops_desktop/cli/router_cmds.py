"""`router`: the A/B and shadow router - run one locally, see its arms, and change weights, shadow, threshold and
the kill switch live (every change with who and why)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.errors import UsageError

HELP = """the A/B and shadow router in front of model servers

  router start NAME --config FILE [--host H] [--port P]   run a router in the background (managed)
  router list                                             managed routers and their observed state
  router status TARGET                                    arms, weights, backends' health, shadow counters
  router stop NAME | router logs NAME [-n LINES]
  router weights TARGET v1=90 v2=10 --reason WHY          change the split live
  router shadow TARGET --percent P | --off --reason WHY   mirror a share of the traffic to the shadow arm
  router kill TARGET --reason WHY                         every request to the stable arm (--undo to lift it)
  router threshold TARGET P|none [--arm A] [--positive-class C] --reason WHY
  router changes TARGET                                   who changed what, when and why
TARGET is a managed router's name, or a router's URL with --admin-token-file (or $MLOPS_ADMIN_TOKEN).
"""
ACTIONS = ("start", "list", "status", "stop", "logs", "weights", "shadow", "kill", "threshold", "changes")


def register(sub: Any) -> None:
    p = command(sub, "router", run, "A/B and shadow router: start one, change weights/shadow/threshold/kill "
                "switch live", epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=ACTIONS, help="what to do")
    p.add_argument("target", nargs="?", metavar="NAME|URL", help="a managed router's name, or a router's URL")
    p.add_argument("values", nargs="*", metavar="VALUE", help="weights: ARM=WEIGHT ...; threshold: P or none")
    p.add_argument("--config", metavar="FILE", help="start: the router's config (TOML or JSON)")
    p.add_argument("--host", help="start: address to bind (overrides the config)")
    p.add_argument("--port", type=int, help="start: port (overrides the config)")
    p.add_argument("--reason", help="why this change is made (required for changes)")
    p.add_argument("--actor", help="who makes it (default: your user name)")
    p.add_argument("--percent", type=float, help="shadow: the share of requests mirrored, 0-100")
    p.add_argument("--off", action="store_true", help="shadow: stop mirroring")
    p.add_argument("--undo", action="store_true", help="kill: lift the kill switch")
    p.add_argument("--arm", help="threshold: the arm it applies to (default: every arm)")
    p.add_argument("--positive-class", metavar="LABEL", help="threshold: the class it is for")
    p.add_argument("--admin-token-file", metavar="FILE", help="the admin token of a router given by URL")
    p.add_argument("-n", "--lines", type=int, default=100, help="logs: how many lines (default 100)")


def run(args: argparse.Namespace) -> int:
    from mlops_desktop.serving import router_manager as rm

    action = args.action
    if action != "list" and not args.target:
        raise UsageError(f"`router {action}` needs a router name" + ("" if action in ("start", "stop", "logs")
                                                                     else " or URL"))
    ws = open_workspace(args)
    try:
        if action == "list":
            return _list(args, rm.list_routers(ws))
        if action == "start":
            if not args.config:
                raise UsageError("`router start` needs --config FILE")
            r = rm.start(ws, args.target, args.config, host=args.host, port=args.port)
            return _out(args, r.to_dict(), f"router {r.name} at {r.url} (pid {r.pid}); admin token in "
                                           f"{r.token_file or 'its config'}")
        if action == "stop":
            r = rm.stop(ws, args.target)
            return _out(args, r.to_dict(), f"{r.name}: {r.state}" + (f" ({r.error})" if r.error else ""))
        if action == "logs":
            print(rm.logs(ws, args.target, args.lines))
            return 0
        if action == "status":
            return _status(args, rm.client(ws, args.target, args.admin_token_file).state())
        if action == "changes":
            events = rm.client(ws, args.target, args.admin_token_file).changes()
            if args.json:
                from mlops_desktop.cli.output import emit_json

                emit_json(events)
                return 0
            from mlops_desktop.cli.output import fmt_time, table

            table(["#", "when", "who", "what", "from", "to", "why"],
                  [[e["seq"], fmt_time(e["ts"]), e["actor"], e["kind"], e["from_value"], e["to_value"], e["reason"]]
                   for e in events])
            return 0
        return _change(args, ws, rm)
    finally:
        ws.close()


def _change(args: argparse.Namespace, ws: Any, rm: Any) -> int:
    from mlops_desktop import audit
    from mlops_desktop.serving.router_client import parse_weights

    if not args.reason:
        raise UsageError(f"`router {args.action}` needs --reason: every live change records why")
    settings: dict[str, Any] = {}
    if args.action == "weights":
        settings["weights"] = parse_weights(args.values)
    elif args.action == "shadow":
        if args.off == (args.percent is not None):
            raise UsageError("`router shadow` needs --percent P or --off (one of them)")
        settings["shadow"] = {"enabled": False} if args.off else {"enabled": True, "percent": args.percent}
    elif args.action == "kill":
        settings["kill_switch"] = not args.undo
    else:
        if len(args.values) != 1:
            raise UsageError("`router threshold` needs one value: a probability from 0 to 1, or none")
        raw = args.values[0]
        try:
            value = None if raw.lower() == "none" else float(raw)
        except ValueError:
            raise UsageError(f"the threshold {raw!r} is not a number (or none)") from None
        settings["threshold"] = {"threshold": value, "positive_class": args.positive_class} | (
            {"arm": args.arm} if args.arm else {})
    answer = rm.change(ws, args.target, actor=args.actor or audit.current_actor(), reason=args.reason,
                       token_file=args.admin_token_file, **settings)
    lines = [f"{e['kind']}: {e['from_value']} -> {e['to_value']}" for e in answer["changes"]]
    pending = (answer.get("threshold_push") or {}).get("pending") or []
    lines += [f"pending on {p['backend']}: {p['why']}" for p in pending]
    return _out(args, answer, "\n".join(lines) or answer.get("message", "nothing changed"))


def _list(args: argparse.Namespace, routers: list[Any]) -> int:
    from mlops_desktop.cli.output import emit_json, fmt_time, table

    if args.json:
        emit_json([r.to_dict() for r in routers])
        return 0
    table(["name", "state", "url", "pid", "config", "started"],
          [[r.name, r.state + (f" ({r.error})" if r.error else ""), r.url, r.pid, r.config, fmt_time(r.started_at)]
           for r in routers])
    return 0


def _status(args: argparse.Namespace, state: dict[str, Any]) -> int:
    from mlops_desktop.cli.output import emit_json, table

    if args.json:
        emit_json(state)
        return 0
    s = state["settings"]
    print(f"router {state['router']}: {'ready' if state['ready'] else 'NOT READY'}; stable arm {state['stable']}"
          + ("; KILL SWITCH ON (everything to the stable arm)" if s["kill_switch"] else "")
          + (f"; sticky by {state['sticky_header']}" if state["sticky_header"] else ""))
    rows = []
    for arm, info in state["arms"].items():
        for b in info["backends"]:
            rows.append([arm, info["version"] or "", s["weights"].get(arm), json.dumps(s["thresholds"].get(arm)),
                         b["url"], {True: "up", False: "down", None: "unknown"}[b["up"]], b["error"]])
    table(["arm", "version", "weight", "threshold", "backend", "health", "error"], rows)
    if state.get("shadow"):
        sh = state["shadow"]
        print(f"shadow {sh['arm']}: {'on' if s['shadow_enabled'] else 'off'} at {s['shadow_percent']:g} %; "
              f"mirrored {sh['mirrored']}, agreed {sh['agreed']}, disagreed {sh['disagreed']}, failed {sh['failed']}, "
              f"dropped {sh['dropped']}")
    return 0 if state["ready"] else 1


def _out(args: argparse.Namespace, doc: dict[str, Any], line: str) -> int:
    from mlops_desktop.cli.output import emit_json

    if args.json:
        emit_json(doc)
    else:
        print(line)
    return 0
