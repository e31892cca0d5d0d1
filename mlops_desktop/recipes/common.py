"""What recipes share: typed parameters, loading a table (lake dataset or CSV/Parquet file) and its lineage."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError


def parse_value(text: str) -> Any:
    """'100' -> 100, '0.1' -> 0.1, 'true' -> True, 'none' -> None, '[1, 2]' -> [1, 2], anything else -> str."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


class Params:
    """Recipe parameters with typed, named errors; `rest()` hands back the ones the recipe did not consume."""

    def __init__(self, recipe: str, raw: dict[str, str]) -> None:
        self.recipe = recipe
        self.raw = dict(raw)
        self.used: set[str] = set()

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        self.used.add(key)
        if key not in self.raw or self.raw[key] == "":
            if required:
                raise UsageError(f"recipe {self.recipe}: parameter {key!r} is required (--param {key}=...)")
            return default or ""
        return self.raw[key]

    def number(self, key: str, default: float, *, integer: bool = False, low: float | None = None,
               high: float | None = None) -> Any:
        self.used.add(key)
        if key not in self.raw:
            return default
        try:
            value = int(self.raw[key]) if integer else float(self.raw[key])
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise UsageError(f"recipe {self.recipe}: parameter {key}={self.raw[key]!r} is not {kind}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise UsageError(f"recipe {self.recipe}: parameter {key}={value} is outside [{low}, {high}]")
        return value

    def rest(self) -> dict[str, Any]:
        return {k: parse_value(v) for k, v in self.raw.items() if k not in self.used}


@dataclass
class Table:
    frame: Any  # pandas DataFrame
    dataset: str
    version: str
    digest: str
    lineage_logged: bool = False  # the lake records reads into the active run itself


def load_table(ref: str, recipe: str) -> Table:
    """'lake:name' / 'lake:name@3' (a dataset of the workspace's lake) or a path to a .csv / .parquet file."""
    import pandas as pd

    if ref.startswith("lake:"):
        from mlops_desktop import envvars

        if not envvars.MLOPS_DESKTOP_HOME.get():
            raise UsageError(f"recipe {recipe}: lake datasets can only be read by jobs on this machine",
                             hint="for an SSH host, put a CSV/Parquet export in the project folder")
        from mlops_desktop.data import catalog
        from mlops_desktop.data.lake import open_dataset
        from mlops_desktop.workspace import Workspace

        with Workspace.open(None, create=False) as ws:
            version = catalog.resolve(ws.db, ref[5:])
            frame = open_dataset(ws, version.ref, "pandas", context="training")
        return Table(frame, version.name, str(version.version), version.content_hash, lineage_logged=True)
    path = Path(ref).expanduser()
    if not path.is_file():
        raise UsageError(f"recipe {recipe}: data file {path} does not exist",
                         hint="pass --param data=PATH.csv|PATH.parquet or data=lake:NAME[@VERSION]")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise UsageError(f"recipe {recipe}: {path} is neither .csv nor .parquet")
    except (ValueError, OSError) as exc:
        raise UsageError(f"recipe {recipe}: cannot read {path}: {exc}") from None
    return Table(frame, path.stem, digest[:12], digest)


def log_lineage(table: Table) -> None:
    import mlops_desktop.tracking as mt

    if not table.lineage_logged:
        mt.log_input(table.dataset, table.version, table.digest, "training")


def split_xy(table: Table, target: str, features: str, recipe: str) -> tuple[Any, Any]:
    frame = table.frame
    if target not in frame.columns:
        raise UsageError(f"recipe {recipe}: target column {target!r} is not in {table.dataset}",
                         hint=f"columns: {', '.join(map(str, frame.columns[:30]))}")
    if features:
        cols = [c.strip() for c in features.split(",") if c.strip()]
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise UsageError(f"recipe {recipe}: feature column(s) {', '.join(missing)} not in {table.dataset}")
    else:
        cols = [c for c in frame.columns if c != target]
    if not cols:
        raise UsageError(f"recipe {recipe}: {table.dataset} has no feature columns besides {target!r}")
    y = frame[target]
    keep = y.notna()
    if not keep.all():
        print(f"recipe {recipe}: dropping {int((~keep).sum())} row(s) whose target {target!r} is empty", flush=True)
    if int(keep.sum()) < 4:
        raise UsageError(f"recipe {recipe}: {table.dataset} has {int(keep.sum())} usable rows; at least 4 needed")
    return frame.loc[keep, cols], y[keep]


def signature(x: Any, y: Any, task: str, classes: list[Any] | None = None) -> dict[str, Any]:
    """The model's signature in the registry's format (lake type names), from the training frame."""
    from mlops_desktop.registry.signature import ColumnSpec, Signature, from_frame, pandas_dtype_name

    out = ColumnSpec("prediction", pandas_dtype_name(y.dtype) if task == "classification" else "float64")
    plain = [c.item() if hasattr(c, "item") else c for c in classes] if classes else []
    return Signature(from_frame(x), (out,), task, tuple(plain)).to_dict()


def register_name(p: Params) -> str:
    """The `register=NAME` parameter, checked before any training happens (a bad name fails fast)."""
    name = p.text("register")
    if name:
        from mlops_desktop.registry.names import check_model_name

        try:
            check_model_name(name)
        except UsageError as exc:
            raise UsageError(f"recipe {p.recipe}: {exc.message}", hint=exc.hint) from None
    return name


def write_model_extras(folder: Path, x: Any, y: Any, task: str, classes: list[Any] | None, holdout: Any,
                       modules: list[str]) -> None:
    """Next to the model file: signature, a 5-row input example, a held-out sample (for the ONNX check) and the
    training environment, the files registration reads."""
    import json

    from mlops_desktop.registry.environment import ENVIRONMENT_FILE, capture
    from mlops_desktop.registry.example import EXAMPLE_FILE, frame_to_json, write_example

    (folder / "signature.json").write_text(json.dumps(signature(x, y, task, classes), indent=2))
    write_example(folder / EXAMPLE_FILE, frame_to_json(x, 5))
    write_example(folder / "holdout_sample.json", frame_to_json(holdout, 256))
    (folder / ENVIRONMENT_FILE).write_text(json.dumps(capture(modules), indent=2))


def register_after_run(run_uuid: str, name: str, recipe: str) -> None:
    """Register the run's model as `name` now if this process sees the workspace; otherwise (an SSH job, a spool)
    the job runner registers it when the job's results are back (the run's `mlops.register` tag says so)."""
    from mlops_desktop import envvars

    if not name:
        return
    if envvars.MLOPS_SPOOL.get():
        print(f"recipe {recipe}: the model will be registered as {name} when the job's results are imported",
              flush=True)
        return
    from mlops_desktop.registry.jobs import register_pending
    from mlops_desktop.workspace import Workspace

    with Workspace.open(None, create=False) as ws:
        message = register_pending(ws, run_uuid)
        if message is None:  # the run registered it as it ended (tracking client): say which version it became
            from mlops_desktop import registry
            from mlops_desktop.registry.jobs import REGISTERED_TAG

            ref = ws.tracking.get_run(run_uuid).tags.get(REGISTERED_TAG)
            if ref:
                message = f"registered {ref} (serving path {registry.resolve(ws, ref).serving_path})"
    if message:
        print(f"recipe {recipe}: {message}", flush=True)
