"""Model bundles: one immutable, content-hashed directory per model version, loadable from the directory alone.

    <models>/<bundle hash>/
        bundle.json          the manifest (canonical JSON): format, flavor + its config, signature, input example,
                             environment, fast path, source, and every other file with its sha256 and size
        model/...            the flavor's files (model.skops, weights.pt, model.onnx, ...)
        code/...             the project code a python flavor or a PyTorch architecture needs
        fast/model.onnx      the verified ONNX fast path of a scikit-learn model, if any
        input_example.json   a few input rows as columns

The bundle hash is the sha256 of bundle.json's bytes, so it covers every file. `open_bundle` checks the manifest
against the expected hash (given, or the directory's name) and every file against the manifest, and refuses a
bundle that was changed, lost a file or gained one, in words. Nothing here needs the workspace or the database:
a container that holds only this directory and the package loads it with `load_predictor_from_dir`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_desktop.errors import MlopsError, UsageError
from mlops_desktop.registry.predictor import Predictor
from mlops_desktop.registry.signature import Signature

MANIFEST = "bundle.json"
FORMAT = "mlops-desktop-bundle"
FORMAT_VERSION = 1
STAGING = ".staging"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_IGNORED_DIRS = {"__pycache__"}  # Python may write bytecode next to copied code; never part of the bundle
FLAVOR_MODULES = {
    "sklearn": "mlops_desktop.registry.flavors.sklearn",
    "pytorch": "mlops_desktop.registry.flavors.pytorch",
    "onnx": "mlops_desktop.registry.flavors.onnx",
    "python": "mlops_desktop.registry.flavors.python",
}


class BundleError(MlopsError):
    """A bundle that cannot be trusted or read: changed after registration, incomplete, or not a bundle."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    hash: str
    manifest: dict[str, Any]
    anchored: bool = True  # False: the manifest was checked against nothing but itself (no expected hash)

    @property
    def flavor(self) -> str:
        return str(self.manifest["flavor"])

    @property
    def flavor_config(self) -> dict[str, Any]:
        return dict(self.manifest.get("flavor_config") or {})

    @property
    def signature(self) -> Signature:
        return Signature.from_dict(self.manifest["signature"])

    @property
    def environment(self) -> dict[str, Any]:
        return dict(self.manifest.get("environment") or {})

    @property
    def fast_path(self) -> dict[str, Any]:
        return dict(self.manifest.get("fast_path") or {})

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest.get("files") or {})

    def file(self, rel: str) -> Path:
        if rel not in self.files:
            raise BundleError(f"bundle {self.hash[:12]} has no file {rel!r}")
        return self.path / rel

    def input_example(self) -> dict[str, Any] | None:
        """The input example as numpy columns typed by the signature (None if the bundle has none)."""
        from mlops_desktop.registry.example import read_example

        rel = self.manifest.get("input_example")
        return read_example(self.file(rel), self.signature) if rel else None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "hash": self.hash, **self.manifest}


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------- writing
def new_stage(models_root: Path) -> Path:
    """A private directory to build a bundle in; `seal` turns it into a bundle, `discard_stage` drops it."""
    sweep(models_root)
    stage = models_root / STAGING / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    stage.mkdir(parents=True)
    return stage


def discard_stage(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)


def sweep(models_root: Path) -> None:
    """Remove staging directories of processes that died while building a bundle."""
    from mlops_desktop.procs import pid_alive

    root = models_root / STAGING
    if not root.is_dir():
        return
    for child in root.iterdir():
        head = child.name.split("-", 1)[0]
        if head.isdigit() and int(head) != os.getpid() and not pid_alive(int(head)):
            shutil.rmtree(child, ignore_errors=True)


def _list_files(root: Path) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part in _IGNORED_DIRS for part in path.relative_to(root).parts):
            continue
        if path.is_symlink():
            raise UsageError(f"{rel} is a symbolic link; a bundle holds plain files only")
        if path.is_file() and rel != MANIFEST:
            files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return files


def seal(stage: Path, models_root: Path, *, flavor: str, flavor_config: dict[str, Any], signature: Signature,
         environment: dict[str, Any], input_example: str | None, fast_path: dict[str, Any] | None = None,
         source: dict[str, Any] | None = None) -> Bundle:
    """Write the manifest of the files in `stage` and move it to <models>/<hash>/ (kept if it already exists)."""
    if flavor not in FLAVOR_MODULES:
        raise UsageError(f"unknown flavor {flavor!r}", hint="use one of " + ", ".join(FLAVOR_MODULES))
    manifest: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "flavor": flavor,
                "flavor_config": flavor_config, "signature": signature.to_dict(), "environment": environment,
                "input_example": input_example, "fast_path": fast_path or {}, "source": source or {},
                "files": _list_files(stage)}
    if input_example and input_example not in manifest["files"]:
        raise UsageError(f"the input example {input_example} is not in the bundle")
    data = canonical_json(manifest)
    digest = hashlib.sha256(data).hexdigest()
    (stage / MANIFEST).write_bytes(data)
    final = models_root / digest
    if final.exists():
        discard_stage(stage)  # same content already stored (e.g. registered under another name)
        return open_bundle(final, digest)
    for path in stage.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # a hint to people and tools; the hashes are the real guard
    try:
        os.replace(stage, final)
    except OSError:
        if not final.exists():
            raise
        discard_stage(stage)  # another process stored the same bundle meanwhile
    return open_bundle(final, digest)


