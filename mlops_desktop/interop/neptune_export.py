"""Read a Neptune Exporter Parquet export: find its part files, check every file and row, and hand out runs' rows."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops_desktop.errors import UsageError

# The exporter's long format: one row per attribute value (parameters) or per point (series), typed value columns.
# Types as the exporter declares them; a file may store a compatible type (e.g. dictionary-encoded strings).
STEP_TYPE = pa.decimal128(18, 6)
STEP_SCALE_DIGITS = 6
TIME_TYPE = pa.timestamp("ms", tz="UTC")
COLUMNS: dict[str, pa.DataType] = {
    "project_id": pa.string(),
    "run_id": pa.string(),
    "attribute_path": pa.string(),
    "attribute_type": pa.string(),
    "step": STEP_TYPE,
    "timestamp": TIME_TYPE,
    "int_value": pa.int64(),
    "float_value": pa.float64(),
    "string_value": pa.string(),
    "bool_value": pa.bool_(),
    "datetime_value": TIME_TYPE,
    "string_set_value": pa.list_(pa.string()),
    "file_value": pa.struct([("path", pa.string())]),
    "histogram_value": pa.struct([("type", pa.string()), ("edges", pa.list_(pa.float64())),
                                  ("values", pa.list_(pa.float64()))]),
}
REQUIRED = ("project_id", "run_id", "attribute_path", "attribute_type")
KEY_COLUMNS = ["project_id", "run_id", "attribute_path", "attribute_type"]  # read dictionary-encoded: compact
PARAM_TYPES = frozenset({"float", "int", "string", "bool", "datetime", "string_set"})
SERIES_TYPES = frozenset({"float_series", "string_series", "histogram_series", "file_series"})
FILE_TYPES = frozenset({"file", "file_series", "file_set", "artifact"})
# Neptune 2 attribute kinds the exporter writes but that carry nothing to import (the exporter itself ignores them).
IGNORED_TYPES = frozenset({"git_ref", "notebook_ref", "run_state"})
KNOWN_TYPES = PARAM_TYPES | SERIES_TYPES | FILE_TYPES | IGNORED_TYPES

PART_RE = re.compile(r"^(?P<prefix>.+)_part_(?P<n>\d+)\.parquet$")


@dataclass
class RunPlan:
    """What the checking pass learnt about one run: its files, parameters (sys/ included) and point counts."""

    project_id: str
    run_id: str
    project_dir: Path
    files: list[Path] = field(default_factory=list)
    params: dict[str, tuple[str, Any]] = field(default_factory=dict)  # path -> (neptune type, python value)
    where: dict[str, str] = field(default_factory=dict)  # param path -> "file, row N" (for conflict messages)
    types: dict[str, str] = field(default_factory=dict)  # attribute path -> neptune type (series and files)
    points: int = 0
    rows: int = 0
    step_digits: int = 0  # decimal digits the float series' steps need (0..6)
    file_sources: dict[str, Path] = field(default_factory=dict)  # exporter's relative path -> local file/folder
    missing_files: list[str] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)  # neptune type -> rows skipped

    @property
    def parent(self) -> str | None:
        value = self.params.get("sys/forking/parent")
        return str(value[1]) if value and value[1] else None


@dataclass
class ExportScan:
    data_root: Path
    files_root: Path | None
    runs: list[RunPlan]
    incomplete: list[str]  # one line per run whose export did not finish (skipped when asked to)
    bytes_total: int


def locate(path: str | Path, files_path: str | Path | None = None) -> tuple[Path, Path | None]:
    """The data folder (holding one folder per project) and the files folder of an export."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"no Neptune export at {root}",
                         hint="give the folder the exporter wrote (holding data/ and files/) or its data folder")
    if not root.is_dir():
        raise UsageError(f"{root} is a file; a Neptune export is a folder",
                         hint="give the folder the exporter wrote (holding data/ and files/) or its data folder")
    data = root / "data" if (root / "data").is_dir() else root
    files: Path | None
    if files_path is not None:
        files = Path(files_path).expanduser()
        if not files.is_dir():
            raise UsageError(f"the files folder {files} does not exist")
    elif (root / "files").is_dir():
        files = root / "files"
    elif (root.parent / "files").is_dir() and data == root and root.name == "data":
        files = root.parent / "files"
    else:
        files = None
    return data, files


