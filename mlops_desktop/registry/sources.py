"""What a model artifact is made of before it becomes a bundle: its files, flavor, signature, examples, environment.

Read from a run's artifacts (the recipes' `model/` folder: MLmodel.json, signature.json, input_example.json,
holdout_sample.json, environment.json next to the model file), from files given by hand, or from MLflow.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.registry.environment import ENVIRONMENT_FILE
from mlops_desktop.registry.example import EXAMPLE_FILE
from mlops_desktop.registry.signature import ColumnSpec, Signature, normalise_dtype

META_FILE = "MLmodel.json"
SIGNATURE_FILE = "signature.json"
HOLDOUT_FILE = "holdout_sample.json"
FLAVORS = ("sklearn", "pytorch", "onnx", "python")
_BY_SUFFIX = {".skops": "sklearn", ".onnx": "onnx", ".pt": "pytorch", ".pth": "pytorch"}


@dataclass
class ModelSource:
    root: Path                       # a local folder holding the artifact's files
    flavor: str
    model_file: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    signature: Signature | None = None
    example: dict[str, list[Any]] | None = None  # {"name": [values]}
    holdout: dict[str, list[Any]] | None = None
    environment: dict[str, Any] | None = None


def signature_from_json(data: dict[str, Any], source: str) -> Signature:
    """Our signature format, or the recipes' older {"inputs": [...], "output": {...}}."""
    try:
        if "output" in data and "outputs" not in data:
            out = data["output"] or {}
            return Signature(tuple(ColumnSpec(str(c["name"]), normalise_dtype(str(c["dtype"]))) for c in data["inputs"]),
                             (ColumnSpec("prediction", normalise_dtype(str(out.get("dtype") or "float64"))),),
                             str(out.get("task") or "other"), tuple(out.get("classes") or ()))
        return Signature.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{source} is not a readable signature: missing {exc}") from None
    except UsageError as exc:
        raise UsageError(f"{source}: {exc.message}", hint=exc.hint) from None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path.name} cannot be read: {exc}") from None


def _columns(path: Path) -> dict[str, list[Any]] | None:
    if not path.is_file():
        return None
    data = _json(path)
    cols = data.get("columns") if isinstance(data, dict) else None
    if not isinstance(cols, dict):
        raise UsageError(f"{path.name} must hold {{\"columns\": {{name: [values]}}}}")
    return cols


def read_folder(root: Path, model_file: Path | None, flavor: str | None) -> ModelSource:
    """Work out flavor and model file of a materialised artifact; `flavor` (given by the user) must fit the files."""
    meta_candidates = [root / META_FILE] + ([model_file.parent / META_FILE] if model_file else [])
    meta_path = next((p for p in meta_candidates if p.is_file()), None)
    meta = _json(meta_path) if meta_path else {}
    meta_flavor = {"sklearn": "sklearn", "torch-mlp": "pytorch", "pytorch": "pytorch", "onnx": "onnx"}.get(
        str(meta.get("flavor", "")), "")
    if model_file is None and meta_flavor:
        wanted = {"sklearn": ("model.skops",), "pytorch": ("model.pt", "weights.pt"), "onnx": ("model.onnx",)}
        model_file = next((root / n for n in wanted[meta_flavor] if (root / n).is_file()), None)
    if model_file is None and flavor != "python":
        candidates = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in
                            (*_BY_SUFFIX, ".pkl", ".pickle", ".joblib"))
        if len(candidates) == 1:
            model_file = candidates[0]
        elif not candidates:
            raise UsageError("the artifact holds no model file (.skops, .onnx, .pt)",
                             hint="pass --artifact PATH of the model file and its --flavor")
        else:
            raise UsageError("the artifact holds several model files: "
                             + ", ".join(p.relative_to(root).as_posix() for p in candidates[:6]),
                             hint="pass --artifact PATH of the one to register")
    detected = meta_flavor or (_BY_SUFFIX.get(model_file.suffix.lower(), "") if model_file else "")
    if model_file is not None and model_file.suffix.lower() in (".pkl", ".pickle", ".joblib") and not flavor:
        detected = "sklearn"  # refused by the sklearn flavor with a word about pickles
    chosen = flavor or detected
    if not chosen:
        raise UsageError(f"cannot tell the flavor of {model_file.name if model_file else 'the artifact'}",
                         hint="pass --flavor " + "|".join(FLAVORS))
    if chosen not in FLAVORS:
        raise UsageError(f"unknown flavor {chosen!r}", hint="use one of " + ", ".join(FLAVORS))
    if flavor and meta_flavor and flavor != meta_flavor:
        raise UsageError(f"the artifact is a {meta_flavor} model (its {META_FILE} says {meta.get('flavor')!r}), "
                         f"not {flavor}", hint=f"leave out --flavor, or pass --flavor {meta_flavor}")
    base = model_file.parent if model_file else root
    sig_path = base / SIGNATURE_FILE
    env_path = base / ENVIRONMENT_FILE
    return ModelSource(root=root, flavor=chosen, model_file=model_file, meta=meta,
                       signature=signature_from_json(_json(sig_path), sig_path.name) if sig_path.is_file() else None,
                       example=_columns(base / EXAMPLE_FILE), holdout=_columns(base / HOLDOUT_FILE),
                       environment=_json(env_path) if env_path.is_file() else None)


