"""Project code inside a bundle: copy the module a python flavor or a PyTorch architecture names into `code/`, and
import it from there when loading (so a container with only the bundle and our package still finds it)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError

CODE_DIR = "code"


def parse_entrypoint(text: str, what: str) -> tuple[str, str]:
    module, sep, attr = (text or "").partition(":")
    if not sep or not module or not attr or not all(p.isidentifier() for p in module.split(".") + attr.split(".")):
        raise UsageError(f"{what} {text!r} must look like module:callable (e.g. mypkg.models:build)")
    return module, attr


def _installed(origin: Path) -> bool:
    """Code that comes with an installed distribution (or this package) is part of the environment, not copied."""
    import mlops_desktop

    roots = [Path(p).resolve() for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                                          sysconfig.get_paths()["stdlib"]}]
    roots.append(Path(mlops_desktop.__file__).resolve().parent)
    return any(origin.is_relative_to(r) for r in roots)


def copy_module(module: str, stage: Path, project_dir: Path | None = None) -> str | None:
    """Copy the top-level package (or single module) of `module` into stage/code; None when it is installed code."""
    top = module.split(".", 1)[0]
    search = [str(project_dir)] if project_dir else []
    with _path(search):
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"cannot find module {top!r}: {exc}") from None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        if spec is not None and spec.origin in ("built-in", "frozen"):
            return None
        raise UsageError(f"cannot find module {top!r}",
                         hint="run from the project folder, or pass --project DIR")
    origin = Path(spec.origin).resolve()
    if _installed(origin):
        return None
    target = stage / CODE_DIR
    target.mkdir(parents=True, exist_ok=True)
    if spec.submodule_search_locations:  # a package: copy its Python files
        src = origin.parent
        for path in sorted(src.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            dest = target / top / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    else:
        shutil.copyfile(origin, target / origin.name)
    return CODE_DIR


@contextlib.contextmanager
def _path(entries: list[str]) -> Iterator[None]:
    added = [e for e in entries if e not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for e in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(e)


def resolve(entrypoint: str, code_root: Path | None, what: str) -> Any:
    """Import `module:attr`, from the bundle's code folder first; no bytecode is written into the bundle."""
    module_name, attr = parse_entrypoint(entrypoint, what)
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        with _path([str(code_root)] if code_root is not None else []):
            try:
                obj: Any = importlib.import_module(module_name)
            except ImportError as exc:
                raise UsageError(f"cannot import {module_name} for {what} {entrypoint}: {exc}") from None
    finally:
        sys.dont_write_bytecode = old
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{module_name} has no {attr!r} ({what} {entrypoint})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{what} {entrypoint} is not callable")
    return obj
