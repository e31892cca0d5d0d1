"""`mlops-desktop backtest ...`: run a back-test (here or as a job), list, show and compare back-tests."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import clean_json, emit_json, fmt_time, fmt_value, table

MAIN_METRIC = {"classification": "accuracy", "regression": "rmse"}
LOWER_IS_BETTER = ("rmse", "mae")


def register(sub: argparse._SubParsersAction) -> None:
    bt = sub.add_parser("backtest", help="replay a time-ordered dataset window by window through model versions "
                        "or walk-forward refits; compare versions per window")
    bs = bt.add_subparsers(dest="backtest_command", metavar="COMMAND", required=True)
    p = command(bs, "run", cmd_run, "run a back-test and store it as runs (a parent and a child per window)")
    p.add_argument("--dataset", "-d", required=True, metavar="NAME[@VERSION]", help="a lake dataset version")
    p.add_argument("--time-col", "-t", required=True, metavar="COL", help="the column that orders the rows in time")
    p.add_argument("--versions", default="", metavar="M/1,M/2", help="model versions to replay (no refit)")
    p.add_argument("--test-window", required=True, metavar="LEN", help="length of each test window: 7d, 12h, 30m, "
                   "90s, 2w, 500rows, or a number in the time column's unit")
    p.add_argument("--stride", metavar="LEN", help="how far each window moves on (default: the test window)")
    p.add_argument("--train-window", metavar="LEN", help="sliding train window of this length (default: expanding, "
                   "from the first row)")
    p.add_argument("--gap", metavar="LEN", help="embargo between a train window's end and its test window")
    p.add_argument("--refit-every", type=int, metavar="K", help="walk-forward: refit --recipe every K windows")
    p.add_argument("--recipe", metavar="ESTIMATOR[:k=v,...]", help="walk-forward: a scikit-learn estimator class, "
                   "e.g. sklearn.ensemble.RandomForestRegressor:n_estimators=50")
    p.add_argument("--initial-train", metavar="LEN", help="walk-forward: the first train window (default: "
                   "--train-window, else one test window)")
    p.add_argument("--target", metavar="COL", help="the column of true values (default: the versions' runs' target)")
    p.add_argument("--task", choices=["classification", "regression"], help="default: the versions' signature")
    p.add_argument("--drop-ragged", action="store_true", help="leave out a last window the data ends inside")
    p.add_argument("--experiment", "-e", default="backtests", help="experiment of the runs (default backtests)")
    p.add_argument("--no-onnx", action="store_true", help="score with the flavor's own path, not the ONNX fast path")
    p.add_argument("--job", action="store_true", help="run as a job (listed by `jobs list`, cancel with "
                   "`jobs cancel`); with --follow, stream its log")
    p.add_argument("--host", default="local", help="with --job: the host to run on (local, or an SSH host: the "
                   "dataset's parts and the bundles are synced there)")
    p.add_argument("--follow", "-f", action="store_true", help="with --job: follow the job's log until it ends")
    command(bs, "list", cmd_list, "list back-tests, the latest first")
    p = command(bs, "show", cmd_show, "a back-test's windows with each version's metrics, and the aggregate")
    p.add_argument("id", help="back-test number, or its parent run id (a unique prefix is enough)")
    p = command(bs, "compare", cmd_compare, "versions side by side per window for one metric: best marked *, "
                "windows won, aggregate")
    p.add_argument("id", help="back-test number, or its parent run id")
    p.add_argument("--metric", "-m", help="default: accuracy (classification) or rmse (regression)")


def _spec(args: argparse.Namespace) -> Any:
    from mlops_desktop.backtest.api import BacktestSpec

    return BacktestSpec(dataset=args.dataset, time_col=args.time_col, versions=args.versions,
                        test_window=args.test_window, stride=args.stride or args.test_window,
                        train_window=args.train_window, gap=args.gap, refit_every=args.refit_every,
                        recipe=args.recipe, target=args.target, task=args.task, initial_train=args.initial_train,
                        keep_ragged=not args.drop_ragged, experiment=args.experiment, prefer_onnx=not args.no_onnx)


def cmd_run(args: argparse.Namespace) -> int:
    if args.job:
        return _run_as_job(args)
    import signal
    import threading

    from mlops_desktop import envvars
    from mlops_desktop.backtest.api import run_backtest
    from mlops_desktop.errors import Cancelled
    from mlops_desktop.progress import Progress

    spec = _spec(args)
    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    # `jobs cancel` sends SIGTERM: stop after the window being scored, marking the runs killed
    signal.signal(signal.SIGTERM, lambda signum, frame: cancel.set())
    quiet = args.json

    def report(fraction: float, message: str) -> None:
        if not quiet:
            print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    try:
        with open_workspace(args) as ws:
            try:
                result = run_backtest(ws, spec, progress=Progress(report, cancel_event=cancel, min_step=0.0),
                                      parent_run=envvars.MLOPS_RUN_ID.get() or None)
            except Cancelled:
                print("mlops-desktop: back-test cancelled; the windows scored so far are kept", file=sys.stderr)
                return 130
            _print_result(args, result)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _run_as_job(args: argparse.Namespace) -> int:
    from mlops_desktop.cli.execution_cmds import _executor, _follow, _print_jobs
    from mlops_desktop.errors import UsageError
    from mlops_desktop.execution import JobRequest

    spec = _spec(args)
    if args.host == "local":
        argv = [sys.executable, "-u", "-m", "mlops_desktop", "backtest", "run", *_rebuild_argv(args)]
        req = JobRequest(host=args.host, kind="command", command=argv, experiment=args.experiment,
                         name=f"backtest {args.dataset}", project_dir="")
    else:
        from mlops_desktop.backtest.remote import MODULE, PLAN, pack

        with open_workspace(args) as ws:
            python = ws.db.query("SELECT python FROM hosts WHERE name = ?", (args.host,))
            if not python:
                raise UsageError(f"no host {args.host!r}", hint="`hosts list` shows them")
            folder = pack(ws, spec)  # checks the spec and plans the windows here; the host only scores
        req = JobRequest(host=args.host, kind="command", command=[python[0][0] or "python3", "-u", "-m", MODULE, PLAN],
                         experiment=args.experiment, name=f"backtest {args.dataset}", project_dir=str(folder),
                         confirm_sync=True)
    with open_workspace(args) as ws, _executor(ws, args) as ex:
        jobs = ex.submit(req)
        ex.start_ready()
        jobs = [ex.jobs.get(j.id) for j in jobs]
        if not args.follow:
            _print_jobs(args, jobs)
            if not args.json:
                print(f"follow it with: mlops-desktop jobs logs {jobs[0].id} --follow", file=sys.stderr)
            return 1 if any(j.state == "failed" for j in jobs) else 0
        code = _follow(ex, [j.id for j in jobs], args)
        if args.host != "local":
            from mlops_desktop.backtest.remote import import_job

            result = import_job(ws, ex.jobs.get(jobs[0].id))
            if result is not None:
                _print_result(args, result)
        return code


def _rebuild_argv(args: argparse.Namespace) -> list[str]:
    """`backtest run`'s options from the parsed namespace (what the job runs again)."""
    out = ["--dataset", args.dataset, "--time-col", args.time_col, "--test-window", args.test_window]
    for flag, value in (("--versions", args.versions), ("--stride", args.stride),
                        ("--train-window", args.train_window), ("--gap", args.gap),
                        ("--refit-every", args.refit_every), ("--recipe", args.recipe),
                        ("--initial-train", args.initial_train), ("--target", args.target), ("--task", args.task),
                        ("--experiment", args.experiment)):
        if value not in (None, ""):
            out += [flag, str(value)]
    if args.drop_ragged:
        out.append("--drop-ragged")
    if args.no_onnx:
        out.append("--no-onnx")
    return out


