"""The back-test loop: check the spec against the dataset and the versions, plan the windows, then per window read
its rows lazily (the next window is read while this one is scored), score every version once (one model call per
version per window), refit the recipe where due, and store the window before going on."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.backtest import metrics as bm
from mlops_desktop.backtest import records
from mlops_desktop.backtest.api import REFIT_LABEL, BacktestResult, BacktestSpec, WindowResult
from mlops_desktop.backtest.source import TimeAxis, WindowSource, numpy_columns, time_axis
from mlops_desktop.backtest.windows import Length, Window, parse_length, plan, row_bounds_to_values
from mlops_desktop.errors import Cancelled, MlopsError, UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

TASKS = ("classification", "regression")


@dataclass
class Prepared:
    version: Any  # the dataset version
    axis: TimeAxis
    source: WindowSource
    windows: list[Window]  # in time-column integers
    predictors: dict[str, Any]  # label -> Predictor
    task: str
    target: str
    columns: list[str]  # what each window reads
    refit: Any = None  # refit.Refitter or None
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [*self.predictors, *([REFIT_LABEL] if self.refit is not None else [])]


def _lengths(spec: BacktestSpec) -> dict[str, Length | None]:
    out = {"test window": parse_length(spec.test_window, "--test-window"),
           "stride": parse_length(spec.stride, "--stride"),
           "train window": parse_length(spec.train_window, "--train-window"),
           "gap": parse_length(spec.gap, "--gap", allow_zero=True),
           "initial train": parse_length(spec.initial_train, "initial train", allow_zero=True)}
    if out["test window"] is None:
        raise UsageError("--test-window is required (e.g. 7d, 12h or 500rows)")
    if out["stride"] is None:
        out["stride"] = out["test window"]
    kinds = {name: length.kind for name, length in out.items() if length is not None}
    if len({k == "rows" for k in kinds.values()}) > 1:
        rows = [n for n, k in kinds.items() if k == "rows"]
        other = [n for n, k in kinds.items() if k != "rows"]
        raise UsageError(f"{', '.join(rows)} counted in rows but {', '.join(other)} in time",
                         hint="give every length in rows (500rows) or every one in time (7d)")
    return out


def _resolve_versions(ws: Workspace, spec: BacktestSpec, schema: dict[str, str]) -> dict[str, Any]:
    from mlops_desktop import registry

    out: dict[str, Any] = {}
    for ref in spec.version_refs():
        mv = registry.resolve(ws, ref)
        missing = [c for c in mv.signature.input_names if c not in schema]
        if missing:
            raise UsageError(f"{spec.dataset} lacks the input column(s) {', '.join(missing)} of {mv.ref}",
                             hint="the model expects: " + ", ".join(mv.signature.input_names))
        out[mv.ref] = mv
    return out


def _target(ws: Workspace, spec: BacktestSpec, versions: dict[str, Any], schema: dict[str, str]) -> str:
    target = spec.target
    if not target:
        for mv in versions.values():
            if mv.run_uuid:
                target = ws.tracking.get_run(mv.run_uuid).params.get("target")
                if target:
                    break
    if not target:
        raise UsageError("which column holds the true values? give --target (the versions' runs do not say)")
    if target not in schema:
        raise UsageError(f"{spec.dataset} has no target column {target!r}", hint="its columns: " + ", ".join(schema))
    return target


def _task(spec: BacktestSpec, versions: dict[str, Any], refit_task: str | None) -> str:
    tasks = {mv.ref: mv.signature.task for mv in versions.values()}
    if refit_task:
        tasks[f"--recipe {(spec.recipe or '').partition(':')[0]}"] = refit_task
    if spec.task:
        if spec.task not in TASKS:
            raise UsageError(f"unknown task {spec.task!r}", hint="use classification or regression")
        return spec.task
    found = set(tasks.values())
    found.discard("other")
    if len(found) > 1:
        raise UsageError("the versions do not share a task: " + ", ".join(f"{k} {v}" for k, v in tasks.items()),
                         hint="back-test classifiers and regressors separately, or give --task")
    if not found:
        raise UsageError("the versions' signatures name no task; give --task classification or regression")
    return found.pop()


def prepare(ws: Workspace, spec: BacktestSpec) -> Prepared:
    from mlops_desktop import registry
    from mlops_desktop.data import catalog

    version = catalog.resolve(ws.db, spec.dataset)
    axis = time_axis(version, spec.time_col)
    lengths = _lengths(spec)
    if not spec.version_refs() and not spec.recipe:
        raise UsageError("give --versions to replay, or --recipe to retrain walk-forward (or both)")
    if spec.refit_every is not None and spec.refit_every < 1:
        raise UsageError(f"--refit-every must be at least 1, got {spec.refit_every}")
    if spec.refit_every is not None and not spec.recipe:
        raise UsageError("--refit-every needs --recipe (what to refit)")
    versions = _resolve_versions(ws, spec, version.schema)
    refitter = None
    if spec.recipe:
        from mlops_desktop.backtest.refit import Refitter

        refitter = Refitter.parse(spec.recipe, spec.refit_every or 1)
    target = _target(ws, spec, versions, version.schema)
    task = _task(spec, versions, refitter.task if refitter else None)
    if refitter is not None:
        first = next(iter(versions.values()), None)
        features = first.signature.input_names if first is not None else \
            [c for c in version.schema if c not in (target, spec.time_col)]
        refitter.bind(features, {c: version.schema[c] for c in features}, task)
    source = WindowSource(ws, version, axis)
    windows = _plan(source, axis, lengths, spec, refitter is not None)
    if not windows:
        raise UsageError(f"{version.ref} is too short for one test window of {spec.test_window} "
                         "after the first train window and the gap")
    predictors = {ref: registry.load_predictor(ws, mv, prefer_onnx=spec.prefer_onnx) for ref, mv in versions.items()}
    columns = list(dict.fromkeys([spec.time_col, target,
                                  *(c for mv in versions.values() for c in mv.signature.input_names),
                                  *(refitter.features if refitter else [])]))
    return Prepared(version, axis, source, windows, predictors, task, target, columns, refitter)


def _plan(source: WindowSource, axis: TimeAxis, lengths: dict[str, Length | None], spec: BacktestSpec,
          refit: bool) -> list[Window]:
    test, stride = lengths["test window"], lengths["stride"]
    train, gap, initial = lengths["train window"], lengths["gap"], lengths["initial train"]
    assert test is not None and stride is not None
    if refit and initial is None and train is None:
        initial = test  # walk-forward needs something to fit the first model on: one test window's worth
    if test.kind == "rows":
        times = source.sorted_times()
        if len(times) == 0:
            raise UsageError(f"{source.version.ref}: the time column {axis.column!r} has no values")
        windows = plan(0, len(times), test=int(test.amount), stride=int(stride.amount),
                       train=int(train.amount) if train else None, gap=int(gap.amount) if gap else 0,
                       initial=int(initial.amount) if initial else None, keep_ragged=spec.keep_ragged)
        return row_bounds_to_values(windows, times, int(times[-1]) + 1)
    span = source.span()
    if span is None:
        raise UsageError(f"{source.version.ref}: the time column {axis.column!r} has no values")

    def units(length: Length | None, name: str) -> int | None:
        if length is None:
            return None
        try:
            return length.in_units(axis.unit_s)
        except UsageError as exc:
            raise UsageError(f"{name}: {exc.message}", hint=exc.hint) from None

    return plan(span[0], span[1], test=units(test, "--test-window") or 0, stride=units(stride, "--stride") or 0,
                train=units(train, "--train-window"), gap=units(gap, "--gap") or 0,
                initial=units(initial, "initial train"), keep_ragged=spec.keep_ragged)


def _score(label: str, predictor: Any, cols: dict[str, Any], target: Any, task: str,
           codes: dict[tuple, Any]) -> bm.Stats:
    try:
        out = predictor.predict({name: cols[name] for name in predictor.signature.input_names})
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{label} could not score the window's rows: {str(exc).splitlines()[0][:300]}") from None
    if task == "classification":
        return _classification(predictor, out, target, codes)
    return bm.regression_stats(target.to_numpy(), out["prediction"])


ARGMAX_PATHS = ("sklearn", "onnxruntime")  # predictors whose label is the arg-max of their probabilities


def _classification(predictor: Any, out: dict[str, Any], target: pl.Series, codes: dict[tuple, Any]) -> bm.Stats:
    """Label codes without comparing strings in Python: the target's through a polars hash map (once per window
    and class list), the prediction's from the arg-max of the probabilities where that is how it was made."""
    import numpy as np
    import polars as pl

    known = np.asarray(list(predictor.signature.classes))
    proba = out.get("probabilities")
    key = tuple(known.tolist())
    if key not in codes:
        try:
            seen = [v for v in target.unique().to_list() if v is not None]
            labels = np.asarray(sorted(set(key) | set(seen)))
        except TypeError:
            raise UsageError(f"the target's values ({target.dtype}) do not compare with the model's classes "
                             f"{list(key)[:5]}") from None
        mapping = {v: i for i, v in enumerate(labels.tolist())}
        yc = target.replace_strict(mapping, default=-1, return_dtype=pl.Int64).to_numpy()
        codes[key] = (labels, mapping, yc)
    labels, mapping, yc = codes[key]
    ordered = len(known) > 0 and (len(known) == 1 or bool(np.all(known[:-1] <= known[1:])))
    if (proba is not None and ordered and predictor.serving_path in ARGMAX_PATHS
            and getattr(proba, "ndim", 0) == 2 and proba.shape[1] == len(known)):
        pc = np.searchsorted(labels, known)[np.asarray(proba).argmax(axis=1)]
    else:
        pred = out["prediction"]
        pc = pl.Series(np.asarray(pred).tolist() if np.asarray(pred).dtype.kind == "O" else pred) \
            .replace_strict(mapping, default=-1, return_dtype=pl.Int64).to_numpy()
        if (pc < 0).any() or not ordered:  # a label outside the window's and the model's: the general path
            return bm.classification_stats(target.to_numpy(), pred, proba, known)
    return bm.stats_from_codes(yc, pc, labels, proba, known)


