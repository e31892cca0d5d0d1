"""Import MLflow's model registry (registered_models, model_versions, registered_model_aliases) and the versions'
local model artifacts from a database written by the mlflow package, idempotently.

scikit-learn models saved in the skops format become our sklearn flavor. Pickled ones (pickle, cloudpickle) are not
unpickled unless the user says they produced them (`allow_pickle`); then they are loaded once and stored as skops.
Other pyfunc models are reported, not imported. MLflow names are mapped to our DNS-safe names
('Churn Model' -> 'churn-model'); the original name is kept in the version's tags.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlops_desktop.errors import MlopsError, StoreCorruptError, UsageError
from mlops_desktop.progress import Progress
from mlops_desktop.registry.names import check_alias, suggest_name
from mlops_desktop.registry.signature import ColumnSpec, Signature

ACTOR = "mlflow-import"
_TYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "string": "string",
          "boolean": "bool", "datetime": "datetime"}


@dataclass
class RegistryImport:
    models: int = 0
    versions: int = 0
    versions_skipped: int = 0  # imported before
    versions_refused: int = 0
    aliases: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_registry(ws: Any, db_path: str | Path, *, allow_pickle: bool = False,
                    progress: Progress | None = None) -> RegistryImport:
    from mlops_desktop import registry

    progress = progress or Progress()
    stats = RegistryImport()
    src = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        try:
            tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"{db_path} is not a readable SQLite database: {exc}") from None
        if "model_versions" not in tables:
            return stats
        rows = src.execute("SELECT name, version, description, source, run_id, status, "
                           + ("storage_location" if _has_column(src, "model_versions", "storage_location")
                              else "NULL") + " FROM model_versions ORDER BY name, version").fetchall()
        tags = _version_tags(src, tables)
        runs = _run_artifact_roots(src, tables)
        store = registry.store(ws)
        names: dict[str, str] = {}
        ours: dict[tuple[str, int], int] = {}
        seen_models: set[str] = set()
        for index, (mname, mversion, description, source, run_id, status, location) in enumerate(rows):
            progress.update(index / max(1, len(rows)), f"{mname} v{mversion}")
            label = f"MLflow model {mname!r} version {mversion}"
            name = suggest_name(mname)
            if not name:
                stats.warnings.append(f"{label}: its name cannot become a model name here; skipped")
                continue
            if names.setdefault(name, mname) != mname:
                stats.warnings.append(f"{label}: {mname!r} and {names[name]!r} both map to {name!r}; skipped")
                continue
            if status and status != "READY":
                stats.warnings.append(f"{label}: status {status}; skipped")
                continue
            existing = store.find_version(name, source=f"mlflow:{mname}/{mversion}") \
                if store.db.query("SELECT 1 FROM registered_models WHERE name = ?", (name,)) else None
            if existing is not None:
                ours[(mname, mversion)] = existing.version
                stats.versions_skipped += 1
                continue
            folder = _model_folder(location, source, run_id, runs)
            if folder is None or not (folder / "MLmodel").is_file():
                stats.warnings.append(f"{label}: no local model folder with an MLmodel file "
                                      f"(storage {location or source}); skipped")
                stats.versions_refused += 1
                continue
            try:
                mv = _import_version(ws, store, name, mname, mversion, folder, run_id, description or "",
                                     tags.get((mname, mversion), {}), allow_pickle)
            except MlopsError as exc:
                stats.warnings.append(f"{label}: {exc}")
                stats.versions_refused += 1
                continue
            if name not in seen_models and len(store.list_versions(name)) == 1:
                stats.models += 1
            seen_models.add(name)
            ours[(mname, mversion)] = mv
            stats.versions += 1
        if "registered_model_aliases" in tables:
            for alias, version, mname in src.execute("SELECT alias, version, name FROM registered_model_aliases "
                                                     "ORDER BY name, alias"):
                target = ours.get((mname, version))
                name = suggest_name(mname)
                if target is None:
                    continue
                try:
                    check_alias(alias)
                except UsageError:
                    stats.warnings.append(f"MLflow alias {mname}@{alias}: not a valid alias name here; skipped")
                    continue
                current = {a: v for a, v in store.get_model(name).aliases.items()}
                if current.get(alias) == target:
                    continue
                store.set_alias(name, alias, target, reason=f"imported from MLflow ({mname}@{alias} -> v{version})",
                                actor=ACTOR)
                stats.aliases += 1
    finally:
        src.close()
    progress.update(1.0, "registry imported")
    return stats


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(r[1] == column for r in conn.execute(f"PRAGMA table_info({table})"))


def _version_tags(src: sqlite3.Connection, tables: set[str]) -> dict[tuple[str, int], dict[str, str]]:
    out: dict[tuple[str, int], dict[str, str]] = {}
    if "model_version_tags" in tables:
        for key, value, name, version in src.execute("SELECT key, value, name, version FROM model_version_tags"):
            out.setdefault((name, int(version)), {})[key] = value or ""
    return out


def _run_artifact_roots(src: sqlite3.Connection, tables: set[str]) -> dict[str, str]:
    if "runs" not in tables:
        return {}
    return {r[0]: r[1] for r in src.execute("SELECT run_uuid, artifact_uri FROM runs") if r[1]}


def _local(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def _model_folder(location: str | None, source: str | None, run_id: str | None,
                  runs: dict[str, str]) -> Path | None:
    for candidate in (location, source):
        path = _local(candidate)
        if path is not None and path.is_dir():
            return path
    if source and source.startswith("runs:/") and run_id:
        root = _local(runs.get(run_id))
        rel = source[len("runs:/"):].split("/", 1)[1] if "/" in source[len("runs:/"):] else ""
        if root is not None and (root / rel).is_dir():
            return root / rel
    return None


def _signature(meta: dict[str, Any], model: Any) -> Signature | None:
    from sklearn.base import is_classifier

    raw = (meta.get("signature") or {}).get("inputs")
    try:
        inputs = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        inputs = None
    if not inputs or not all(isinstance(c, dict) and c.get("name") and c.get("type") in _TYPES for c in inputs):
        return None
    task = "classification" if is_classifier(model) else "regression"
    classes = tuple(c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", ()))
    return Signature(tuple(ColumnSpec(str(c["name"]), _TYPES[c["type"]]) for c in inputs), task=task,
                     classes=classes if task == "classification" else ())


def _example(folder: Path, meta: dict[str, Any]) -> dict[str, list[Any]] | None:
    info = meta.get("saved_input_example_info") or {}
    path = folder / str(info.get("artifact_path") or "input_example.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("columns"), list) and isinstance(data.get("data"), list):
        cols = [str(c) for c in data["columns"]]
        return {c: [row[i] for row in data["data"]] for i, c in enumerate(cols)}
    return None


def _environment(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    import platform

    packages: dict[str, str] = {}
    req = folder / "requirements.txt"
    if req.is_file():
        for line in req.read_text(encoding="utf-8", errors="replace").splitlines():
            name, sep, version = line.strip().partition("==")
            if sep and name and not name.startswith("#"):
                packages[name] = version
    python = ((meta.get("flavors") or {}).get("python_function") or {}).get("python_version")
    return {"python": python or platform.python_version(), "packages": packages, "recorded": "by MLflow"}


def _import_version(ws: Any, store: Any, name: str, mname: str, mversion: int, folder: Path, run_id: str | None,
                    description: str, tags: dict[str, str], allow_pickle: bool) -> int:
    import yaml

    from mlops_desktop.registry.flavors.sklearn import load_skops
    from mlops_desktop.registry.registration import build_version
    from mlops_desktop.registry.sources import ModelSource

    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"its MLmodel file cannot be read: {exc}") from None
    flavors = meta.get("flavors") or {}
    sk = flavors.get("sklearn")
    if not sk:
        kinds = ", ".join(sorted(flavors)) or "none"
        raise UsageError(f"flavors {kinds}: only scikit-learn models are imported (a pyfunc's pickled python_model "
                         "or loader code is not run)")
    model_file = folder / str(sk.get("pickled_model") or "model.pkl")
    fmt = str(sk.get("serialization_format") or "cloudpickle")
    model_arg = None
    if fmt == "skops":
        model = load_skops(model_file)
        src_file: Path | None = model_file
    else:
        if not allow_pickle:
            raise UsageError(f"{model_file} is a {fmt} file; it is not unpickled (that runs arbitrary code)",
                             hint="if you produced this file yourself, import again with --allow-pickle: it is "
                                  "loaded once and stored as skops")
        model = _unpickle(model_file)
        model_arg, src_file = model, None
    run_uuid = run_id if run_id and ws.db.query("SELECT 1 FROM runs WHERE uuid = ?", (run_id,)) else None
    metrics: dict[str, float | None] = {}
    inputs: list[dict[str, str]] = []
    if run_uuid:
        run = ws.tracking.get_run(run_uuid)
        metrics = {k: m.last for k, m in run.metrics.items()}
        inputs = [i.to_dict() for i in ws.tracking.list_inputs(run_uuid)]
    src = ModelSource(root=folder, flavor="sklearn", model_file=src_file, meta={"flavor": "sklearn"},
                      signature=_signature(meta, model), example=_example(folder, meta),
                      environment=_environment(folder, meta))
    result = build_version(ws, store, name, src, run_uuid=run_uuid, artifact_path=str(folder),
                           source=f"mlflow:{mname}/{mversion}", metrics=metrics, inputs=inputs,
                           description=description, tags={**tags, "mlflow.name": mname,
                                                          "mlflow.version": str(mversion)},
                           actor=ACTOR, model=model_arg)
    return int(result.version.version)


def _unpickle(path: Path) -> Any:
    """Only reached when the user said they produced the file (`--allow-pickle`)."""
    import pickle

    try:
        with path.open("rb") as fh:
            return pickle.load(fh)  # noqa: S301 - explicit opt-in: the user produced this file
    except Exception as exc:  # noqa: BLE001 - whatever the pickle raises, say it in words
        raise UsageError(f"{path} could not be unpickled: {type(exc).__name__}: {exc}") from None
