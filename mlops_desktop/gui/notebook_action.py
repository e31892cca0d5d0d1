"""'Open in notebook' for the views: writes the prefilled notebook and starts JupyterLab, off the GUI thread."""

from __future__ import annotations

from typing import Any


def open_in_notebook(ctx: Any, kind: str, ref: str, metrics: list[str] | None = None) -> None:
    """Submit one task: prefill a notebook for the dataset version / run / model version and open it."""
    home = ctx.workspace.paths.root

    def job(*, progress: Any) -> Any:
        from mlops_desktop.notebook.prefill import open_in_notebook as core_open

        return core_open(home, kind, ref, metrics=metrics)[0]

    ctx.tasks.submit(job, title=f"Open {kind} {ref} in a notebook", quiet=True,
                     on_done=lambda path: ctx.notifications.info(
                         "Notebook opening in JupyterLab", f"{path} (log: {home / 'logs' / 'jupyterlab.log'})"))
