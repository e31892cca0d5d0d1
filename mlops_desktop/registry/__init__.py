"""Model registry: content-hashed model bundles, registered models, versions, aliases and their audited history.

The public surface (what the server, the GUI, containers and back-tests call):
    resolve(ws, "NAME@ALIAS" | "NAME/VERSION" | "NAME") -> ModelVersion
    load_predictor(ws, ref_or_version, prefer_onnx=True) -> Predictor
    bundle_dir(ws, version) -> Path;  open_version_bundle(ws, version) -> Bundle (verified)
    input_example(ws, ref_or_version) -> {column: numpy array} | None
    load_predictor_from_dir(path) -> Predictor   (no workspace, no database: for containers)
    store(ws) -> RegistryStore (list, aliases, history, rollback, lineage);  register(ws, run, name, ...)
Heavy libraries (sklearn, torch, onnxruntime) are imported only when a model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.registry.bundle import Bundle, BundleError, load_predictor_from_dir, open_bundle
from mlops_desktop.registry.entities import AliasChange, ModelVersion, RegisteredModel, Registration
from mlops_desktop.registry.predictor import Predictor
from mlops_desktop.registry.sqlite_store import DEFAULT_PROTECTED_ALIASES, RegistryStore

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

__all__ = ["AliasChange", "Bundle", "BundleError", "ModelVersion", "Predictor", "RegisteredModel", "Registration",
           "RegistryStore", "bundle_dir", "input_example", "load_predictor", "load_predictor_from_dir",
           "open_bundle", "open_version_bundle", "protected_aliases", "register", "resolve", "store"]


def protected_aliases(ws: Workspace) -> tuple[str, ...]:
    """Aliases whose changes need a reason: settings.json "protected_aliases", default production, prod, champion."""
    from mlops_desktop.errors import UsageError

    value = ws.settings.extra.get("protected_aliases", list(DEFAULT_PROTECTED_ALIASES))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"settings: protected_aliases must be a list of alias names, got {value!r}")
    return tuple(value)


def store(ws: Workspace) -> RegistryStore:
    return RegistryStore(ws.db, protected_aliases(ws))


def resolve(ws: Workspace, ref: str | ModelVersion) -> ModelVersion:
    if isinstance(ref, ModelVersion):
        return ref
    return store(ws).resolve(ref)


def bundle_dir(ws: Workspace, version: ModelVersion | str) -> Path:
    return Path(ws.paths.models) / resolve(ws, version).bundle_hash


def open_version_bundle(ws: Workspace, version: ModelVersion | str) -> Bundle:
    """The version's bundle, verified against the hash the registry recorded."""
    mv = resolve(ws, version)
    return open_bundle(bundle_dir(ws, mv), mv.bundle_hash)


def load_predictor(ws: Workspace, ref_or_version: str | ModelVersion, prefer_onnx: bool = True) -> Predictor:
    from mlops_desktop.registry.bundle import load_predictor_from_bundle

    return load_predictor_from_bundle(open_version_bundle(ws, ref_or_version), prefer_onnx=prefer_onnx)


def input_example(ws: Workspace, ref_or_version: str | ModelVersion) -> dict[str, Any] | None:
    return open_version_bundle(ws, ref_or_version).input_example()


def register(ws: Workspace, run: str, name: str, **options: Any) -> Registration:
    """A run's artifact as the next version of `name`; see registry.register.register_run for the options."""
    from mlops_desktop.registry.registration import register_run

    return register_run(ws, store(ws), run, name, **options)