def scan_export(path: str | Path, files_path: str | Path | None = None, *, projects: list[str] | None = None,
                skip_incomplete: bool = False, allow_missing_files: bool = False,
                progress: Any = None) -> ExportScan:
    """Check every file of the export (schema, rows, parts, referenced files) before anything is written."""
    data, files_root = locate(path, files_path)
    parquet = sorted(p for p in data.rglob("*.parquet") if p.is_file())
    temporary = sorted(p for p in data.rglob("*.parquet.tmp") if p.is_file())
    if not parquet and not temporary:
        raise UsageError(f"no Parquet files under {data}: this is not a Neptune Exporter export",
                         hint="the exporter writes DATA/<project>/<run>_part_0.parquet; give its output folder")
    groups: dict[tuple[Path, str], dict[int, Path]] = defaultdict(dict)
    loose: list[Path] = []  # older exporter layout: part_N.parquet files holding many runs each
    for p in parquet:
        m = PART_RE.match(p.name)
        if m and m.group("prefix") != "part":
            groups[(p.parent, m.group("prefix"))][int(m.group("n"))] = p
        else:
            loose.append(p)
    problems: dict[tuple[Path, str], str] = {}
    for p in temporary:
        m = PART_RE.match(p.name[:-len(".tmp")])
        key = (p.parent, m.group("prefix") if m else p.name)
        problems[key] = f"{p}: the exporter did not finish this run (a .tmp part is left); export it again"
    for key, parts in groups.items():
        if key in problems:
            continue
        if 0 not in parts:
            problems[key] = (f"{key[0] / (key[1] + '_part_0.parquet')} is missing: the exporter writes part_0 last, "
                             "so this run's export did not finish; export it again")
            continue
        gaps = sorted(set(range(max(parts) + 1)) - set(parts))
        if gaps:
            problems[key] = f"{key[0] / f'{key[1]}_part_{gaps[0]}.parquet'} is missing (the run has parts 0..{max(parts)})"
    if problems and not skip_incomplete:
        lines = sorted(problems.values())
        more = f"\n  ... and {len(lines) - 10} more" if len(lines) > 10 else ""
        raise UsageError("the Neptune export is incomplete; nothing was imported:\n  " + "\n  ".join(lines[:10]) + more,
                         hint="finish the export (the exporter resumes), or pass --skip-incomplete to import "
                              "only the runs whose export finished")
    files_in_order: list[Path] = []
    for key in sorted(groups, key=lambda k: (str(k[0]), k[1])):
        if key not in problems:
            files_in_order.extend(groups[key][n] for n in sorted(groups[key]))
    files_in_order.extend(loose)
    total = sum(p.stat().st_size for p in files_in_order) or 1
    runs: dict[tuple[str, str], RunPlan] = {}
    done = 0
    for p in files_in_order:
        if progress is not None:
            progress.update(done / total, f"checking {p.name}")
        table = read_part(p)
        _inspect(p, table, runs, files_root, data, projects)
        done += p.stat().st_size
    plans = list(runs.values())
    missing = [m for plan in plans for m in plan.missing_files]
    if missing and not allow_missing_files:
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        where = files_root if files_root is not None else "(no files folder found)"
        raise UsageError(f"{len(missing)} file(s) the export refers to are not in {where}; nothing was imported:\n  "
                         + "\n  ".join(missing[:10]) + more,
                         hint="pass --files DIR (the exporter's --files-path), or --allow-missing-files to import "
                              "the runs without them")
    return ExportScan(data, files_root, plans, sorted(problems.values()), total)


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One part file in the exporter's schema (missing optional columns as nulls); bad files named in the error."""
    try:
        names = set(pq.read_schema(path).names)
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise UsageError(f"{path} is not a Neptune Exporter file: it has no column {', '.join(missing)}")
        pf = pq.ParquetFile(path, read_dictionary=[c for c in KEY_COLUMNS if c in names])
        wanted = [c for c in (columns or list(COLUMNS)) if c in names]
        table = pf.read(columns=wanted)
    except UsageError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a readable Parquet file: {_first_line(exc)}",
                         hint="the file is damaged or was cut short; export that run again") from None
    out = {}
    for name in columns or list(COLUMNS):
        want = COLUMNS[name]
        if name not in table.column_names:
            out[name] = pa.nulls(table.num_rows, want)
            continue
        col = table[name]
        if name in KEY_COLUMNS:
            if not (pa.types.is_dictionary(col.type) and pa.types.is_string(col.type.value_type)) \
                    and not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
                raise UsageError(f"{path}: column {name} holds {col.type}, not text")
            out[name] = col
            continue
        if col.type != want:
            try:
                col = col.cast(want)
            except (pa.ArrowException, ValueError) as exc:
                raise UsageError(f"{path}: column {name} holds {col.type}, which does not convert to {want} "
                                 f"({_first_line(exc)})") from None
        out[name] = col
    return pa.table(out)


