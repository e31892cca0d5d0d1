"""`mlops-desktop models ...` and `mlops-desktop audit ...`: the model registry and the audit log from the console."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import clean_json, emit_json, fmt_time, fmt_value, table
from mlops_desktop.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="the model registry: versions, aliases, rollback, batch scoring")
    ms = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    p = command(ms, "register", cmd_register, "register a run's model artifact as the next version of a model")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("--name", required=True, help="model name (lowercase letters, digits and '-')")
    p.add_argument("--artifact", help="artifact path of the model file or folder (default: the recipe's model folder)")
    p.add_argument("--flavor", choices=["sklearn", "pytorch", "onnx", "python"],
                   help="what the artifact is (default: from its MLmodel.json or file type)")
    p.add_argument("--factory", metavar="MODULE:CALLABLE", help="pytorch: builds the nn.Module for the state_dict")
    p.add_argument("--factory-kwargs", metavar="JSON", default="{}", help="pytorch: keyword arguments of --factory")
    p.add_argument("--entrypoint", metavar="MODULE:FUNCTION", help="python: the predict(columns) function")
    p.add_argument("--project", metavar="DIR", help="folder the --factory/--entrypoint module is found in "
                   "(default: the current folder); its code is copied into the bundle")
    p.add_argument("--signature", metavar="FILE", help="JSON signature, when the artifact brings none")
    p.add_argument("--input-example", metavar="FILE", help="JSON {\"columns\": {name: [values]}} or a CSV/Parquet file")
    p.add_argument("--description", default="")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-onnx", action="store_true", help="do not try the ONNX fast path")
    command(ms, "list", cmd_list, "list registered models with their latest version and aliases")
    p = command(ms, "show", cmd_show, "show a model (its versions) or one version: signature, files, lineage")
    p.add_argument("ref", metavar="NAME[/VERSION|@ALIAS]")
    p = command(ms, "compare", cmd_compare, "compare two versions side by side; differing rows are marked *")
    p.add_argument("a", metavar="NAME/VERSION")
    p.add_argument("b", metavar="NAME/VERSION")
    alias = ms.add_parser("alias", help="set, remove and list the history of aliases (champion, production...)")
    als = alias.add_subparsers(dest="alias_command", metavar="COMMAND", required=True)
    p = command(als, "set", cmd_alias_set, "point an alias at a version (a reason is required for production-like "
                "aliases)")
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("version", type=_version_number)
    p.add_argument("--reason", default="", help="why (recorded in the audit log)")
    p = command(als, "remove", cmd_alias_remove, "remove an alias")
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("--reason", default="")
    p = command(als, "history", cmd_alias_history, "every change of a model's aliases; --at DATE: which version "
                "each alias named then")
    p.add_argument("name")
    p.add_argument("--alias", help="only this alias")
    p.add_argument("--at", metavar="DATE", help="YYYY-MM-DD (end of that day), 'YYYY-MM-DD HH:MM[:SS]' or epoch "
                   "seconds, local time")
    p = command(ms, "rollback", cmd_rollback, "move an alias back to the version it named before, as a rollback")
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    p = command(ms, "predict", cmd_predict, "score a dataset or file with a version, into the lake or a Parquet file")
    p.add_argument("ref", metavar="NAME[/VERSION|@ALIAS]")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="FILE", help=".parquet or .csv")
    src.add_argument("--dataset", "-d", metavar="NAME[@VERSION]", help="a lake dataset version")
    p.add_argument("--output", "-o", metavar="OUT.parquet", help="write here instead of into the lake")
    p.add_argument("--into-dataset", metavar="NAME", help="lake dataset to write (default scores_<model>)")
    p.add_argument("--keep", metavar="COL[,COL]", help="input columns copied next to the predictions (default all)")
    p.add_argument("--batch-rows", type=int, default=262_144, help="rows per model call (memory is bounded by it)")
    p.add_argument("--no-onnx", action="store_true", help="score with the flavor's own path, not the ONNX fast path")

    aud = sub.add_parser("audit", help="the append-only audit log: who changed what, when and why")
    auds = aud.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    p = command(auds, "log", cmd_audit_log, "list events (oldest first)")
    p.add_argument("--subject", help="e.g. model:churn")
    p.add_argument("--kind", help="e.g. model.alias.moved, or a prefix ending in '.' (model.alias.)")
    p.add_argument("--since", metavar="DATE")
    p.add_argument("--until", metavar="DATE")
    p.add_argument("--limit", "-n", type=int, default=0, help="only the newest N")
    command(auds, "verify", cmd_audit_verify, "check the hash chain: finds edited, inserted and deleted events")


def _version_number(text: str) -> int:
    raw = text[1:] if text[:1] in ("v", "V") else text
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number (1, 2, ...)")
    return int(raw)


def parse_when(text: str, *, end_of_day: bool = True) -> float:
    """Local 'YYYY-MM-DD' (end of that day unless told otherwise), ISO date-times, or epoch seconds."""
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"cannot read the date {text!r}",
                         hint="write YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' or epoch seconds") from None
    if len(raw) == 10 and end_of_day:
        when = when + timedelta(days=1) - timedelta(microseconds=1)
    return when.timestamp()


def _store(ws: Any) -> Any:
    from mlops_desktop import registry

    return registry.store(ws)


# ------------------------------------------------------------------------------------------------------ register
def _read_example(path: str) -> dict[str, list[Any]]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"input example {p} does not exist")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"input example {p} cannot be read: {exc}") from None
        cols = data.get("columns") if isinstance(data, dict) else None
        if not isinstance(cols, dict):
            raise UsageError(f"input example {p} must hold {{\"columns\": {{name: [values]}}}}")
        return cols
    import polars as pl

    try:
        frame = pl.read_csv(p, n_rows=5) if p.suffix.lower() == ".csv" else pl.read_parquet(p).head(5)
    except Exception as exc:  # noqa: BLE001 - polars raises many kinds for a bad file
        raise UsageError(f"input example {p} cannot be read: {str(exc).splitlines()[0]}") from None
    return {c: frame[c].to_list() for c in frame.columns}


def cmd_register(args: argparse.Namespace) -> int:
    from mlops_desktop import registry
    from mlops_desktop.execution.launch import parse_params
    from mlops_desktop.registry.sources import signature_from_json

    try:
        kwargs = json.loads(args.factory_kwargs)
    except ValueError as exc:
        raise UsageError(f"--factory-kwargs is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise UsageError("--factory-kwargs must be a JSON object")
    signature = None
    if args.signature:
        try:
            signature = signature_from_json(json.loads(Path(args.signature).read_text(encoding="utf-8")),
                                            args.signature)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--signature {args.signature} cannot be read: {exc}") from None
    tags = parse_params(args.tag)
    with open_workspace(args) as ws:
        result = registry.register(
            ws, args.run, args.name, artifact=args.artifact, flavor=args.flavor, factory=args.factory,
            factory_kwargs=kwargs, entrypoint=args.entrypoint,
            project_dir=Path(args.project).resolve() if args.project else Path.cwd(), signature=signature,
            example=_read_example(args.input_example) if args.input_example else None,
            description=args.description, tags=tags, fast_path=not args.no_onnx)
    mv = result.version
    if args.json:
        emit_json(clean_json(result.to_dict()))
        return 0
    verb = "registered" if result.created else "already registered as"
    print(f"{verb} {mv.ref} ({mv.flavor}, serving path {mv.serving_path}, bundle {mv.bundle_hash[:12]})")
    for w in result.warnings:
        print(f"note: {w}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------------------ reading
def cmd_list(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        models = _store(ws).list_models()
    if args.json:
        emit_json(clean_json([m.to_dict() for m in models]))
        return 0
    table(["name", "versions", "latest", "aliases", "updated"],
          [(m.name, m.versions, m.latest_version or "-",
            ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())) or "-", fmt_time(m.updated_at))
           for m in models], max_width=80)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from mlops_desktop import registry
    from mlops_desktop.registry.lineage import version_lineage
    from mlops_desktop.registry.names import parse_ref

    ref = parse_ref(args.ref)
    with open_workspace(args) as ws:
        store = _store(ws)
        if ref.version is None and ref.alias is None:
            model = store.get_model(ref.name)
            versions = store.list_versions(ref.name)
            if args.json:
                emit_json(clean_json(model.to_dict() | {"versions": [v.to_dict() for v in versions]}))
                return 0
            _print_model(model, versions)
            return 0
        mv = store.resolve(args.ref)
        bundle = registry.open_version_bundle(ws, mv)  # verified: a tampered bundle is reported here
        lineage = version_lineage(ws, mv)
        images = _images_of(ws, mv)
    if args.json:
        emit_json(clean_json(mv.to_dict() | {"bundle": {"path": str(bundle.path), "files": bundle.files,
                                                        "environment": bundle.environment,
                                                        "fast_path": bundle.fast_path,
                                                        "flavor_config": _short_config(bundle.flavor_config)},
                                             "lineage": lineage, "images": [i.to_dict() for i in images]}))
        return 0
    _print_version(mv, bundle, lineage)
    _print_images(images)
    return 0


def _images_of(ws: Any, mv: Any) -> list[Any]:
    """The container images built for this version (containers/), newest first."""
    from mlops_desktop.containers import images_for

    return images_for(ws, mv.name, mv.version)


def _print_images(images: list[Any]) -> None:
    if not images:
        return
    print("\nimages:")
    table(["tag", "size", "build", "smoke", "pushed digest"],
          [(i.tag, f"{i.size_bytes / 1e6:.0f} MB", f"{i.build_seconds:.1f} s",
            "-" if i.smoke is None else ("passed" if i.smoke.get("passed") else "FAILED"), i.digest or "-")
           for i in images], max_width=110)


def _short_config(config: dict[str, Any]) -> dict[str, Any]:
    pre = dict(config.get("preprocess") or {})
    for key in ("mean", "std", "columns"):
        if isinstance(pre.get(key), list) and len(pre[key]) > 8:
            pre[key] = pre[key][:8] + [f"... {len(pre[key]) - 8} more"]
    return config | ({"preprocess": pre} if pre else {})


def _print_model(model: Any, versions: list[Any]) -> None:
    print(f"model {model.name}: {model.versions} version(s), created {fmt_time(model.created_at)} by "
          f"{model.created_by}")
    if model.aliases:
        print("aliases: " + ", ".join(f"{a} -> v{v}" for a, v in sorted(model.aliases.items())))
    keys = sorted({k for v in versions for k in v.metrics}, key=lambda k: (not k.startswith("val"), k))[:4]
    print()
    table(["version", "created", "flavor", "serving", "run", "aliases"] + keys,
          [(v.version, fmt_time(v.created_at), v.flavor, v.serving_path, (v.run_uuid or "-")[:8],
            ", ".join(v.aliases) or "-", *[v.metrics.get(k) for k in keys]) for v in versions])


def _print_version(mv: Any, bundle: Any, lineage: dict[str, Any]) -> None:
    fast = bundle.fast_path
    run = lineage.get("run") or {}
    table(["field", "value"], [
        ("version", mv.ref), ("aliases", ", ".join(mv.aliases) or "-"), ("flavor", mv.flavor),
        ("serving path", mv.serving_path),
        ("onnx fast path", (fast.get("status", "-") + (f": {fast['reason']}" if fast.get("reason") else ""))
         if fast else "-"),
        ("bundle", f"{mv.bundle_hash} (verified)"), ("path", str(bundle.path)),
        ("run", f"{mv.run_uuid} ({run.get('experiment', '')}/{run.get('name', '')}, {run.get('status', '')})"
         if mv.run_uuid else "-"),
        ("artifact", mv.artifact_path or "-"), ("source", mv.source), ("task", mv.signature.task),
        ("classes", ", ".join(map(str, mv.signature.classes)) or "-"),
        ("created", f"{fmt_time(mv.created_at)} by {mv.created_by}"), ("description", mv.description or "-"),
        ("python", bundle.environment.get("python", "-")),
    ], max_width=110)
    print("\nsignature (inputs):")
    table(["column", "type"], [(c.name, c.dtype) for c in mv.signature.inputs])
    if mv.metrics:
        print()
        table(["metric", "value"], sorted(mv.metrics.items()))
    print()
    table(["file", "bytes", "sha256"], [(rel, meta["size"], meta["sha256"][:16]) for rel, meta in
                                        sorted(bundle.files.items())], max_width=80)
    packages = bundle.environment.get("packages") or {}
    if packages:
        print()
        table(["package", "version"], sorted(packages.items()))
    print("\nlineage:")
    table(["dataset", "version", "context", "made by"],
          [(d["dataset"], d["version"], d["context"] or "-", d.get("producer_step") or ("-" if d["in_lake"]
                                                                                       else "not in the lake"))
           for d in lineage["datasets"]])
    if mv.tags:
        print()
        table(["tag", "value"], sorted(mv.tags.items()))


def cmd_compare(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        store = _store(ws)
        a, b = store.resolve(args.a), store.resolve(args.b)
    rows: list[tuple[str, Any, Any]] = [
        ("version", a.ref, b.ref), ("flavor", a.flavor, b.flavor), ("serving path", a.serving_path, b.serving_path),
        ("bundle", a.bundle_hash[:12], b.bundle_hash[:12]), ("run", (a.run_uuid or "-")[:12], (b.run_uuid or "-")[:12]),
        ("created", fmt_time(a.created_at), fmt_time(b.created_at)), ("aliases", ", ".join(a.aliases) or "-",
                                                                      ", ".join(b.aliases) or "-"),
        ("inputs", ", ".join(c.name for c in a.signature.inputs), ", ".join(c.name for c in b.signature.inputs)),
        ("datasets", ", ".join(f"{i['dataset']}@{i['version']}" for i in a.inputs) or "-",
         ", ".join(f"{i['dataset']}@{i['version']}" for i in b.inputs) or "-")]
    for key in sorted(set(a.metrics) | set(b.metrics)):
        rows.append((f"metric {key}", a.metrics.get(key), b.metrics.get(key)))
    if args.json:
        emit_json(clean_json({"a": a.to_dict(), "b": b.to_dict(),
                              "rows": [{"field": f, "a": x, "b": y, "differs": x != y} for f, x, y in rows]}))
        return 0
    table(["", "field", a.ref, b.ref], [("*" if x != y else "", f, fmt_value(x), fmt_value(y)) for f, x, y in rows],
          max_width=60)
    return 0


# ------------------------------------------------------------------------------------------------------ aliases
def _print_change(args: argparse.Namespace, name: str, change: Any) -> None:
    if args.json:
        emit_json(change.to_dict() | {"model": name})
        return
    frm = f"v{change.from_version}" if change.from_version is not None else "nothing"
    to = f"v{change.to_version}" if change.to_version is not None else "nothing"
    print(f"{name}@{change.alias}: {frm} -> {to} ({change.kind}, by {change.actor}"
          + (f", because {change.reason}" if change.reason else "") + ")")


def cmd_alias_set(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        change = _store(ws).set_alias(args.name, args.alias, args.version, reason=args.reason)
    _print_change(args, args.name, change)
    return 0


def cmd_alias_remove(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        change = _store(ws).remove_alias(args.name, args.alias, reason=args.reason)
    _print_change(args, args.name, change)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        change = _store(ws).rollback(args.name, args.alias, reason=args.reason)
    _print_change(args, args.name, change)
    return 0


def cmd_alias_history(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        store = _store(ws)
        history = store.alias_history(args.name, args.alias)
        if args.at:
            when = parse_when(args.at)
            aliases = [args.alias] if args.alias else sorted({c.alias for c in history})
            at = {a: store.alias_at(args.name, a, when) for a in aliases}
    if args.at:
        if args.json:
            emit_json({"model": args.name, "at": when, "aliases": at})
            return 0
        table(["alias", f"version at {fmt_time(when)}"], [(a, f"v{v}" if v is not None else "none")
                                                          for a, v in at.items()])
        return 0
    if args.json:
        emit_json([c.to_dict() | {"model": args.name} for c in history])
        return 0
    table(["when", "alias", "change", "from", "to", "by", "reason"],
          [(fmt_time(c.ts), c.alias, c.kind, f"v{c.from_version}" if c.from_version is not None else "-",
            f"v{c.to_version}" if c.to_version is not None else "-", c.actor, c.reason or "-") for c in history],
          max_width=70)
    return 0


# ------------------------------------------------------------------------------------------------------ predict
def cmd_predict(args: argparse.Namespace) -> int:
    from mlops_desktop.progress import Progress
    from mlops_desktop.registry.batch import predict_batch

    tty = sys.stderr.isatty() and not args.json

    def report(fraction: float, message: str) -> None:
        if tty:
            print(f"\r{fraction:6.1%} {message:<40}", end="", file=sys.stderr, flush=True)

    keep = [c.strip() for c in args.keep.split(",") if c.strip()] if args.keep is not None else None
    with open_workspace(args) as ws:
        result = predict_batch(ws, args.ref, input_path=args.input, dataset=args.dataset, output=args.output,
                               into_dataset=args.into_dataset, keep=keep, batch_rows=args.batch_rows,
                               prefer_onnx=not args.no_onnx, progress=Progress(report, min_step=0.01))
    if tty:
        print(file=sys.stderr)
    if args.json:
        emit_json(result.to_dict())
    else:
        rate = result.rows / result.seconds if result.seconds else 0.0
        print(f"scored {result.rows:,} rows with {result.model} ({result.serving_path}) in {result.seconds:.2f}s "
              f"({rate:,.0f} rows/s) -> {result.output}")
    return 0


# ------------------------------------------------------------------------------------------------------ audit
def cmd_audit_log(args: argparse.Namespace) -> int:
    from mlops_desktop import audit

    kind, prefix = (None, args.kind) if args.kind and args.kind.endswith(".") else (args.kind, None)
    with open_workspace(args) as ws:
        found = audit.events(ws.db, subject=args.subject, kind=kind, kind_prefix=prefix,
                             since=parse_when(args.since, end_of_day=False) if args.since else None,
                             until=parse_when(args.until) if args.until else None,
                             limit=args.limit or None, newest_first=bool(args.limit))
    if args.limit:
        found.reverse()
    if args.json:
        emit_json([e.to_dict() for e in found])
        return 0
    table(["id", "when", "actor", "kind", "subject", "from", "to", "reason"],
          [(e.id, fmt_time(e.ts), e.actor, e.kind, e.subject, e.from_value or "-", e.to_value or "-", e.reason or "-")
           for e in found], max_width=60)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from mlops_desktop import audit

    with open_workspace(args) as ws:
        report = audit.verify(ws.db)
    if args.json:
        emit_json(report.to_dict())
    elif report.ok:
        print(f"audit log intact: {report.events} event(s), head {report.head}")
    else:
        print(f"audit log damaged: {len(report.problems)} problem(s) in {report.events} event(s)", file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
    return 0 if report.ok else 1