def materialise_run_artifact(store: Any, run_uuid: str, artifact: str | None, dest: Path) -> tuple[str, Path | None]:
    """Copy a run's artifact (a file or a folder of files) out of the object store into `dest`.

    Returns (artifact path as registered, the model file if the artifact is one file). With no `artifact`, the
    folder holding MLmodel.json (what the recipes log) is taken.
    """
    artifacts = store.list_artifacts(run_uuid)
    paths = {a.path: a for a in artifacts}
    if artifact is None:
        metas = sorted(p for p in paths if p.rsplit("/", 1)[-1] == META_FILE)
        if len(metas) > 1:
            raise UsageError(f"run {run_uuid[:8]} has several model folders: "
                             + ", ".join(m.rsplit("/", 1)[0] if "/" in m else "." for m in metas),
                             hint="pass --artifact FOLDER")
        if not metas:
            listed = ", ".join(sorted(paths)[:8]) or "none"
            raise UsageError(f"run {run_uuid[:8]} has no model artifact that says what it is ({META_FILE})",
                             hint=f"pass --artifact PATH --flavor F; its artifacts: {listed}")
        artifact = metas[0].rsplit("/", 1)[0] if "/" in metas[0] else ""
    artifact = artifact.strip("/")
    if artifact in paths:
        target = dest / Path(artifact).name
        _copy_blob(store, paths[artifact], target)
        folder = artifact.rsplit("/", 1)[0] + "/" if "/" in artifact else ""
        for extra in (SIGNATURE_FILE, EXAMPLE_FILE, HOLDOUT_FILE, ENVIRONMENT_FILE):  # what describes the file
            if folder + extra in paths and folder + extra != artifact:
                _copy_blob(store, paths[folder + extra], dest / extra)
        return artifact, target
    prefix = f"{artifact}/" if artifact else ""
    members = [a for p, a in paths.items() if p.startswith(prefix)]
    if not members:
        listed = ", ".join(sorted(paths)[:8]) or "none"
        raise NotFoundError(f"run {run_uuid[:8]} has no artifact {artifact!r}", hint=f"its artifacts: {listed}")
    for a in members:
        _copy_blob(store, a, dest / a.path[len(prefix):])
    return artifact, None


def _copy_blob(store: Any, art: Any, target: Path) -> None:
    from mlops_desktop.registry.bundle import sha256_file
    from mlops_desktop.tracking import blobs

    src = blobs.blob_path(store.paths.objects, art.digest)
    if not src.is_file():
        raise NotFoundError(f"the artifact file {art.path} is missing from the workspace's object store")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    if sha256_file(target) != art.digest:
        raise UsageError(f"the artifact file {art.path} no longer matches its recorded sha256 (object store damaged)")