def _inspect(path: Path, table: pa.Table, runs: dict[tuple[str, str], RunPlan], files_root: Path | None,
             data_root: Path, projects: list[str] | None) -> None:
    n = table.num_rows
    if n == 0:
        return
    for name in REQUIRED:
        nulls = table[name].null_count
        if nulls:
            row = int(np.flatnonzero(table[name].is_null().to_numpy(zero_copy_only=False))[0])
            raise UsageError(f"{path}, row {row + 1}: {name} is empty")
    table = table.unify_dictionaries().combine_chunks()
    proj_codes, proj_names = codes(table["project_id"])
    run_codes, run_names = codes(table["run_id"])
    type_codes, type_names = codes(table["attribute_type"])
    path_codes, path_names = codes(table["attribute_path"])
    # one run per file in the current layout; several in the older one
    pair = proj_codes.astype(np.int64) * (len(run_names) + 1) + run_codes
    uniq, first = np.unique(pair, return_index=True)
    for u, f in zip(uniq, first, strict=True):
        project_id, run_id = proj_names[proj_codes[f]], run_names[run_codes[f]]
        if projects and project_id not in projects:
            continue
        plan = runs.get((project_id, run_id))
        if plan is None:
            plan = runs[(project_id, run_id)] = RunPlan(project_id, run_id, path.parent)
        if path not in plan.files:
            plan.files.append(path)
        rows = np.flatnonzero(pair == u)
        _inspect_run(path, table, rows, plan, type_codes, type_names, path_codes, path_names, files_root, data_root)


def _inspect_run(path: Path, table: pa.Table, rows: np.ndarray, plan: RunPlan, type_codes: np.ndarray,
                 type_names: list[str], path_codes: np.ndarray, path_names: list[str], files_root: Path | None,
                 data_root: Path) -> None:
    plan.rows += int(rows.size)
    run_types = type_codes[rows]
    for code in np.unique(run_types):
        kind = type_names[code]
        sel = rows[run_types == code]
        if kind not in KNOWN_TYPES:
            raise UsageError(f"{path}, row {int(sel[0]) + 1}: unknown attribute type {kind!r} "
                             f"(attribute {path_names[path_codes[sel[0]]]!r})",
                             hint="this exporter version writes a kind this import does not know yet")
        if kind in IGNORED_TYPES:
            plan.ignored[kind] = plan.ignored.get(kind, 0) + int(sel.size)
            continue
        if kind in PARAM_TYPES:
            _collect_params(path, table, sel, kind, plan, path_codes, path_names)
            continue
        for code_ in np.unique(path_codes[sel]):
            name = path_names[code_]
            previous = plan.types.setdefault(name, kind)
            if previous != kind:
                raise UsageError(f"{path}: attribute {name!r} is both {previous} and {kind}")
        if kind in SERIES_TYPES:
            step = table["step"].take(pa.array(sel))
            if step.null_count:
                row = int(sel[np.flatnonzero(step.is_null().to_numpy(zero_copy_only=False))[0]])
                raise UsageError(f"{path}, row {row + 1}: a point of {kind} {path_names[path_codes[row]]!r} has no step")
            if kind == "float_series":
                plan.points += int(sel.size)
                plan.step_digits = max(plan.step_digits, step_digits(unscaled_steps(step)))
        if kind in FILE_TYPES:
            _check_files(path, table, sel, plan, path_codes, path_names, files_root, data_root)


