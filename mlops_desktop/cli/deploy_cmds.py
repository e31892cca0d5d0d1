"""`targets` and `deploy`: where deployments run, and every deployment action (a thin face over DeploymentService)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops_desktop.cli.common import add_common, command, open_workspace
from mlops_desktop.errors import UsageError


def register(sub: Any) -> None:
    t = sub.add_parser("targets", help="deploy targets: a local Docker engine, a Swarm manager, a Kubernetes context",
                       description="Deploy targets: add one once, then check it (reachable, version, nodes).")
    add_common(t)
    ts = t.add_subparsers(dest="targets_action", metavar="ACTION", required=True)
    p = command(ts, "add", _targets_add, "add a target: --local, --swarm DOCKER_HOST or --kubernetes")
    p.add_argument("name", help="the target's name (lowercase letters, digits, '-')")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--local", action="store_true", help="containers on a Docker engine (this machine's)")
    kind.add_argument("--swarm", metavar="DOCKER_HOST", help="a Swarm manager, e.g. unix:///run/docker.sock")
    kind.add_argument("--kubernetes", action="store_true", help="a Kubernetes cluster from your kubeconfig")
    p.add_argument("--docker-host", metavar="DOCKER_HOST", help="--local: another engine than $DOCKER_HOST")
    p.add_argument("--context", help="--kubernetes: the kubeconfig context (default: the current one)")
    p.add_argument("--namespace", help="--kubernetes: the namespace (default: default)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a target option, e.g. endpoint_mode=vip publish_mode=ingress bind=0.0.0.0 deadline_s=60 "
                        "kubeconfig=PATH registry=HOST:PORT (repeatable)")
    command(ts, "list", _targets_list, "targets and what their last check saw")
    p = command(ts, "check", _targets_check, "check targets: reachable, engine version, nodes")
    p.add_argument("name", nargs="*", help="targets to check (default: all)")
    p = command(ts, "remove", _targets_remove, "remove a target that has no deployments")
    p.add_argument("name")

    d = sub.add_parser("deploy", help="deployments: create, update, roll back, scale, status, logs, A/B and shadow",
                       description="Deployments of model versions on a target, with an append-only revision history.")
    add_common(d)
    ds = d.add_subparsers(dest="deploy_action", metavar="ACTION", required=True)
    p = command(ds, "create", _create, "deploy MODEL@ALIAS or MODEL/VERSION on a target")
    p.add_argument("name", help="the deployment's name (lowercase letters, digits, '-', at most 40)")
    p.add_argument("--target", required=True, help="where (see `targets list`)")
    p.add_argument("--model", required=True, metavar="REF", help="MODEL@ALIAS or MODEL/VERSION")
    _spec_options(p, defaults=True)
    p = command(ds, "update", _update, "rolling update to another version (or resources); an A/B split ends")
    p.add_argument("name")
    p.add_argument("--model", metavar="REF", help="MODEL/VERSION or MODEL@ALIAS (default: the current version)")
    _spec_options(p, defaults=False)
    p = command(ds, "rollback", _rollback, "back to an earlier revision (default: the last healthy one)")
    p.add_argument("name")
    p.add_argument("--to", type=int, metavar="REVISION", help="the revision number (`deploy history NAME`)")
    _action_options(p)
    p = command(ds, "revert", _revert, "back to the last stable revision (healthy and never alerting)")
    p.add_argument("name")
    p.add_argument("--cause", help="what caused it (an alert id)")
    _action_options(p, reason_required=True)
    p = command(ds, "resume", _resume, "continue a rollout that was interrupted (engine unreachable, cancelled)")
    p.add_argument("name")
    p.add_argument("--deadline", type=float, metavar="SECONDS", help="readiness deadline (default 60 s)")
    p = command(ds, "scale", _scale, "set the replica count")
    p.add_argument("name")
    p.add_argument("replicas", type=int)
    p.add_argument("--reason", default="", help="why")
    p = command(ds, "restart", _restart, "replace every replica with a fresh one, one after the other")
    p.add_argument("name")
    p.add_argument("--reason", default="", help="why")
    p = command(ds, "status", _status, "replicas ready/desired, each replica's health, recent events")
    p.add_argument("name")
    p.add_argument("--events", type=int, default=8, metavar="N", help="how many recent events to show (default 8)")
    command(ds, "list", _list, "every deployment with its version and state")
    p = command(ds, "history", _history, "the revision history: version, image, who, when, why, outcome")
    p.add_argument("name")
    p = command(ds, "logs", _logs, "the replicas' logs (--follow streams them live)")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming until interrupted")
    p.add_argument("--since", type=float, metavar="SECONDS", help="only the last SECONDS")
    p = command(ds, "endpoints", _endpoints, "URLs of the router and each replica")
    p.add_argument("name")
    p = command(ds, "split", _split, "A/B split between versions: deploy split NAME M/1=90 M/2=10")
    p.add_argument("name")
    p.add_argument("weights", nargs="+", metavar="MODEL/VERSION=WEIGHT")
    p.add_argument("--sticky-header", metavar="HEADER", help="users keep their arm by this request header")
    _action_options(p)
    p = command(ds, "shadow", _shadow, "mirror a share of the traffic to a version (answers never returned)")
    p.add_argument("name")
    p.add_argument("model", metavar="MODEL/VERSION")
    p.add_argument("--percent", type=float, required=True, help="0-100; 0 turns the shadow off")
    _action_options(p)
    p = command(ds, "delete", _delete, "remove the deployment from its target (its history stays)")
    p.add_argument("name")
    p.add_argument("--reason", default="", help="why")


def _spec_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    p.add_argument("--replicas", type=int, default=1 if defaults else None, help="replica count (default 1)")
    p.add_argument("--cpu", type=float, help="CPU cores per replica (e.g. 0.5)")
    p.add_argument("--memory", help="memory per replica (e.g. 512Mi, 1Gi)")
    p.add_argument("--gpus", type=int, default=0 if defaults else None, help="GPUs per replica")
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment for the model server")
    p.add_argument("--port", type=int, default=8080 if defaults else None, help="the server's port in the container")
    p.add_argument("--image", help="a prebuilt image instead of building the version's image")
    _action_options(p)


def _action_options(p: argparse.ArgumentParser, *, reason_required: bool = False) -> None:
    p.add_argument("--reason", default="", required=reason_required, help="why (kept in the history)")
    p.add_argument("--deadline", type=float, metavar="SECONDS",
                   help="how long new replicas get to become ready before the rollout rolls back (default 60)")


def _service(args: argparse.Namespace) -> tuple[Any, Any]:
    from mlops_desktop.deploy import DeploymentService
    from mlops_desktop.deploy.images import ContainersImages, GivenImages

    ws = open_workspace(args)
    image = getattr(args, "image", None)
    return ws, DeploymentService(ws, images=GivenImages(default=image) if image else ContainersImages(ws))


def _progress(args: argparse.Namespace) -> Any:
    from mlops_desktop.progress import Progress

    if args.json:
        return None

    def show(fraction: float, message: str) -> None:
        print(f"  {fraction * 100:5.1f}%  {message}", file=sys.stderr, flush=True)

    return Progress(show, min_step=0.05)


def _emit(args: argparse.Namespace, obj: Any, text: str) -> int:
    from mlops_desktop.cli.output import emit_json

    if args.json:
        emit_json(obj)
    else:
        print(text)
    return 0


def _parse_options(items: list[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {item!r} is not KEY=VALUE")
        if key == "labels":
            try:
                out[key] = json.loads(value)
            except ValueError:
                raise UsageError("--option labels=... must be a JSON object") from None
        else:
            out[key] = value
    return out


# -- targets ----------------------------------------------------------------------------------------------------
def _targets_add(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        kind = "local" if args.local else "swarm" if args.swarm else "kubernetes"
        address = args.swarm if kind == "swarm" else args.docker_host if kind == "local" else None
        if kind != "kubernetes" and (args.context or args.namespace):
            raise UsageError("--context and --namespace are for --kubernetes targets")
        target = svc.add_target(args.name, kind, address=address, context=args.context, namespace=args.namespace,
                                options=_parse_options(args.option))
        return _emit(args, target, f"target {target.name} ({target.kind}) added; check it with "
                                   f"`targets check {target.name}`")


def _targets_list(args: argparse.Namespace) -> int:
    from mlops_desktop.cli.output import emit_json, fmt_time, table

    ws, svc = _service(args)
    with ws:
        rows = []
        for t in svc.targets():
            check = svc.last_check(t.name)
            rows.append((t, check))
        if args.json:
            emit_json([{**t.to_dict(), "last_check": c.to_dict() if c else None} for t, c in rows])
            return 0
        table(["name", "kind", "address", "namespace", "checked", "reachable", "version"],
              [(t.name, t.kind, t.address or ("kubeconfig" if t.kind == "kubernetes" else "$DOCKER_HOST"),
                t.namespace or "-", fmt_time(c.checked_at) if c else "never",
                ("yes" if c.reachable else "NO") if c else "-", (c.version if c else "") or "-") for t, c in rows])
        return 0


def _targets_check(args: argparse.Namespace) -> int:
    from mlops_desktop.cli.output import emit_json

    ws, svc = _service(args)
    with ws:
        names = args.name or [t.name for t in svc.targets()]
        checks = [svc.check_target(n) for n in names]
        if args.json:
            emit_json(checks)
        else:
            for c in checks:
                print(f"{c.target}: " + (f"reachable, {c.version}; {c.detail}" if c.reachable
                                         else f"NOT reachable: {c.detail}"))
                for n in c.nodes:
                    print(f"  node {n.get('name')}  {n.get('role', '')}  {n.get('state', '')}  {n.get('address', '')}")
        return 0 if all(c.reachable for c in checks) else 1


def _targets_remove(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        svc.remove_target(args.name)
        return _emit(args, {"removed": args.name}, f"target {args.name} removed")


# -- deployments ------------------------------------------------------------------------------------------------
def _revision_text(rev: Any) -> str:
    line = f"{rev.deployment} revision {rev.number} ({rev.action} {rev.ref}): {rev.outcome}"
    return line + (f" - {rev.detail}" if rev.detail else "")


def _rollout_exit(rev: Any) -> int:
    return 0 if rev.outcome == "healthy" else 1


def _create(args: argparse.Namespace) -> int:
    from mlops_desktop.deploy.names import parse_env

    ws, svc = _service(args)
    with ws:
        rev = svc.create(args.name, args.target, args.model, replicas=args.replicas, cpu=args.cpu,
                         memory=args.memory, gpus=args.gpus, env=parse_env(args.env), port=args.port,
                         reason=args.reason, deadline_s=args.deadline, progress=_progress(args))
        _emit(args, rev, _revision_text(rev))
        return _rollout_exit(rev)


def _update(args: argparse.Namespace) -> int:
    from mlops_desktop.deploy.names import parse_env

    ws, svc = _service(args)
    with ws:
        extra: dict[str, Any] = {}
        if args.cpu is not None:
            extra["cpu"] = args.cpu
        if args.memory is not None:
            extra["memory"] = args.memory
        rev = svc.update(args.name, args.model, replicas=args.replicas, gpus=args.gpus,
                         env=parse_env(args.env) if args.env else None, port=args.port, reason=args.reason,
                         deadline_s=args.deadline, progress=_progress(args), **extra)
        _emit(args, rev, _revision_text(rev))
        return _rollout_exit(rev)


def _rollback(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        rev = svc.rollback(args.name, args.to, reason=args.reason, deadline_s=args.deadline,
                           progress=_progress(args))
        _emit(args, rev, _revision_text(rev))
        return _rollout_exit(rev)


def _revert(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        rev = svc.revert(args.name, args.reason, args.cause, deadline_s=args.deadline, progress=_progress(args))
        _emit(args, rev, _revision_text(rev))
        return _rollout_exit(rev)


def _resume(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        rev = svc.resume(args.name, deadline_s=args.deadline, progress=_progress(args))
        _emit(args, rev, _revision_text(rev))
        return _rollout_exit(rev)


def _status_text(name: str, st: Any, events: list[dict[str, Any]]) -> str:
    from mlops_desktop.cli.output import fmt_time

    lines = [f"{name}: {st.state} - {st.ready}/{st.desired} ready" + (f" ({st.reason})" if st.reason else "")]
    for r in st.replicas:
        role = f"arm {r.arm}" if r.arm and r.arm != "router" else ("router" if r.arm == "router" else "")
        lines.append(f"  {r.id:<48} {r.health:<10} v{r.version or '?':<4} {role:<10} {r.address:<22} {r.detail}")
    if st.events:
        lines.append("engine:")
        lines += [f"  {e}" for e in st.events]
    if events:
        lines.append("events:")
        lines += [f"  {fmt_time(e['at'])}  r{e['revision'] or '-'}  {e['message']}" for e in events]
    return "\n".join(line.rstrip() for line in lines)


def _status(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        st = svc.status(args.name)
        events = svc.events(args.name)[-max(0, args.events):] if args.events else []
        _emit(args, {**st.to_dict(), "recent_events": events}, _status_text(args.name, st, events))
        return 0 if st.state in ("healthy", "stopped") else 1


def _list(args: argparse.Namespace) -> int:
    from mlops_desktop.cli.output import emit_json, fmt_time, table

    ws, svc = _service(args)
    with ws:
        deps = svc.deployments()
        if args.json:
            emit_json(deps)
            return 0
        table(["name", "target", "model", "revision", "replicas", "state", "router", "updated"],
              [(x.name, x.target, f"{x.model}/{x.version}", x.current_revision, x.spec.replicas, x.state,
                " ".join(f"{a.arm}={a.weight:g}" for a in x.router.arms) if x.router else "-",
                fmt_time(x.updated_at)) for x in deps])
        return 0


def _history(args: argparse.Namespace) -> int:
    from mlops_desktop.cli.output import emit_json, fmt_time, table

    ws, svc = _service(args)
    with ws:
        revs = svc.history(args.name)
        current = svc.get(args.name).current_revision
        if args.json:
            emit_json([{**r.to_dict(), "current": r.number == current} for r in revs])
            return 0
        table(["rev", "action", "model", "image", "by", "at", "outcome", "reason", "detail"],
              [(("* " if r.number == current else "  ") + str(r.number), r.action, r.ref, r.image, r.actor,
                fmt_time(r.at), r.outcome + (f" (alert {r.alerting})" if r.alerting else ""), r.reason or "-",
                r.detail or "-") for r in revs])
        return 0


def _logs(args: argparse.Namespace) -> int:
    import time

    ws, svc = _service(args)
    with ws:
        since = time.time() - args.since if args.since else None
        lines = svc.logs(args.name, follow=args.follow, since=since)
        try:
            for line in lines:
                if args.json:
                    import json

                    print(json.dumps({"line": line}), flush=True)
                else:
                    print(line, flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
        return 0


def _endpoints(args: argparse.Namespace) -> int:
    from mlops_desktop.cli.output import emit_json, table

    ws, svc = _service(args)
    with ws:
        eps = svc.endpoints(args.name)
        if args.json:
            emit_json(eps)
        else:
            table(["role", "url", "version", "arm"], [(e.role, e.url, e.version or "-", e.arm or "-") for e in eps])
        return 0


def _split(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        weights: dict[str, float] = {}
        for item in args.weights:
            ref, sep, value = item.rpartition("=")
            try:
                if not sep or not ref:
                    raise ValueError
                weights[ref] = float(value)
            except ValueError:
                raise UsageError(f"{item!r} is not MODEL/VERSION=WEIGHT", hint="e.g. churn/1=90 churn/2=10") from None
        dep = svc.split(args.name, weights, sticky_header=args.sticky_header, reason=args.reason,
                        deadline_s=args.deadline, progress=_progress(args))
        arms = " ".join(f"{a.arm}={a.weight:g}" for a in dep.router.arms) if dep.router else "-"
        return _emit(args, dep, f"{dep.name}: {dep.state}; arms {arms}"
                                + (f", sticky by {dep.router.sticky_header}" if dep.router and
                                   dep.router.sticky_header else ""))


def _shadow(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        dep = svc.shadow(args.name, args.model, args.percent, reason=args.reason, deadline_s=args.deadline,
                         progress=_progress(args))
        r = dep.router
        text = (f"{dep.name}: shadow {r.shadow_arm} at {r.shadow_percent:g}%" if r and r.shadow_arm
                else f"{dep.name}: no shadow")
        return _emit(args, dep, text)


def _scale(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        st = svc.scale(args.name, args.replicas, reason=args.reason)
        return _emit(args, st, f"{args.name}: {st.desired} replicas desired, {st.ready} ready")


def _restart(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        st = svc.restart(args.name, reason=args.reason)
        return _emit(args, st, f"{args.name}: restarted; {st.ready}/{st.desired} ready")


def _delete(args: argparse.Namespace) -> int:
    ws, svc = _service(args)
    with ws:
        svc.delete(args.name, reason=args.reason)
        return _emit(args, {"deleted": args.name}, f"deployment {args.name} deleted (its history is kept)")
