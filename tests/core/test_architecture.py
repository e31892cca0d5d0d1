"""Layering rules: the core never imports Qt; start-up stays light; every CLI command explains itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mlops_desktop"
QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6", "PyQt5", "PyQt6")


def python_files_outside_gui():
    for path in PACKAGE.rglob("*.py"):
        if "gui" not in path.relative_to(PACKAGE).parts:
            yield path


@pytest.mark.parametrize("path", list(python_files_outside_gui()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_modules_never_import_qt(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            assert not name.startswith(QT_MODULES), f"{path.relative_to(PACKAGE)} imports {name}"


def test_core_works_when_qt_cannot_be_imported():
    """Run the core with Qt made unimportable, as on a headless server."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'):
            raise ImportError('Qt blocked for this test')
sys.meta_path.insert(0, Block())
import tempfile
import mlops_desktop.tracking as mt
from mlops_desktop.cli.main import main
home = tempfile.mkdtemp()
with mt.start_run(experiment='e', home=home):
    mt.log_metric('x', 1.0)
assert main(['--home', home, 'runs', 'list']) == 0
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_start_up_does_not_import_heavy_libraries():
    code = """
import sys
from mlops_desktop.cli.main import main
import io, contextlib, tempfile
with contextlib.redirect_stdout(io.StringIO()):
    main(['--home', tempfile.mkdtemp(), 'experiments', 'list'])
heavy = [m for m in ('torch', 'sklearn', 'polars', 'pandas', 'PySide6', 'pyqtgraph', 'paramiko', 'docker', 'mlflow')
         if m in sys.modules]
print(','.join(heavy))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"imported at start-up: {proc.stdout.strip()}"


def _all_subparsers(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield prefix + (name,), helps.get(name), sub
                yield from _all_subparsers(sub, prefix + (name,))


def test_every_cli_command_has_help_text():
    from mlops_desktop.cli.main import build_parser

    commands = list(_all_subparsers(build_parser()))
    assert len(commands) >= 12
    missing = [" ".join(path) for path, help_text, _ in commands if not help_text]
    assert not missing, f"commands without help: {missing}"


def test_modules_start_with_a_docstring():
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert not missing, f"modules without a docstring line: {missing}"


# Packages that everything builds on: they may import each other's kind (errors, paths, ...) but no capability.
FOUNDATION = ("store",)
CAPABILITIES = ("tracking", "data", "execution", "recipes", "registry", "serving", "containers", "deploy",
                "monitoring", "promotion", "backtest", "audit", "interop", "gui", "cli")


@pytest.mark.parametrize("package", FOUNDATION)
def test_foundation_packages_import_no_capability(package):
    """store/ applies migrations; it must not know the capabilities whose tables they create."""
    for path in (PACKAGE / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module] if node.level == 0 else []
            for module in modules:
                parts = module.split(".")
                assert not (parts[0] == "mlops_desktop" and len(parts) > 1 and parts[1] in CAPABILITIES), \
                    f"{path.relative_to(PACKAGE)} imports {module}"


def test_test_module_basenames_are_unique():
    """pytest's rootdir import mode refuses two test modules with one basename: the whole run stops at collection."""
    tests = PACKAGE.parent / "tests"
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted(tests.rglob("*.py")):
        if path.name in {"__init__.py", "conftest.py"} or "mlflow_examples" in path.parts:
            continue
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(tests)} and {path.relative_to(tests)}")
        seen.setdefault(path.name, path)
    assert not clashes, "test modules share a basename: " + "; ".join(clashes)