def _collect_params(path: Path, table: pa.Table, sel: np.ndarray, kind: str, plan: RunPlan,
                    path_codes: np.ndarray, path_names: list[str]) -> None:
    column = {"float": "float_value", "int": "int_value", "string": "string_value", "bool": "bool_value",
              "datetime": "datetime_value", "string_set": "string_set_value"}[kind]
    values = table[column].take(pa.array(sel)).to_pylist()
    for row, value in zip(sel.tolist(), values, strict=True):
        name = path_names[path_codes[row]]
        if value is None:
            continue
        if kind == "string_set":
            value = sorted(v for v in value if v is not None)
        old = plan.params.get(name)
        if old is not None and not _same(old, (kind, value)):
            raise UsageError(f"{path}, row {row + 1}: attribute {name!r} is {value!r} here but {old[1]!r} in "
                             f"{plan.where[name]}")
        plan.params[name] = (kind, value)
        plan.where[name] = f"{path}, row {row + 1}"


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if isinstance(a[1], float) and isinstance(b[1], float) and math.isnan(a[1]) and math.isnan(b[1]):
        return True
    return bool(a[1] == b[1])


def _check_files(path: Path, table: pa.Table, sel: np.ndarray, plan: RunPlan, path_codes: np.ndarray,
                 path_names: list[str], files_root: Path | None, data_root: Path) -> None:
    refs = pc.struct_field(table["file_value"].take(pa.array(sel)), "path").to_pylist()
    for row, ref in zip(sel.tolist(), refs, strict=True):
        attribute = path_names[path_codes[row]]
        if not ref:
            plan.missing_files.append(f"{path}, row {row + 1}: {attribute!r} names no file")
            continue
        source = resolve_file(ref, files_root, plan.project_dir, data_root)
        if source is None:
            plan.missing_files.append(f"{ref} ({attribute!r} of run {plan.run_id}, {path.name} row {row + 1})")
        else:
            plan.file_sources[ref] = source


def resolve_file(ref: str, files_root: Path | None, project_dir: Path, data_root: Path) -> Path | None:
    """Where the exporter put a downloaded file: FILES/<project folder>/<path> (never outside FILES)."""
    if files_root is None:
        return None
    root = files_root.resolve()
    candidates = []
    try:
        rel = project_dir.relative_to(data_root)
        if rel.parts:
            candidates.append(root / rel.parts[0] / ref)
    except ValueError:
        pass
    candidates.append(root / ref)
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_relative_to(root) and resolved.exists():
            return resolved
    return None


# ------------------------------------------------------------------------------------------------- column helpers
def codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes and values of a text column (encoded here when the file stored it plain)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    return arr.indices.to_numpy(zero_copy_only=False).astype(np.int64), arr.dictionary.to_pylist()


def unscaled_steps(step: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """decimal128(18, 6) steps as exact int64 multiples of 1e-6 (their unscaled integers; |x| < 1e18 fits)."""
    arr = step.combine_chunks() if isinstance(step, pa.ChunkedArray) else step
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64)
    words = np.frombuffer(arr.buffers()[1], dtype="<i8")
    return words[2 * arr.offset:2 * (arr.offset + len(arr)):2].copy()  # low 64 bits of each 128-bit value


def step_digits(unscaled: np.ndarray) -> int:
    """The fewest decimal digits that write every step exactly (0 for integer steps)."""
    for digits in range(STEP_SCALE_DIGITS + 1):
        if not np.any(unscaled % (10 ** (STEP_SCALE_DIGITS - digits))):
            return digits
    return STEP_SCALE_DIGITS


def step_text(unscaled: int) -> str:
    """A step as the exporter's decimal, without trailing zeros: 1500000 -> '1.5', 3000000 -> '3'."""
    sign = "-" if unscaled < 0 else ""
    whole, frac = divmod(abs(int(unscaled)), 10 ** STEP_SCALE_DIGITS)
    text = f"{whole}.{frac:0{STEP_SCALE_DIGITS}d}".rstrip("0").rstrip(".")
    return sign + text


def timestamps_ms(column: pa.ChunkedArray | pa.Array, fill: int) -> np.ndarray:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    ints = arr.cast(pa.int64())
    if ints.null_count:
        ints = pc.fill_null(ints, fill)
    return ints.to_numpy(zero_copy_only=False).astype(np.int64)


def iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
