"""`mlops-desktop experiments|runs|import`: the tracking store from the command line."""

from __future__ import annotations

import argparse
import time

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import clean_json, emit_json, fmt_duration, fmt_time, fmt_value, table


def register(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("experiments", help="list and create experiments")
    exp_sub = exp.add_subparsers(dest="experiments_command", metavar="COMMAND", required=True)
    command(exp_sub, "list", cmd_experiments_list, "list experiments with their run counts")
    p = command(exp_sub, "create", cmd_experiments_create, "create an experiment")
    p.add_argument("name")

    runs = sub.add_parser("runs", help="search, show, compare, delete and sync runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    p = command(runs_sub, "list", cmd_runs_list, "search runs (filter, order, paginate)")
    p.add_argument("--experiment", "-e", action="append", help="experiment name or id (repeatable)")
    p.add_argument("--filter", "-f", default="",
                   help="e.g. \"params.lr < 0.01 and metrics.val_acc > 0.9 and status = finished\"")
    p.add_argument("--order-by", "-o", action="append", help="e.g. 'metrics.val_acc DESC' (repeatable)")
    p.add_argument("--limit", "-n", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--deleted", action="store_true", help="include deleted runs")
    p = command(runs_sub, "show", cmd_runs_show, "show one run: fields, params, tags, metrics, artifacts")
    p.add_argument("run", help="run id (or a unique prefix)")
    p = command(runs_sub, "compare", cmd_runs_compare, "compare runs side by side; differing rows are marked *")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p = command(runs_sub, "history", cmd_runs_history, "print a metric's history (downsampled with --points)")
    p.add_argument("run")
    p.add_argument("key")
    p.add_argument("--points", type=int, default=0, help="keep min/max of this many buckets (0 = every point)")
    p = command(runs_sub, "delete", cmd_runs_delete, "delete runs (restorable with `runs restore` until --purge)")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--purge", action="store_true", help="also remove every deleted run and its data for good")
    p = command(runs_sub, "restore", cmd_runs_restore, "restore deleted runs")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p = command(runs_sub, "sync", cmd_runs_sync, "import spool files of offline or remote runs (idempotent)")
    p.add_argument("spools", nargs="+", metavar="SPOOL")

    imp = sub.add_parser("import", help="import from other tools")
    imp_sub = imp.add_subparsers(dest="import_command", metavar="SOURCE", required=True)
    p = command(imp_sub, "mlflow", cmd_import_mlflow, "import experiments, runs, params, tags and metric "
                "histories from an MLflow SQLite database")
    p.add_argument("--tracking-uri", required=True, help="sqlite:///PATH/TO/mlflow.db")
    p.add_argument("--experiment", action="append", help="only this experiment (repeatable)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="registry: unpickle pickled scikit-learn models (only if you produced those files yourself)")


def cmd_experiments_list(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        store = ws.tracking
        counts = store.experiment_run_counts()
        exps = store.list_experiments()
    if args.json:
        emit_json([dict(e.to_dict(), runs=counts.get(e.id, 0)) for e in exps])
    else:
        table(["id", "name", "runs", "created"], [(e.id, e.name, counts.get(e.id, 0), fmt_time(e.created_at))
                                                   for e in exps])
    return 0


def cmd_experiments_create(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        exp = ws.tracking.create_experiment(args.name)
    emit_json(exp.to_dict()) if args.json else print(f"experiment {exp.name} (id {exp.id})")
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        store = ws.tracking
        store.reap_lost_runs()
        exp_ids = [store.resolve_experiment(e).id for e in args.experiment] if args.experiment else None
        page = store.search_runs(exp_ids, args.filter, args.order_by, args.limit, args.offset, args.deleted)
        names = {e.id: e.name for e in store.list_experiments()}
    if args.json:
        emit_json(clean_json({"total": page.total, "offset": page.offset, "next_offset": page.next_offset,
                              "runs": [r.to_dict() for r in page.runs]}))
        return 0
    metric_keys = _common_keys([r.metrics for r in page.runs], 3)
    param_keys = _common_keys([r.params for r in page.runs], 3)
    rows: list[list[object]] = []
    for r in page.runs:
        rows.append([r.uuid[:8], r.name, names.get(r.experiment_id, r.experiment_id), r.status,
                     fmt_time(r.start_time), fmt_duration(_duration(r))]
                    + [r.params.get(k) for k in param_keys]
                    + [r.metrics[k].last if k in r.metrics else None for k in metric_keys])
    table(["run", "name", "experiment", "status", "started", "duration"] + [f"p.{k}" for k in param_keys]
          + [f"m.{k}" for k in metric_keys], rows)
    shown = f"{page.offset + 1}-{page.offset + len(page.runs)}" if page.runs else "0"
    print(f"({shown} of {page.total} runs" + (f"; next: --offset {page.next_offset})" if page.next_offset else ")"))
    return 0


def _duration(run) -> float | None:  # noqa: ANN001
    return run.duration if run.end_time is not None else (time.time() - run.start_time if run.status == "running"
                                                          else None)


def _common_keys(dicts: list[dict], limit: int) -> list[str]:
    counts: dict[str, int] = {}
    for d in dicts:
        for k in d:
            counts[k] = counts.get(k, 0) + 1
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


ERROR_TAGS = ("mlops.error", "mlops.error.type", "mlops.error.message", "mlops.error.exit_code",
              "mlops.error.traceback", "mlops.error.output_tail")


def run_failure(tags: dict[str, str]) -> dict[str, str]:
    """Why a run failed, from its mlops.error* tags (the tracking client's and the job executor's)."""
    return {k.removeprefix("mlops.error.") if k != "mlops.error" else "summary": v
            for k, v in tags.items() if k in ERROR_TAGS}


def cmd_runs_show(args: argparse.Namespace) -> int:
    from mlops_desktop.tracking.mlflow_tables import MlflowTables

    with open_workspace(args) as ws:
        store = ws.tracking
        store.reap_lost_runs()
        run = store.get_run(store.resolve_run_uuid(args.run))
        exp = store.get_experiment(run.experiment_id)
        artifacts = store.list_artifacts(run.uuid)
        inputs = store.list_inputs(run.uuid)
        models = MlflowTables(store).search_logged_models(source_run=run.uuid)
    failure = run_failure(run.tags)
    if args.json:
        emit_json(clean_json(dict(run.to_dict(), experiment=exp.name, artifacts=[a.to_dict() for a in artifacts],
                                  inputs=[i.to_dict() for i in inputs], models=[m.to_dict() for m in models],
                                  failure=failure or None)))
        return 0
    git = "-" if not run.git_commit else run.git_commit[:12] + (" (dirty)" if run.git_dirty else "")
    table(["field", "value"], [
        ("run", run.uuid), ("name", run.name or "-"), ("experiment", exp.name), ("status", run.status),
        ("host", run.host), ("user", run.user), ("command", run.command or "-"), ("git", git),
        ("started", fmt_time(run.start_time)), ("ended", fmt_time(run.end_time)),
        ("duration", fmt_duration(_duration(run))), ("parent", run.parent_uuid or "-"), ("notes", run.notes or "-"),
    ], max_width=100)
    if failure:
        _print_failure(run.status, failure)
    print()
    table(["param", "value"], sorted(run.params.items()), max_width=80)
    tags = sorted((k, v) for k, v in run.tags.items() if k not in ERROR_TAGS)
    if tags:
        print()
        table(["tag", "value"], tags, max_width=80)
    print()
    table(["metric", "last", "min", "max", "points", "last step"],
          [(k, m.last, m.min, m.max, m.count, m.last_step) for k, m in sorted(run.metrics.items())])
    if artifacts:
        print()
        table(["artifact", "bytes", "sha256"], [(a.path, a.size, a.digest[:16]) for a in artifacts], max_width=80)
    if models:
        print()
        table(["logged model", "name", "status", "files", "bytes"],
              [(m.model_id, m.name, m.status.lower(), len(m.artifacts), sum(a.size for a in m.artifacts))
               for m in models], max_width=80)
    if inputs:
        print()
        table(["dataset", "version", "context"], [(i.dataset, i.version, i.context) for i in inputs])
    return 0


def _print_failure(status: str, failure: dict[str, str]) -> None:
    """Why the run failed: the summary, exception type and message, exit code, then traceback and output tail."""
    print()
    print(f"why it {'failed' if status != 'killed' else 'was killed'}:")
    rows = [(label, failure[key]) for key, label in (("summary", "error"), ("type", "exception"),
                                                     ("message", "message"), ("exit_code", "exit code"))
            if failure.get(key)]
    if rows:
        table(["", ""], rows, max_width=100)
    for key, title in (("traceback", "traceback"), ("output_tail", "last lines of output")):
        if failure.get(key):
            print(f"  {title}:")
            for line in failure[key].rstrip("\n").splitlines():
                print(f"    {line}")


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from mlops_desktop.tracking.compare import compare_runs

    with open_workspace(args) as ws:
        store = ws.tracking
        runs = store.get_runs([store.resolve_run_uuid(r) for r in args.runs])
        comparison = compare_runs(runs)
    if args.json:
        emit_json(clean_json(comparison.to_dict()))
        return 0
    headers = ["", "field"] + [r.name or r.uuid[:8] for r in runs]
    rows = [("*" if row.differs else "", row.field, *[fmt_value(v) for v in row.values]) for row in comparison.rows]
    table(headers, rows)
    return 0


def cmd_runs_history(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        store = ws.tracking
        uuid = store.resolve_run_uuid(args.run)
        hist = (store.metric_history_downsampled(uuid, args.key, args.points) if args.points
                else store.metric_history(uuid, args.key))
    if args.json:
        emit_json(clean_json({"key": hist.key, "steps": hist.steps.tolist(), "timestamps_ms": hist.timestamps_ms.tolist(),
                              "values": hist.values.tolist()}))
    else:
        print("step,timestamp_ms,value")
        for s, t, v in zip(hist.steps.tolist(), hist.timestamps_ms.tolist(), hist.values.tolist(), strict=True):
            print(f"{s},{t},{v!r}")
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        store = ws.tracking
        uuids = [store.resolve_run_uuid(r) for r in args.runs]
        for uuid in uuids:
            store.delete_run(uuid)
        purged = store.purge_deleted() if args.purge else 0
    if args.json:
        emit_json({"deleted": uuids, "purged": purged})
    else:
        print(f"deleted {len(uuids)} run(s)" + (f"; purged {purged} for good" if args.purge
                                                else "; `mlops-desktop runs restore RUN` brings them back"))
    return 0


def cmd_runs_restore(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        store = ws.tracking
        uuids = [store.resolve_run_uuid(r) for r in args.runs]
        for uuid in uuids:
            store.restore_run(uuid)
    emit_json({"restored": uuids}) if args.json else print(f"restored {len(uuids)} run(s)")
    return 0


def cmd_runs_sync(args: argparse.Namespace) -> int:
    from mlops_desktop.tracking.spool import import_spool

    results = []
    with open_workspace(args) as ws:
        for spool in args.spools:
            results.append(import_spool(ws.tracking, spool))
    if args.json:
        emit_json([r.to_dict() for r in results])
    else:
        table(["spool", "records", "points", "runs"],
              [(s, r.records, r.metric_points, len(r.runs)) for s, r in zip(args.spools, results, strict=True)],
              max_width=80)
    return 0


def cmd_import_mlflow(args: argparse.Namespace) -> int:
    import sys

    from mlops_desktop.progress import Progress
    from mlops_desktop.tracking.mlflow_import import import_mlflow

    def report(fraction: float, message: str) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{fraction:5.0%} {message}", end="", file=sys.stderr, flush=True)

    from mlops_desktop.registry.mlflow_import import import_registry
    from mlops_desktop.tracking.mlflow_import import sqlite_path_from_uri

    with open_workspace(args) as ws:
        stats = import_mlflow(ws.tracking, args.tracking_uri, args.experiment, Progress(report, min_step=0.01))
        models = import_registry(ws, sqlite_path_from_uri(args.tracking_uri), allow_pickle=args.allow_pickle)
    if args.json:
        emit_json(stats.to_dict() | {"registry": models.to_dict()})
    else:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        table(["imported", "count"], [("experiments", stats.experiments), ("runs", stats.runs),
                                      ("runs already present", stats.runs_skipped), ("params", stats.params),
                                      ("metric points", stats.metric_points), ("artifacts", stats.artifacts),
                                      ("registered models", models.models), ("model versions", models.versions),
                                      ("model versions already present", models.versions_skipped),
                                      ("model versions not imported", models.versions_refused),
                                      ("aliases", models.aliases)])
        for w in stats.warnings + models.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0
