"""The Models area tests' workspace: `mlops-desktop demo` fills one template (it takes a while, minutes on a busy
machine); each test gets its own copy of it, so nothing is shared on disk between tests.

The template is kept in pytest's cache (`.pytest_cache`), keyed by a hash of the code that writes it (the demo,
the registry, the schemas), so a later session reuses it until that code changes; `pytest --cache-clear` redoes it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import mlops_desktop

PACKAGE = Path(mlops_desktop.__file__).resolve().parent


def _code_key() -> str:
    digest = hashlib.sha256()
    files = [PACKAGE / "demo.py", PACKAGE / "schema.py", *sorted((PACKAGE / "registry").rglob("*.py")),
             *sorted(PACKAGE.glob("*/schema.py")), *sorted((PACKAGE / "tracking").glob("*.py"))]
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def demo_template(request) -> Path:
    """The demo workspace (iris-classifier with 4 versions and aliases, diabetes-regressor), made once."""
    cache = getattr(request.config, "cache", None)   # None under `-p no:cacheprovider`: once per session then
    name = f"models-demo-{_code_key()}"
    root = Path(cache.mkdir(name)) if cache is not None else \
        request.getfixturevalue("tmp_path_factory").getbasetemp() / name
    root.mkdir(parents=True, exist_ok=True)
    done = root / "filled"
    if not done.exists():
        from mlops_desktop.demo import fill_demo

        shutil.rmtree(root / "ws", ignore_errors=True)
        fill_demo(root / "ws", with_torch=False)
        done.write_text("ok", encoding="utf-8")
    return root / "ws"


def demo_copy(request, tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    shutil.copytree(demo_template(request), home)
    return home
