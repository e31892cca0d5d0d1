"""Where a served model comes from: a bundle folder (no workspace), the registry (MODEL@ALIAS, MODEL/VERSION), or a
factory callable (tests, benchmarks, and predictors built in code).

This is the one seam between the server and the registry: the server itself only sees `ServedModel`s.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.serving.app import ServedModel

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Target:
    """A resolved model reference: what a server process is started with (`argv` for `python -m ...serving`)."""

    model: str
    version: str
    argv: tuple[str, ...]


def from_bundle(path: str | Path, *, name: str | None = None, version: str | None = None,
                expected_hash: str | None = None, prefer_onnx: bool = True) -> ServedModel:
    """A bundle folder alone (a container's /model): no workspace, no database. Every file is checked against the
    manifest, and the manifest against `expected_hash` when given (the registry's record of the version)."""
    from mlops_desktop.registry.bundle import load_predictor_from_bundle, open_bundle

    folder = Path(path)
    if not folder.is_dir():
        raise NotFoundError(f"no model bundle at {folder}")
    bundle = open_bundle(folder, expected_hash)
    predictor = load_predictor_from_bundle(bundle, prefer_onnx=prefer_onnx)
    return ServedModel(name or folder.name, version or "1", predictor, bundle_hash=bundle.hash)


def from_factory(spec: str, *, name: str | None = None, version: str | None = None) -> ServedModel:
    """`module:callable` returning a Predictor or a ServedModel (the callable gets name and version if it takes
    them). Imports code of this environment, as running it would: never a file from a request."""
    if not FACTORY_RE.match(spec):
        raise UsageError(f"--factory {spec!r} is not MODULE:CALLABLE")
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load the factory {spec}: {exc}") from None
    made = fn(name=name, version=version)
    if isinstance(made, ServedModel):
        return made
    return ServedModel(name or "model", version or "1", made)


def resolve(ws: Workspace, ref: str) -> Target:
    """MODEL@ALIAS, MODEL/VERSION or MODEL (its latest version) -> the version's bundle folder, through the registry;
    the server process re-checks the bundle against the hash the registry recorded."""
    from mlops_desktop import registry

    version = registry.resolve(ws, ref)
    folder = registry.bundle_dir(ws, version)
    number = str(version.version)
    return Target(version.name, number, ("--bundle", str(folder), "--bundle-hash", version.bundle_hash,
                                         "--name", version.name, "--version", number))