def _window_frame(prep: Prepared, w: Window) -> pl.DataFrame:
    import polars as pl

    frame = prep.source.read(w.test_start, w.test_end, prep.columns)
    return frame.filter(pl.col(prep.target).is_not_null())


def execute(ws: Workspace, spec: BacktestSpec, progress: Progress, parent_run: str | None = None) -> BacktestResult:
    progress.update(0.0, "checking the dataset and the versions")
    prep = prepare(ws, spec)
    backtest_id, parent = records.create(ws, spec, prep.version, prep.task, prep.target, prep.labels, parent_run)
    stats: dict[str, list[bm.Stats]] = {label: [] for label in prep.labels}
    results: list[WindowResult] = []
    n = len(prep.windows)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest-read")
    started = time.perf_counter()
    try:
        pending: Future | None = pool.submit(_window_frame, prep, prep.windows[0])
        for i, w in enumerate(prep.windows):
            progress.check()
            assert pending is not None
            frame = pending.result()
            pending = pool.submit(_window_frame, prep, prep.windows[i + 1]) if i + 1 < n else None
            results.append(_run_window(ws, prep, backtest_id, parent, w, frame, stats, progress))
            elapsed = time.perf_counter() - started
            progress.update((i + 1) / n, f"window {i + 1}/{n} scored ({elapsed:.1f} s)")
        aggregate = {label: bm.aggregate(per) for label, per in stats.items() if per}
        records.finish(ws, backtest_id, parent, "finished", aggregate)
    except Cancelled:
        pool.shutdown(wait=True, cancel_futures=True)
        records.finish(ws, backtest_id, parent, "killed", {}, error="cancelled")
        raise
    except MlopsError as exc:
        pool.shutdown(wait=True, cancel_futures=True)
        records.finish(ws, backtest_id, parent, "failed", {}, error=str(exc))
        raise
    except BaseException as exc:
        pool.shutdown(wait=True, cancel_futures=True)
        records.finish(ws, backtest_id, parent, "failed", {}, error=f"{type(exc).__name__}: {exc}")
        raise
    pool.shutdown(wait=True)
    return records.load(ws, backtest_id)


