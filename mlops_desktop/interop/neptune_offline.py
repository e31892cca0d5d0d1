"""Read the Neptune client's own folders: `.neptune/offline/` (mode="offline") and `.neptune/async/` (runs not synced).

The Neptune client (1.x) writes each run to `.neptune/{offline,async}/run__<id>__<pid>__<key>/` as a
`metadata.json` and an operation log `data-<n>.log`: one JSON object per line, `{"obj": {"type": ..., "path":
[...], ...}, "version": n, "at": unix-seconds}`, replayed by `neptune sync`. This module replays that log the same
way into a plain description of the run (`OfflineRun`); `neptune_import` writes it to the tracking store.

A log whose last line is cut off (the process was killed while writing it) loses that one operation, with a warning;
any other line that is not an operation is an error that names the file and line, and nothing is imported.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.interop.neptune_export import STEP_SCALE_DIGITS as STEP_DIGITS  # decimal steps kept exact at 1e-6
from mlops_desktop.interop.neptune_export import _first_line

CONTAINER_DIR = re.compile(r"^(?P<type>run|model|model_version|project)__(?P<id>[^_]+(?:-[^_]+)*)(?:__.*)?$")
LOG_FILE = re.compile(r"^data-(?P<n>\d+)\.log$")
MODES = ("offline", "async")
ASSIGN_KINDS = {"AssignFloat": "float", "AssignInt": "int", "AssignBool": "bool", "AssignString": "string",
                "AssignDatetime": "datetime"}
# operations that carry nothing a tracking store keeps (series display ranges, artifact hashes kept by Neptune's
# servers, copies of another container's attribute, deleting remote files)
IGNORED_OPS = frozenset({"ConfigFloatSeries", "AssignArtifact", "TrackFilesToArtifact", "ClearArtifact",
                         "CopyAttribute", "DeleteFiles"})


@dataclass
class OfflineRun:
    folder: Path
    mode: str  # "offline" or "async"
    container_id: str
    created: datetime | None
    last_at: float = 0.0
    params: dict[str, tuple[str, Any]] = field(default_factory=dict)  # attribute -> (kind, value), sys/ included
    string_sets: dict[str, set[str]] = field(default_factory=dict)  # sys/tags among them
    floats: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)  # (step 1e-6, ts ms, value)
    strings: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    images: dict[str, list[tuple[int, bytes, str]]] = field(default_factory=dict)  # (step, png bytes, name)
    files: dict[str, tuple[Path | None, bytes | None, str]] = field(default_factory=dict)  # path or content, name
    missing_files: list[str] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.params.get("sys/failed", ("bool", False))[1] is True


def is_offline_folder(path: Path) -> bool:
    """A `.neptune` folder, a folder holding one, its offline/ or async/ folder, or one run's folder."""
    path = Path(path).expanduser()
    return (path.name == ".neptune" or (path / ".neptune").is_dir() or
            (path.name in MODES and path.parent.name == ".neptune") or bool(run_folders(path, strict=False)))


def run_folders(path: str | Path, *, strict: bool = True) -> list[tuple[str, Path]]:
    root = Path(path).expanduser()
    if (root / ".neptune").is_dir():
        root = root / ".neptune"
    if root.is_dir() and CONTAINER_DIR.match(root.name) and (
            (root / "metadata.json").is_file() or any(LOG_FILE.match(p.name) for p in root.iterdir())):
        mode = root.parent.name if root.parent.name in MODES else "offline"
        return [(mode, root)]
    candidates: list[tuple[str, Path]] = []
    bases = [(root.name, root)] if root.name in MODES else [(m, root / m) for m in MODES]
    for mode, base in bases:
        if base.is_dir():
            candidates += [(mode, d) for d in sorted(base.iterdir()) if d.is_dir() and CONTAINER_DIR.match(d.name)]
    if not candidates and strict:
        raise UsageError(f"{root}: no Neptune offline or async run folders (.neptune/offline/run__*) here")
    return candidates


def read_folder(mode: str, folder: Path, files_path: Path | None = None) -> OfflineRun:
    meta_path = folder / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise UsageError(f"{meta_path}: missing; this is not a Neptune run folder") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{meta_path}: not readable as Neptune's run metadata ({_first_line(exc)})") from None
    match = CONTAINER_DIR.match(folder.name)
    container_id = str(meta.get("containerId") or (match.group("id") if match else folder.name))
    run = OfflineRun(folder=folder, mode=mode, container_id=container_id, created=_parse_time(meta.get("createdAt")))
    if meta.get("containerType", "run") != "run":
        raise UsageError(f"{folder}: a Neptune {meta.get('containerType')} folder; only runs can be imported")
    logs = sorted((int(m.group("n")), p) for p in folder.iterdir() if (m := LOG_FILE.match(p.name)))
    if not logs:
        raise UsageError(f"{folder}: no operation log (data-1.log); nothing was recorded or the folder is incomplete")
    replay = _Replay(run, files_path)
    for index, (_, log) in enumerate(logs):
        replay.read(log, last_file=index == len(logs) - 1)
    replay.finish()
    return run


