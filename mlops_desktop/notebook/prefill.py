"""Write a notebook prefilled for one dataset version, run or model version ("Open in notebook")."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError

KINDS = ("dataset", "run", "model")


def _cell(kind: str, source: str) -> dict:
    cell: dict = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def notebook_cells(kind: str, ref: str, *, metrics: list[str] | None = None) -> list[dict]:
    """The cells: open the workspace, then the one that loads the thing (refs written as Python literals)."""
    if kind not in KINDS:
        raise UsageError(f"cannot open a {kind!r} in a notebook", hint="one of: " + ", ".join(KINDS))
    lit = json.dumps(ref)
    cells = [_cell("markdown", f"# {kind.capitalize()} {ref}\n\nOpened from MLOps Desktop. "
                   "`lab` is this workspace (see `help(lab)`)."),
             _cell("code", "import mlops_desktop.notebook as nb\n\nlab = nb.open()  # the workspace the app has open")]
    if kind == "dataset":
        cells.append(_cell("code", f"frame = lab.dataset({lit}, \"pandas\")\nframe.describe(include=\"all\").T"))
        cells.append(_cell("code", "frame.head(20)"))
    elif kind == "run":
        keys = json.dumps(metrics or [])
        cells.append(_cell("code", f"run = lab.run({lit})\nrun.params, {{k: m.last for k, m in run.metrics.items()}}"))
        cells.append(_cell("code", f"lab.plot({lit}, {keys} or sorted(run.metrics)[:4])"))
    else:
        cells.append(_cell("code", f"model = lab.model({lit})\nmodel.signature"))
        cells.append(_cell("code", f"example = lab.model_example({lit})  # columns: {{name: array}}\n"
                           "model.predict(example) if example else None"))
    return cells


def write_notebook(folder: Path, kind: str, ref: str, *, metrics: list[str] | None = None) -> Path:
    """A new .ipynb in FOLDER named after the thing; an existing one is never overwritten (-2, -3... instead)."""
    cells = notebook_cells(kind, ref, metrics=metrics)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", ref).strip("._") or kind)[:80]
    path, n = folder / f"{stem}.ipynb", 2
    while path.exists():
        path, n = folder / f"{stem}-{n}.ipynb", n + 1
    for i, cell in enumerate(cells):
        cell["id"] = f"{kind}-{i}"
    doc = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                       "name": "python3"},
                                        "language_info": {"name": "python"}},
           "nbformat": 4, "nbformat_minor": 5}
    tmp = path.with_suffix(".ipynb.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def notebook_command(home: Path, notebook: Path) -> list[str]:
    """The argv that serves NOTEBOOK in JupyterLab for the workspace at HOME (run detached by the GUI).

    The frozen app bundles no JupyterLab: it hands over to the user's Python, which needs mlops-desktop[notebook].
    """
    import shutil
    import subprocess
    import sys

    python = sys.executable
    if getattr(sys, "frozen", False):
        python = shutil.which("python3") or ""
        check = subprocess.run([python, "-c", "import mlops_desktop.notebook, jupyterlab"], capture_output=True,
                               timeout=60) if python else None
        if check is None or check.returncode != 0:
            raise UsageError("notebooks need MLOps Desktop and JupyterLab in your Python environment",
                             hint='pip install "mlops-desktop[notebook]" into the python3 on PATH')
    return [python, "-m", "mlops_desktop", "notebook", "--home", str(home), "--open", str(notebook)]


def open_in_notebook(home: Path, kind: str, ref: str, *, metrics: list[str] | None = None) -> tuple[Path, Any]:
    """Write the prefilled notebook into HOME/notebooks and start JupyterLab on it, detached.

    Returns the notebook's path and the server's process (it outlives the app; Ctrl+C or its page stops it).
    """
    import subprocess

    path = write_notebook(home / "notebooks", kind, ref, metrics=metrics)
    argv = notebook_command(home, path)
    log = home / "logs" / "jupyterlab.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return path, process