def _bound(value: Any) -> str:
    import datetime as dt

    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.second or value.microsecond else "%Y-%m-%d %H:%M")
    return str(value)


def _print_result(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        emit_json(clean_json(result.to_dict()))
        return
    print(f"back-test {result.id}: {result.status}, {result.dataset_version}, {len(result.windows)} windows, "
          f"target {result.target} ({result.task}); parent run {result.parent_run[:12]}")
    if result.error:
        print(f"  error: {result.error}")
    metrics = result.metric_names or list(MAIN_METRIC.values())
    if len(metrics) * len(result.labels) > 6:  # keep the table readable; --json and `compare -m` give the rest
        metrics = [MAIN_METRIC.get(result.task, metrics[0])]
        print(f"  showing {metrics[0]}; others: {', '.join(m for m in result.metric_names if m != metrics[0])} "
              f"(backtest compare {result.id} -m METRIC, or --json)")
    headers = ["window", "test start", "test end", "rows"] + [f"{lab} {m}" for lab in result.labels for m in metrics]
    rows = [[w.index, _bound(w.test_start), _bound(w.test_end) + (" (ragged)" if w.ragged else ""), w.rows]
            + [w.metrics.get(lab, {}).get(m) for lab in result.labels for m in metrics] for w in result.windows]
    rows.append(["all", "", "", sum(w.rows for w in result.windows)]
                + [result.aggregate.get(lab, {}).get(m) for lab in result.labels for m in metrics])
    table(headers, rows)


def cmd_list(args: argparse.Namespace) -> int:
    from mlops_desktop.backtest.api import list_backtests

    with open_workspace(args) as ws:
        found = list_backtests(ws)
        if args.json:
            emit_json(clean_json([b.to_dict() | {"windows": None} for b in found]))
            return 0
        table(["id", "status", "dataset", "versions", "test", "stride", "created", "run"],
              [[b.id, b.status, b.dataset_version, ", ".join(b.labels), b.spec.get("test_window"),
                b.spec.get("stride"), fmt_time(b.created_at), b.parent_run[:12]] for b in found])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from mlops_desktop.backtest.api import load_backtest

    with open_workspace(args) as ws:
        result = load_backtest(ws, args.id)
        _print_result(args, result)
        if not args.json:
            spec = result.spec
            parts = [f"{k.replace('_', '-')} {spec[k]}" for k in ("test_window", "stride", "train_window", "gap",
                                                                   "refit_every", "recipe") if spec.get(k)]
            print("spec: " + ", ".join(parts) + f"; time column {spec.get('time_col')}")
            print(f"again: mlops-desktop backtest run {shlex.join(_rebuild_from_spec(spec))}")
    return 0


def _rebuild_from_spec(spec: dict[str, Any]) -> list[str]:
    out = ["--dataset", spec["dataset"], "--time-col", spec["time_col"], "--test-window", spec["test_window"]]
    for key in ("versions", "stride", "train_window", "gap", "refit_every", "recipe", "initial_train", "target",
                "task"):
        value = spec.get(key)
        if isinstance(value, list):
            value = ",".join(value)
        if value not in (None, ""):
            out += ["--" + key.replace("_", "-"), str(value)]
    return out


def compare(result: Any, metric: str | None) -> dict[str, Any]:
    """Per window: each label's value of `metric`, the best label; windows won; the aggregate."""
    metric = metric or MAIN_METRIC.get(result.task, "accuracy")
    lower = metric in LOWER_IS_BETTER
    labels = result.labels
    wins = {lab: 0 for lab in labels}
    windows = []
    for w in result.windows:
        values = {lab: w.metrics.get(lab, {}).get(metric) for lab in labels}
        present = {k: v for k, v in values.items() if v is not None}
        best = (min if lower else max)(present, key=lambda k: present[k]) if len(present) > 1 else None
        if best is not None:
            wins[best] += 1
        windows.append({"index": w.index, "test_start": w.test_start, "rows": w.rows, "values": values,
                        "best": best})
    agg = {lab: result.aggregate.get(lab, {}).get(metric) for lab in labels}
    return {"id": result.id, "metric": metric, "lower_is_better": lower, "labels": labels, "windows": windows,
            "wins": wins, "aggregate": agg}


def cmd_compare(args: argparse.Namespace) -> int:
    from mlops_desktop.backtest.api import load_backtest, to_jsonable
    from mlops_desktop.errors import UsageError

    with open_workspace(args) as ws:
        result = load_backtest(ws, args.id)
    if args.metric and args.metric not in result.metric_names:
        raise UsageError(f"back-test {result.id} has no metric {args.metric!r}",
                         hint="its metrics: " + ", ".join(result.metric_names))
    cmp = compare(result, args.metric)
    if args.json:
        emit_json(clean_json({**cmp, "windows": [{**w, "test_start": to_jsonable(w["test_start"])}
                                                 for w in cmp["windows"]]}))
        return 0
    print(f"back-test {result.id}: {cmp['metric']} per window ({'lower' if cmp['lower_is_better'] else 'higher'} "
          "is better; * marks the best)")

    def cell(value: Any, star: bool) -> str:
        return fmt_value(value) + (" *" if star else "")

    rows = [[w["index"], _bound(w["test_start"]), w["rows"]]
            + [cell(w["values"][lab], w["best"] == lab) for lab in cmp["labels"]] for w in cmp["windows"]]
    rows.append(["won", "", ""] + [cmp["wins"][lab] for lab in cmp["labels"]])
    rows.append(["all", "", sum(w.rows for w in result.windows)] + [cmp["aggregate"][lab] for lab in cmp["labels"]])
    table(["window", "test start", "rows", *cmp["labels"]], rows)
    return 0