class _Replay:
    """Apply operations in their recorded order, as `neptune sync` would send them."""

    def __init__(self, run: OfflineRun, files_path: Path | None) -> None:
        self.run = run
        self.files_path = files_path
        self.next_step: dict[str, int] = {}

    def read(self, log: Path, *, last_file: bool) -> None:
        with log.open("rb") as fh:
            lines = fh.read().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                op = entry["obj"]
                if not isinstance(op, dict) or not isinstance(op.get("type"), str):
                    raise ValueError("no operation type")
                self.apply(op, float(entry.get("at") or 0.0), f"{log.name}:{number}")
            except (ValueError, KeyError, TypeError) as exc:
                if last_file and number == len(lines):
                    self.run.warnings.append(f"{log}: line {number} is cut off (the run's process stopped while "
                                             "writing it); that one operation is not imported")
                    return
                raise UsageError(f"{log}: line {number} is not a Neptune operation ({_first_line(exc)})") from None

    def apply(self, op: dict[str, Any], at: float, where: str) -> None:
        run, kind = self.run, op["type"]
        name = "/".join(str(p) for p in op.get("path") or [])
        if not name:
            raise ValueError("an operation without an attribute path")
        run.last_at = max(run.last_at, at)
        if kind in ASSIGN_KINDS:
            value = op["value"]
            if kind == "AssignDatetime":
                value = datetime.fromtimestamp(int(value) / 1000.0, tz=UTC)
            self._forget(name)
            run.params[name] = (ASSIGN_KINDS[kind], value)
        elif kind == "AddStrings":
            run.string_sets.setdefault(name, set()).update(str(v) for v in op["values"])
        elif kind == "RemoveStrings":
            run.string_sets.setdefault(name, set()).difference_update(str(v) for v in op["values"])
        elif kind == "ClearStringSet":
            run.string_sets[name] = set()
        elif kind == "LogFloats":
            points = run.floats.setdefault(name, [])
            for v in op["values"]:
                points.append((self._step(name, v.get("step")), _ms(v.get("ts"), at), float(v["value"])))
        elif kind == "LogStrings":
            texts = run.strings.setdefault(name, [])
            for v in op["values"]:
                texts.append((self._step(name, v.get("step")), _ms(v.get("ts"), at), str(v["value"])))
        elif kind == "LogImages":
            images = run.images.setdefault(name, [])
            for v in op["values"]:
                image = v["value"] if isinstance(v["value"], dict) else {"data": v["value"]}
                images.append((self._step(name, v.get("step")), base64.b64decode(image["data"]),
                               str(image.get("name") or "")))
        elif kind in ("ClearFloatLog", "ClearStringLog", "ClearImageLog"):
            for series in (run.floats, run.strings, run.images):
                series.pop(name, None)
            self.next_step.pop(name, None)
        elif kind == "DeleteAttribute":
            self._forget(name)
        elif kind == "UploadFile":
            self._upload(name, op, where)
        elif kind == "UploadFileContent":
            run.files[name] = (None, base64.b64decode(op["file_content"]), _file_name(name, op.get("ext")))
        elif kind == "UploadFileSet":
            if op.get("file_globs"):
                run.ignored["file set (globs of the run's machine)"] += 1
        elif kind in IGNORED_OPS:
            run.ignored[kind] += 1
        else:
            run.ignored[f"unknown operation {kind}"] += 1

    def _forget(self, name: str) -> None:
        for store in (self.run.params, self.run.string_sets, self.run.floats, self.run.strings, self.run.images,
                      self.run.files):
            store.pop(name, None)
        self.next_step.pop(name, None)

    def _step(self, name: str, step: Any) -> int:
        """A step without a value follows the last one by 1, as Neptune's server numbers them (0 first)."""
        if step is None:
            scaled = self.next_step.get(name, 0)
        else:
            try:
                scaled = int(Decimal(repr(float(step))).scaleb(STEP_DIGITS).to_integral_value())
            except (InvalidOperation, OverflowError, ValueError):
                raise ValueError(f"step {step!r} of {name} is not a number") from None
        self.next_step[name] = (scaled // 10 ** STEP_DIGITS + 1) * 10 ** STEP_DIGITS
        return scaled

    def _upload(self, name: str, op: dict[str, Any], where: str) -> None:
        run = self.run
        recorded = op.get("file_path")
        tmp = op.get("tmp_file_name")
        source: Path | None = None
        if tmp:  # content the client copied into the run folder (File.from_content, streams, figures)
            source = run.folder / "upload_path" / str(tmp)
        elif recorded:
            source = Path(str(recorded))
            if not source.is_file() and self.files_path is not None:
                source = self.files_path / source.name  # the files moved beside the folder: --files DIR
        if source is None or not source.is_file():
            run.files.pop(name, None)
            run.missing_files.append(f"{name} ({recorded or tmp}, {where})")
            return
        run.files[name] = (source, None, _file_name(name, op.get("ext"), source))

    def finish(self) -> None:
        tags = self.run.string_sets.pop("sys/tags", set())
        self.run.string_sets["sys/tags"] = tags


def _file_name(attribute: str, ext: Any, source: Path | None = None) -> str:
    if source is not None and not source.parent.name == "upload_path":
        return source.name
    leaf = attribute.rsplit("/", 1)[-1]
    return f"{leaf}.{ext}" if ext else leaf


def _ms(ts: Any, at: float) -> int:
    try:
        return int(round(float(ts) * 1000.0))
    except (TypeError, ValueError):
        return int(round(at * 1000.0))


def _parse_time(text: Any) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)