def _run_window(ws: Workspace, prep: Prepared, backtest_id: int, parent: str, w: Window, frame: pl.DataFrame,
                stats: dict[str, list[bm.Stats]], progress: Progress) -> WindowResult:
    per_label, window_stats, train_rows = score_window(prep, w, frame, progress)
    for label, s in window_stats.items():
        stats[label].append(s)
    result = WindowResult(w.index, prep.axis.value(w.train_start), prep.axis.value(w.train_end),
                          prep.axis.value(w.test_start), prep.axis.value(w.test_end), frame.height, per_label,
                          w.ragged, train_rows)
    records.add_window(ws, backtest_id, parent, result)
    return result


def score_window(prep: Prepared, w: Window, frame: pl.DataFrame, progress: Progress
                 ) -> tuple[dict[str, dict[str, float]], dict[str, bm.Stats], int | None]:
    """One window scored by every version (and the refit, refitted first when due): its metrics, its Stats for the
    aggregate, and the rows the refit model was fitted on. No storage: the local loop and a remote job share it."""
    cache: dict[str, Any] = {}
    codes: dict[tuple, Any] = {}
    per_label: dict[str, dict[str, float]] = {}
    out_stats: dict[str, bm.Stats] = {}
    train_rows = None
    y = frame.get_column(prep.target)
    if frame.height:
        for label, predictor in prep.predictors.items():
            progress.check()
            cols = numpy_columns(frame, predictor.signature.input_names, cache)
            out_stats[label] = _score(label, predictor, cols, y, prep.task, codes)
    if prep.refit is not None:
        if prep.refit.due(w):
            progress.check()
            prep.refit.fit(prep.source.read(w.train_start, w.train_end, [prep.axis.column, prep.target,
                                                                         *prep.refit.features]), prep.target, w)
        train_rows = prep.refit.train_rows
        if frame.height and prep.refit.model is not None:
            cols = numpy_columns(frame, prep.refit.features, cache)
            out_stats[REFIT_LABEL] = _score(REFIT_LABEL, prep.refit.predictor(), cols, y, prep.task, codes)
    for label, s in out_stats.items():
        per_label[label] = bm.window_metrics(s)
    return per_label, out_stats, train_rows
