"""The environment a model needs: the Python version and the exact versions of the packages it imports.

Recipes call `capture()` at training time and save it as `environment.json` next to the model, so the bundle
records what the model was trained with, not what happens to be installed when it is registered.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from typing import Any

ENVIRONMENT_FILE = "environment.json"


def distributions_of(modules: Iterable[str]) -> dict[str, str]:
    """Installed distribution name -> version for the top-level modules given ('sklearn' -> 'scikit-learn')."""
    from importlib import metadata

    mapping = metadata.packages_distributions()
    out: dict[str, str] = {}
    for module in modules:
        top = module.split(".", 1)[0]
        if not top or top in sys.stdlib_module_names or top == "builtins":
            continue
        for dist in mapping.get(top, []):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def capture(modules: Iterable[str]) -> dict[str, Any]:
    """This interpreter's version and the packages behind `modules` (and what they import at top level)."""
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": sys.platform, "packages": distributions_of(modules)}


def modules_of_object(obj: Any, limit: int = 10_000) -> set[str]:
    """Top-level modules of the classes inside a fitted estimator or pipeline (walking attributes and params)."""
    seen: set[int] = set()
    found: set[str] = set()
    todo = [obj]
    while todo and len(seen) < limit:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        module = getattr(type(item), "__module__", "") or ""
        found.add(module.split(".", 1)[0])
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            todo.extend(vars(item).values())
    return {m for m in found if m}