# ---------------------------------------------------------------------------------------------------- reading
def open_bundle(path: str | Path, expected_hash: str | None = None) -> Bundle:
    """Open and verify a bundle directory; BundleError names the file that does not match."""
    root = Path(path)
    manifest_path = root / MANIFEST
    label = f"model bundle {root}"
    if not root.is_dir():
        raise BundleError(f"{label} does not exist", hint="the workspace's models folder lost it; register again")
    try:
        data = manifest_path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{label} has no {MANIFEST}: it is not a bundle, or its manifest was deleted") from None
    except OSError as exc:
        raise BundleError(f"cannot read {manifest_path}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    expected = expected_hash or (root.name if _HASH.match(root.name) else None)
    if expected and digest != expected:
        raise BundleError(f"{label} was changed after it was registered: its manifest {MANIFEST} was edited "
                          f"(sha256 {digest[:12]}…, expected {expected[:12]}…)",
                          hint="do not edit bundles; register the model again to make a new version")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path} is not an MLOps Desktop bundle manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BundleError(f"{label} has format version {version}; this MLOps Desktop reads up to {FORMAT_VERSION}",
                          hint="upgrade MLOps Desktop to load it")
    if canonical_json(manifest) != data:
        raise BundleError(f"{label}: {MANIFEST} is not in canonical form, so it was edited by hand")
    _verify_files(root, manifest, label)
    return Bundle(root, digest, manifest, anchored=expected is not None)


def _verify_files(root: Path, manifest: dict[str, Any], label: str) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{label}: {MANIFEST} has no file list")
    for rel, meta in sorted(files.items()):
        path = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise BundleError(f"{label}: {MANIFEST} names a file outside the bundle ({rel!r})")
        if not path.is_file() or path.is_symlink():
            raise BundleError(f"{label} is incomplete: file {rel} is missing",
                              hint="restore the workspace's models folder from a backup, or register again")
        if path.stat().st_size != meta.get("size") or sha256_file(path) != meta.get("sha256"):
            raise BundleError(f"{label} was changed after it was registered: file {rel} no longer matches its "
                              "recorded sha256", hint="do not edit bundles; register the model again")
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(p in _IGNORED_DIRS for p in parts) or path.suffix == ".pyc":
            continue
        rel = path.relative_to(root).as_posix()
        if (path.is_file() or path.is_symlink()) and rel != MANIFEST and rel not in files:
            raise BundleError(f"{label} was changed after it was registered: file {rel} was added",
                              hint="remove it; a bundle holds exactly the files its manifest lists")


def load_predictor_from_dir(path: str | Path, expected_hash: str | None = None, *,
                            prefer_onnx: bool = True) -> Predictor:
    """Verify a bundle directory and load it into a Predictor (no workspace, no database needed)."""
    return load_predictor_from_bundle(open_bundle(path, expected_hash), prefer_onnx=prefer_onnx)


def load_predictor_from_bundle(bundle: Bundle, *, prefer_onnx: bool = True) -> Predictor:
    import importlib

    module_name = FLAVOR_MODULES.get(bundle.flavor)
    if module_name is None:
        raise BundleError(f"bundle {bundle.hash[:12]} has the unknown flavor {bundle.flavor!r}",
                          hint="upgrade MLOps Desktop to load it")
    module = importlib.import_module(module_name)
    if prefer_onnx and bundle.fast_path.get("status") == "verified":
        from mlops_desktop.registry.flavors import onnx as onnx_flavor

        with contextlib.suppress(ImportError):  # onnxruntime missing here: the flavor's own path still works
            return onnx_flavor.load_fast_path(bundle)
    predictor: Predictor = module.load(bundle)
    return predictor


def expected_serving_path(manifest: dict[str, Any], prefer_onnx: bool = True) -> str:
    """What will compute the predictions of a bundle (shown before loading it)."""
    if prefer_onnx and (manifest.get("fast_path") or {}).get("status") == "verified":
        return "onnxruntime"
    return {"sklearn": "sklearn", "pytorch": "torch", "onnx": "onnxruntime", "python": "python"}.get(
        str(manifest.get("flavor")), str(manifest.get("flavor")))
