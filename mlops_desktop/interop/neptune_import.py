"""Import a Neptune Exporter export into the tracking store: projects, runs, configs, tags, series, files, forks."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sqlite3
import tempfile
import uuid as uuidlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_desktop.interop.neptune_export import (
    FILE_TYPES,
    PARAM_TYPES,
    STEP_SCALE_DIGITS,
    RunPlan,
    codes,
    iso,
    read_part,
    scan_export,
    step_digits,
    step_text,
    timestamps_ms,
    unscaled_steps,
)
from mlops_desktop.progress import Progress
from mlops_desktop.tracking.sqlite_store import MAX_PARAM_LENGTH

# The run's own fields come from these sys/ attributes; the other sys/ values are kept as neptune.* tags.
RUN_FIELDS = {"sys/id", "sys/custom_run_id", "sys/name", "sys/experiment/name", "sys/creation_time",
              "sys/modification_time", "sys/ping_time", "sys/owner", "sys/hostname", "sys/description",
              "sys/failed", "sys/tags", "sys/forking/parent", "sys/forking/step"}
UUID_NAMESPACE = uuidlib.UUID("6b1f4f1e-5c1a-4d7e-9a57-6e6570747565")  # fixed: the same run always maps to one uuid
SERIES_COLUMNS = ["project_id", "run_id", "attribute_path", "attribute_type", "step", "timestamp", "float_value",
                  "string_value", "file_value", "histogram_value"]


@dataclass
class NeptuneImport:
    projects: int = 0
    runs: int = 0
    runs_skipped: int = 0  # imported earlier (same Neptune project and run id)
    runs_incomplete: int = 0  # their export did not finish (only with skip_incomplete)
    params: int = 0
    tags: int = 0
    metric_points: int = 0
    string_series: int = 0
    artifacts: int = 0
    forks: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def neptune_run_uuid(project_id: str, run_id: str) -> str:
    return uuidlib.uuid5(UUID_NAMESPACE, f"{project_id}\x00{run_id}").hex


def import_neptune(store: Any, path: str | Path, *, files_path: str | Path | None = None,
                   projects: list[str] | None = None, skip_incomplete: bool = False,
                   allow_missing_files: bool = False, progress: Progress | None = None) -> NeptuneImport:
    """Check the whole export first, then write every new run in ONE transaction: all of it or nothing.

    Importing the same export again adds nothing (runs are keyed by Neptune project and run id).
    """
    progress = progress or Progress()
    from mlops_desktop.interop import neptune_offline

    if neptune_offline.is_offline_folder(Path(path)):
        experiment = projects[0] if projects else "neptune-offline"
        return import_offline(store, path, files_path=files_path, experiment=experiment,
                              allow_missing_files=allow_missing_files, progress=progress)
    scan = scan_export(path, files_path, projects=projects, skip_incomplete=skip_incomplete,
                       allow_missing_files=allow_missing_files, progress=progress.sub(0.0, 0.3))
    if projects:
        unknown = set(projects) - {p.project_id for p in scan.runs}
        if unknown:
            from mlops_desktop.errors import NotFoundError

            raise NotFoundError(f"the export has no project {', '.join(sorted(unknown))}")
    plans = _parents_first(scan.runs)
    digits: dict[str, int] = {}
    for plan in plans:  # one step scale per project, so that runs of an experiment share an x axis
        digits[plan.project_id] = max(digits.get(plan.project_id, 0), plan.step_digits)
    existing = {r[0] for r in store.db.query("SELECT uuid FROM runs")}
    todo = [p for p in plans if neptune_run_uuid(p.project_id, p.run_id) not in existing]
    weight = {id(p): max(1, p.rows) for p in todo}
    total = sum(weight.values()) or 1
    write_progress = progress.sub(0.3, 1.0)
    result: list[NeptuneImport] = []

    def tx(conn: sqlite3.Connection) -> None:
        stats = NeptuneImport(projects=len({p.project_id for p in plans}), runs_skipped=len(plans) - len(todo),
                              runs_incomplete=len(scan.incomplete))
        stats.warnings.extend(f"skipped: {line}" for line in scan.incomplete)
        imported = set(existing)
        done = 0
        with tempfile.TemporaryDirectory(prefix="mlops-neptune-") as tmp:
            for index, plan in enumerate(todo):
                write_progress.update(done / total, f"run {index + 1} of {len(todo)}: {plan.run_id}")
                _import_run(store, plan, digits[plan.project_id], imported, Path(tmp) / str(index), stats)
                imported.add(neptune_run_uuid(plan.project_id, plan.run_id))
                done += weight[id(plan)]
                write_progress.check()  # cancelling rolls the whole import back
        result[:] = [stats]  # a retried transaction starts over: keep only the last attempt's counts

    store.db.write(tx)
    write_progress.update(1.0, "done")
    return result[0]


def import_offline(store: Any, path: str | Path, *, files_path: str | Path | None = None,
                   experiment: str = "neptune-offline", allow_missing_files: bool = False,
                   progress: Progress | None = None) -> NeptuneImport:
    """The Neptune client's offline/async folders: read every run's log first, then write them in ONE transaction."""
    from mlops_desktop.errors import UsageError
    from mlops_desktop.interop.neptune_offline import read_folder, run_folders

    progress = progress or Progress()
    folders = run_folders(path)
    runs = []
    for index, (mode, folder) in enumerate(folders):
        progress.update(0.3 * index / len(folders), f"reading {folder.name}")
        runs.append(read_folder(mode, folder, Path(files_path) if files_path else None))
        progress.check()
    missing = [f"{r.folder.name}: {m}" for r in runs for m in r.missing_files]
    if missing and not allow_missing_files:
        raise UsageError(f"{len(missing)} uploaded file(s) are no longer where the run recorded them, e.g. "
                         f"{missing[0]}; give their folder with --files DIR, or --allow-missing-files to import "
                         "without them")
    existing = {r[0] for r in store.db.query("SELECT uuid FROM runs")}
    todo = [r for r in runs if neptune_run_uuid("offline", r.container_id) not in existing]
    result: list[NeptuneImport] = []

    def tx(conn: sqlite3.Connection) -> None:
        stats = NeptuneImport(projects=1 if runs else 0, runs_skipped=len(runs) - len(todo))
        with tempfile.TemporaryDirectory(prefix="mlops-neptune-") as tmp:
            for index, run in enumerate(todo):
                progress.update(0.3 + 0.7 * index / len(todo), f"run {index + 1} of {len(todo)}: {run.container_id}")
                _import_offline_run(store, run, experiment, Path(tmp) / str(index), stats)
                progress.check()  # cancelling rolls the whole import back
        result[:] = [stats]

    store.db.write(tx)
    progress.update(1.0, "done")
    return result[0]


def _import_offline_run(store: Any, run: Any, experiment_name: str, tmp: Path, stats: NeptuneImport) -> None:
    from mlops_desktop.interop.neptune_offline import STEP_DIGITS

    run_uuid = neptune_run_uuid("offline", run.container_id)
    sys_ = {k: v for k, (_, v) in run.params.items() if k.startswith("sys/")}
    start = run.created.timestamp() if run.created else run.last_at
    params: dict[str, Any] = {}
    types: dict[str, str] = {}
    tmp.mkdir(parents=True)
    for name, (kind, value) in sorted(run.params.items()):
        if name.startswith("sys/"):
            continue
        text = _param_value(kind, value)
        if len(text) > MAX_PARAM_LENGTH:
            stats.artifacts += _log_bytes(store, run_uuid, tmp, text.encode(), f"neptune/params/{name}.txt")
            stats.warnings.append(f"run {run.container_id}: config {name!r} is {len(text)} characters long; kept "
                                  f"as the artifact neptune/params/{name}.txt")
            continue
        params[name] = text
        types[name] = kind
    for name, values in sorted(run.string_sets.items()):
        if name != "sys/tags":
            params[name] = _param_value("string_set", sorted(values))
            types[name] = "string_set"
    digits = step_digits(np.array([p[0] for points in (*run.floats.values(), *run.strings.values())
                                   for p in points], dtype=np.int64))
    tags = {"imported_from": "neptune", "neptune.run_id": run.container_id, "neptune.mode": run.mode,
            "neptune.folder": run.folder.name}
    tags.update({str(t): "" for t in sorted(run.string_sets.get("sys/tags", ())) if t})
    if digits:
        tags["neptune.step_scale"] = str(10 ** digits)
    if any(kind != "string" for kind in types.values()):
        tags["neptune.config_types"] = json.dumps(types, sort_keys=True, separators=(",", ":"))
    for name, (kind, value) in run.params.items():
        if name.startswith("sys/") and name not in RUN_FIELDS:
            tags[f"neptune.{name}"] = _param_value(kind, value)
    experiment = store.get_or_create_experiment(experiment_name)
    store.create_run(experiment.id, run_uuid=run_uuid, name=str(sys_.get("sys/name") or run.container_id),
                     user=str(sys_.get("sys/owner") or "neptune"), host="neptune-offline", command="",
                     params=params, tags=tags, start_time=start, status="running")
    if sys_.get("sys/description"):
        store.update_run(run_uuid, notes=str(sys_["sys/description"]))
    divisor = 10 ** (STEP_DIGITS - digits)
    series = {}
    for name, points in run.floats.items():
        if not points:
            continue
        arr = np.array([p[0] // divisor for p in points], dtype=np.int64)
        ts = np.array([p[1] for p in points], dtype=np.int64)
        vals = np.array([p[2] for p in points], dtype=np.float64)
        order = np.lexsort((ts, arr))
        series[name] = (arr[order], ts[order], vals[order])
        stats.metric_points += len(points)
    if series:
        store.log_metrics_batch(run_uuid, series, heartbeat=False)
    for name, texts in sorted(run.strings.items()):
        lines = ["step,timestamp,value"]
        for step, ts_ms, text in sorted(texts, key=lambda t: (t[0], t[1])):
            lines.append(_csv_row([step_text(step), _iso_ms(ts_ms), text]))
        stats.artifacts += _log_bytes(store, run_uuid, tmp, ("\n".join(lines) + "\n").encode(), f"{name}.csv")
        stats.string_series += 1
    for name, images in sorted(run.images.items()):
        for step, data, _label in images:
            stats.artifacts += _log_bytes(store, run_uuid, tmp, data, f"{name}/step_{step_text(step)}.png")
    for name, (source, content, filename) in sorted(run.files.items()):
        if source is not None and source.name == filename:
            stats.artifacts += len(store.log_artifact(run_uuid, source, name))
        elif source is not None:  # the client's copy in upload_path/ has a generated name: log it under its own
            local = tmp / f"blob-{len(list(tmp.iterdir()))}"
            shutil.copyfile(source, local)
            stats.artifacts += _log_file(store, run_uuid, local, f"{name}/{filename}")
        else:
            stats.artifacts += _log_bytes(store, run_uuid, tmp, content or b"", f"{name}/{filename}")
    stats.warnings.extend(f"run {run.container_id}: {w}" for w in run.warnings)
    stats.warnings.extend(f"run {run.container_id}: uploaded file gone, not imported: {m}" for m in run.missing_files)
    for kind, count in sorted(run.ignored.items()):
        stats.warnings.append(f"run {run.container_id}: {count} {kind} operation(s) carry nothing to import; skipped")
    last = max([start, run.last_at] + [p[1] / 1000.0 for pts in run.floats.values() for p in pts[-1:]])
    store.set_terminated(run_uuid, "failed" if run.failed else "finished", last)
    stats.runs += 1
    stats.params += len(params)
    stats.tags += len(tags)


def _log_bytes(store: Any, run_uuid: str, tmp: Path, data: bytes, artifact: str) -> int:
    local = tmp / f"blob-{len(list(tmp.iterdir()))}"
    local.write_bytes(data)
    return _log_file(store, run_uuid, local, artifact)


def _csv_row(cells: list[str]) -> str:
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def _parents_first(plans: list[RunPlan]) -> list[RunPlan]:
    by_key = {(p.project_id, p.run_id): p for p in plans}
    ordered: list[RunPlan] = []
    state: dict[tuple[str, str], int] = {}
    for plan in sorted(plans, key=lambda p: (p.project_id, str(p.params.get("sys/creation_time", ("", ""))[1]),
                                             p.run_id)):
        chain = []
        key: tuple[str, str] | None = (plan.project_id, plan.run_id)
        while key is not None and key in by_key and state.get(key) is None:
            state[key] = 1
            chain.append(by_key[key])
            parent = by_key[key].parent
            key = (key[0], parent) if parent else None
        for p in reversed(chain):
            ordered.append(p)
    return ordered


# ------------------------------------------------------------------------------------------------------ one run
def _import_run(store: Any, plan: RunPlan, digits: int, imported: set[str], tmp: Path, stats: NeptuneImport) -> None:
    sys_ = {k: v for k, (_, v) in plan.params.items() if k.startswith("sys/")}
    run_uuid = neptune_run_uuid(plan.project_id, plan.run_id)
    experiment = store.get_or_create_experiment(plan.project_id)
    created = sys_.get("sys/creation_time")
    start = created.timestamp() if isinstance(created, datetime) else 0.0
    parent_uuid = None
    if plan.parent:
        parent_uuid = neptune_run_uuid(plan.project_id, plan.parent)
        if parent_uuid in imported:
            stats.forks += 1
        else:
            stats.warnings.append(f"run {plan.run_id}: forked from {plan.parent}, which is neither in this export "
                                  "nor imported; imported without a parent")
            parent_uuid = None
    params: dict[str, Any] = {}
    long_params: dict[str, str] = {}
    param_types: dict[str, str] = {}
    for name, (kind, value) in sorted(plan.params.items()):
        if name.startswith("sys/"):
            continue
        text = _param_value(kind, value)
        param_types[name] = kind
        if len(text) > MAX_PARAM_LENGTH:
            long_params[name] = text
        else:
            params[name] = text
    tags = _run_tags(plan, sys_, param_types, digits)
    store.create_run(experiment.id, run_uuid=run_uuid,
                     name=str(sys_.get("sys/name") or sys_.get("sys/custom_run_id") or plan.run_id),
                     user=str(sys_.get("sys/owner") or "neptune"), host=str(sys_.get("sys/hostname") or "neptune-import"),
                     command="", parent_uuid=parent_uuid, params=params, tags=tags, start_time=start,
                     status="running")
    if sys_.get("sys/description"):
        store.update_run(run_uuid, notes=str(sys_["sys/description"]))
    tmp.mkdir(parents=True)
    for name, text in long_params.items():
        target = tmp / f"param-{len(list(tmp.iterdir()))}.txt"
        target.write_text(text, encoding="utf-8")
        stats.artifacts += _log_file(store, run_uuid, target, f"neptune/params/{name}.txt")
        stats.warnings.append(f"run {plan.run_id}: config {name!r} is {len(text)} characters long; "
                              f"kept as the artifact neptune/params/{name}.txt")
    last_ts = int(start * 1000)
    writers = _SeriesFiles(tmp / "series")
    try:
        for part in plan.files:
            last_ts = max(last_ts, _import_part(store, plan, part, run_uuid, digits, int(start * 1000), writers,
                                                stats))
    finally:
        writers.close()
    for attribute, local in writers.finished():
        stats.artifacts += _log_file(store, run_uuid, local, attribute)
    stats.string_series += len(writers.strings)
    for kind, count in sorted(plan.ignored.items()):
        stats.warnings.append(f"run {plan.run_id}: {count} {kind} attribute(s) carry nothing to import; skipped")
    for missing in plan.missing_files:
        stats.warnings.append(f"run {plan.run_id}: file not in the export: {missing}")
    end_at = sys_.get("sys/modification_time") or sys_.get("sys/ping_time")
    end = end_at.timestamp() if isinstance(end_at, datetime) else max(start, last_ts / 1000.0)
    store.set_terminated(run_uuid, "failed" if sys_.get("sys/failed") is True else "finished", end)
    stats.runs += 1
    stats.params += len(params)
    stats.tags += len(tags)


def _run_tags(plan: RunPlan, sys_: dict[str, Any], param_types: dict[str, str], digits: int) -> dict[str, str]:
    tags: dict[str, str] = {"imported_from": "neptune", "neptune.project": plan.project_id,
                            "neptune.run_id": plan.run_id}
    for label in sys_.get("sys/tags") or []:
        if label:
            tags[str(label)] = ""
    if sys_.get("sys/custom_run_id"):
        tags["neptune.custom_run_id"] = str(sys_["sys/custom_run_id"])
    if sys_.get("sys/experiment/name"):
        tags["neptune.experiment"] = str(sys_["sys/experiment/name"])
    if "sys/forking/step" in sys_:
        fork_step = sys_["sys/forking/step"]
        tags["neptune.fork_step"] = repr(fork_step) if isinstance(fork_step, float) else str(fork_step)
    if plan.parent:
        tags["neptune.forked_from"] = plan.parent
    if digits:
        tags["neptune.step_scale"] = str(10 ** digits)  # Neptune step = step / scale
    for name, (kind, value) in plan.params.items():
        if name.startswith("sys/") and name not in RUN_FIELDS:
            tags[f"neptune.{name}"] = _param_value(kind, value)
    if any(kind != "string" for kind in param_types.values()):
        tags["neptune.config_types"] = json.dumps(param_types, sort_keys=True, separators=(",", ":"))
    return tags


def _param_value(kind: str, value: Any) -> str:
    if kind == "string_set":
        return json.dumps(list(value), ensure_ascii=False)
    if kind == "datetime" and isinstance(value, datetime):
        return iso(value)
    if kind == "float":
        return repr(float(value)) if math.isfinite(float(value)) else str(float(value))
    if kind == "bool":
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------------------------------ one part
def _import_part(store: Any, plan: RunPlan, part: Path, run_uuid: str, digits: int, fill_ms: int,
                 writers: _SeriesFiles, stats: NeptuneImport) -> int:
    table = read_part(part, SERIES_COLUMNS)
    if table.num_rows == 0:
        return fill_ms
    table = table.unify_dictionaries().combine_chunks()
    proj_codes, proj_names = codes(table["project_id"])
    run_codes, run_names = codes(table["run_id"])
    mine = (np.asarray(proj_names, dtype=object)[proj_codes] == plan.project_id) & \
           (np.asarray(run_names, dtype=object)[run_codes] == plan.run_id)
    type_codes, type_names = codes(table["attribute_type"])
    kinds = np.asarray(type_names, dtype=object)[type_codes]
    keep = mine & ~np.isin(kinds, list(PARAM_TYPES))
    if not keep.any():
        return fill_ms
    table = table.filter(pa.array(keep))
    kinds = kinds[keep]
    path_codes, path_names = codes(table["attribute_path"])
    last_ts = fill_ms
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    divisor = 10 ** (STEP_SCALE_DIGITS - digits)
    for code in np.unique(path_codes):
        rows = np.flatnonzero(path_codes == code)
        name = path_names[code]
        kind = kinds[rows[0]]
        sub = table.take(pa.array(rows))
        if kind == "float_series":
            steps = unscaled_steps(sub["step"]) // divisor
            ts = timestamps_ms(sub["timestamp"], fill_ms)
            vals = sub["float_value"].to_numpy().astype(np.float64)  # nulls become NaN
            order = np.lexsort((ts, steps))
            series[name] = (steps[order], ts[order], vals[order])
            stats.metric_points += int(rows.size)
            last_ts = max(last_ts, int(ts.max()))
        elif kind == "string_series":
            writers.string_points(name, sub, fill_ms)
        elif kind == "histogram_series":
            writers.histogram_points(name, sub, fill_ms)
        elif kind in FILE_TYPES:
            stats.artifacts += _import_files(store, plan, run_uuid, name, kind, sub)
    if series:
        store.log_metrics_batch(run_uuid, series, heartbeat=False)
    return last_ts


def _import_files(store: Any, plan: RunPlan, run_uuid: str, name: str, kind: str, sub: pa.Table) -> int:
    refs = pc.struct_field(sub["file_value"], "path").to_pylist()
    steps = unscaled_steps(sub["step"]) if kind == "file_series" else None
    count = 0
    for i, ref in enumerate(refs):
        source = plan.file_sources.get(ref) if ref else None
        if source is None:
            continue  # reported by the checking pass (allowed with allow_missing_files)
        prefix = f"{name}/step_{step_text(int(steps[i]))}" if steps is not None else name
        count += len(store.log_artifact(run_uuid, source, prefix))
    return count


def _log_file(store: Any, run_uuid: str, local: Path, artifact: str) -> int:
    """Log one local file under an exact artifact path (log_artifact names it after the local file)."""
    folder, _, filename = artifact.rpartition("/")
    named = local.parent / f"named-{local.name}" / filename
    named.parent.mkdir(parents=True, exist_ok=True)
    local.replace(named)
    return len(store.log_artifact(run_uuid, named, folder or None))


class _SeriesFiles:
    """String series become CSV artifacts and histogram series NDJSON artifacts, appended part by part."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._open: dict[str, tuple[Path, TextIO, Any]] = {}
        self.strings: set[str] = set()

    def _writer(self, artifact: str, header: list[str] | None) -> tuple[TextIO, Any]:
        if artifact not in self._open:
            self.folder.mkdir(parents=True, exist_ok=True)
            local = self.folder / f"{len(self._open)}.dat"
            fh: TextIO = local.open("w", encoding="utf-8", newline="")
            writer = csv.writer(fh) if header else None
            if writer is not None and header:
                writer.writerow(header)
            self._open[artifact] = (local, fh, writer)
        _, out, writer = self._open[artifact]
        return out, writer

    def string_points(self, name: str, sub: pa.Table, fill_ms: int) -> None:
        steps = unscaled_steps(sub["step"])
        ts = timestamps_ms(sub["timestamp"], fill_ms)
        values = sub["string_value"].to_pylist()
        order = np.lexsort((ts, steps))
        self.strings.add(name)
        _, writer = self._writer(f"{name}.csv", ["step", "timestamp", "value"])
        for i in order.tolist():
            writer.writerow([step_text(int(steps[i])), _iso_ms(int(ts[i])), "" if values[i] is None else values[i]])

    def histogram_points(self, name: str, sub: pa.Table, fill_ms: int) -> None:
        steps = unscaled_steps(sub["step"])
        ts = timestamps_ms(sub["timestamp"], fill_ms)
        values = sub["histogram_value"].to_pylist()
        order = np.lexsort((ts, steps))
        fh, _ = self._writer(f"{name}.histograms.ndjson", None)
        for i in order.tolist():
            hist = values[i] or {}
            fh.write(json.dumps({"step": step_text(int(steps[i])), "timestamp": _iso_ms(int(ts[i])),
                                 "type": hist.get("type"), "edges": hist.get("edges"),
                                 "values": hist.get("values")}, allow_nan=True) + "\n")

    def close(self) -> None:
        for _, fh, _ in self._open.values():
            fh.close()

    def finished(self) -> list[tuple[str, Path]]:
        return [(artifact, local) for artifact, (local, _, _) in self._open.items()]


def _iso_ms(ms: int) -> str:
    from datetime import UTC

    return iso(datetime.fromtimestamp(ms / 1000.0, tz=UTC))
