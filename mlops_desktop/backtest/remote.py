"""Back-tests as jobs on SSH hosts: the dataset version's parts, the versions' bundles and the planned windows are
packed into a folder that the execution layer syncs as the job's project; on the host
``python -m mlops_desktop.backtest.remote plan.json`` scores each window (the same `score_window` as here) and
prints one marked JSON line per window; back here the job's log is turned into the back-test's runs.

The host needs Python with polars, numpy, scikit-learn (and onnxruntime for the ONNX fast path); MLOps Desktop's
own package is synced by the execution layer. Bundles are verified on the host against their hashes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import MlopsError

if TYPE_CHECKING:
    from mlops_desktop.backtest.api import BacktestResult, BacktestSpec
    from mlops_desktop.workspace import Workspace

PLAN = "plan.json"
WINDOW_MARK = "@@mlops-backtest-window "
DONE_MARK = "@@mlops-backtest-done"
MODULE = "mlops_desktop.backtest.remote"


def pack(ws: Workspace, spec: BacktestSpec) -> Path:
    """Plan locally (the checks and the windows), then lay out what the host needs: data/, models/, plan.json."""
    from mlops_desktop import registry
    from mlops_desktop.backtest.engine import prepare
    from mlops_desktop.data import lake

    prep = prepare(ws, spec)
    root = ws.paths.root / "backtest-packs" / secrets.token_hex(6)
    (root / "data").mkdir(parents=True)
    for i, part in enumerate(lake.data_files(ws, prep.version)):
        target = root / "data" / f"{i:05d}.parquet"
        try:
            os.link(part, target)  # the lake's parts are immutable: a hard link costs nothing
        except OSError:
            shutil.copyfile(part, target)
    versions = {}
    for ref in prep.predictors:
        mv = registry.resolve(ws, ref)
        shutil.copytree(registry.bundle_dir(ws, mv), root / "models" / mv.bundle_hash)
        versions[ref] = mv.bundle_hash
    axis = prep.axis
    plan = {"spec": spec.to_dict(), "dataset_version": prep.version.ref, "target": prep.target, "task": prep.task,
            "axis": {"column": axis.column, "kind": axis.kind, "unit_s": axis.unit_s, "time_zone": axis.time_zone},
            "windows": [w.to_dict() for w in prep.windows], "columns": prep.columns, "versions": versions,
            "features": prep.refit.features if prep.refit else [],
            "dtypes": prep.refit.dtypes if prep.refit else {}}
    (root / PLAN).write_text(json.dumps(plan))
    return root


def run_plan(plan_path: Path, out: Any = None) -> int:
    """On the host: score every window of the plan, printing a marked line per window."""
    import glob
    import signal
    import threading

    from mlops_desktop.backtest.engine import Prepared, _window_frame, score_window
    from mlops_desktop.backtest.refit import Refitter
    from mlops_desktop.backtest.source import FileSource, TimeAxis
    from mlops_desktop.backtest.windows import Window
    from mlops_desktop.progress import Progress
    from mlops_desktop.registry import load_predictor_from_dir

    out = out or sys.stdout
    base = plan_path.parent
    plan = json.loads(plan_path.read_text())
    spec = plan["spec"]
    axis = TimeAxis(**plan["axis"])
    source = FileSource(sorted(glob.glob(str(base / "data" / "*.parquet"))), axis)
    predictors = {ref: load_predictor_from_dir(base / "models" / h, h, prefer_onnx=spec.get("prefer_onnx", True))
                  for ref, h in plan["versions"].items()}
    refit = None
    if spec.get("recipe"):
        refit = Refitter.parse(spec["recipe"], spec.get("refit_every") or 1)
        refit.bind(plan["features"], plan["dtypes"], plan["task"])
    windows = [Window(**w) for w in plan["windows"]]
    prep = Prepared(None, axis, source, windows, predictors, plan["task"], plan["target"], plan["columns"], refit)
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: cancel.set())  # `jobs cancel`: stop after this window
    progress = Progress(cancel_event=cancel)
    for i, w in enumerate(windows):
        if cancel.is_set():
            print("back-test cancelled", file=out, flush=True)
            return 130
        frame = _window_frame(prep, w)
        per_label, stats, train_rows = score_window(prep, w, frame, progress)
        record = {"window": w.to_dict(), "rows": frame.height, "train_rows": train_rows,
                  "stats": {label: s.to_dict() for label, s in stats.items()}}
        print(WINDOW_MARK + json.dumps(record), file=out, flush=True)
        print(f"window {i + 1}/{len(windows)} scored", file=out, flush=True)
    print(DONE_MARK, file=out, flush=True)
    return 0


def import_job(ws: Workspace, job: Any) -> BacktestResult | None:
    """Turn a finished remote back-test job's log into its back-test (the job's run as the parent); once."""
    from mlops_desktop.backtest import metrics as bm
    from mlops_desktop.backtest import records
    from mlops_desktop.backtest.api import BacktestSpec, WindowResult
    from mlops_desktop.backtest.source import TimeAxis
    from mlops_desktop.data import catalog
    from mlops_desktop.execution.backends import local_job_dir
    from mlops_desktop.execution.launch import LOG

    if not job.run_uuid or ws.db.query("SELECT 1 FROM backtests WHERE parent_run = ?", (job.run_uuid,)):
        return None
    plan = json.loads((Path(job.project_dir) / PLAN).read_text())
    log = local_job_dir(ws, job.id) / LOG
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    spec = BacktestSpec.from_dict(plan["spec"])
    version = catalog.resolve(ws.db, plan["dataset_version"])
    labels = [*plan["versions"], *(["refit"] if spec.recipe else [])]
    backtest_id, parent = records.create(ws, spec, version, plan["task"], plan["target"], labels, job.run_uuid)
    axis = TimeAxis(**plan["axis"])
    per_label: dict[str, list[bm.Stats]] = {label: [] for label in labels}
    for line in lines:
        if not line.startswith(WINDOW_MARK):
            continue
        record = json.loads(line[len(WINDOW_MARK):])
        w = record["window"]
        stats = {label: bm.Stats.from_dict(d) for label, d in record["stats"].items()}
        for label, s in stats.items():
            per_label.setdefault(label, []).append(s)
        records.add_window(ws, backtest_id, parent, WindowResult(
            w["index"], axis.value(w["train_start"]), axis.value(w["train_end"]), axis.value(w["test_start"]),
            axis.value(w["test_end"]), record["rows"], {k: bm.window_metrics(s) for k, s in stats.items()},
            w["ragged"], record["train_rows"]))
    done = DONE_MARK in lines
    status = "finished" if done and job.state == "succeeded" else ("killed" if job.state == "cancelled" else "failed")
    error = "" if status == "finished" else ("cancelled" if status == "killed" else
                                             f"the job on {job.host} ended {job.state}: {job.error or 'see its log'}")
    aggregate = {label: bm.aggregate(s) for label, s in per_label.items() if s} if status == "finished" else {}
    records.finish(ws, backtest_id, parent, status, aggregate, error=error)
    return records.load(ws, backtest_id)


def import_pending(ws: Workspace) -> list[int]:
    """Import every finished remote back-test job not imported yet (called when back-tests are listed)."""
    from mlops_desktop.execution.jobstore import JobStore

    rows = ws.db.query(
        "SELECT id FROM jobs WHERE argv LIKE ? AND state IN ('succeeded', 'failed', 'cancelled', 'lost') "
        "AND run_uuid IS NOT NULL AND run_uuid NOT IN (SELECT parent_run FROM backtests)", (f"%{MODULE}%",))
    done = []
    store = JobStore(ws)
    for (job_id,) in rows:
        try:
            result = import_job(ws, store.get(job_id))
        except (MlopsError, OSError, ValueError, KeyError):
            continue  # a pack deleted by hand or a log cut short: the job stays as it is, its run says why
        if result is not None:
            done.append(result.id)
    return done


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mlops_desktop.backtest.remote plan.json", file=sys.stderr)
        return 2
    try:
        return run_plan(Path(args[0]).resolve())
    except MlopsError as exc:
        print(f"back-test: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
