"""The workspace from a Jupyter notebook: datasets as frames, runs and series as DataFrames, quick plots, models.

    import mlops_desktop.notebook as nb
    lab = nb.open()                      # $MLOPS_DESKTOP_HOME (set by `mlops-desktop notebook`) or the default
    lab.dataset("wine")                  # a polars LazyFrame of the latest version; kind="pandas" for pandas
    lab.runs("iris-classifiers")         # one row per run: fields, params.*, metrics.* (last values)
    lab.series(run, "loss")              # step, timestamp, value of one metric
    lab.plot(run, ["loss", "val_loss"])  # a matplotlib Figure
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

from mlops_desktop.workspace import Workspace

__all__ = ["Lab", "open"]


class Lab:
    """A notebook's handle on one workspace (pass it around; nothing here is global)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def __repr__(self) -> str:
        return f"Lab({str(self.workspace.paths.root)!r})"

    def close(self) -> None:
        self.workspace.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------------------- data
    def datasets(self) -> Any:
        """The lake's datasets (latest versions) as a pandas DataFrame."""
        import pandas as pd

        from mlops_desktop.data import catalog

        rows = [v.to_dict() for v in catalog.list_datasets(self.workspace.db)]
        return pd.DataFrame(rows)

    def dataset(self, ref: str, kind: str = "lazy") -> Any:
        """A dataset version ("name" = latest, "name@3"): polars LazyFrame (kind="lazy"), "polars" or "pandas"."""
        from mlops_desktop.data.lake import open_dataset

        return open_dataset(self.workspace, ref, kind, context="notebook")

    # -------------------------------------------------------------------------------------------------- runs
    def runs(self, experiment: str | None = None, filter: str = "", *, order_by: list[str] | None = None,
             limit: int = 1000) -> Any:
        """Runs as a pandas DataFrame: uuid, name, status, times, then params.* and metrics.* (last value)."""
        import pandas as pd

        store = self.workspace.tracking
        exp_ids = [store.resolve_experiment(experiment).id] if experiment else None
        page = store.search_runs(exp_ids, filter or None, order_by, limit, 0)
        names = {e.id: e.name for e in store.list_experiments()}
        rows = []
        for run in page.runs:
            row: dict[str, Any] = {"uuid": run.uuid, "name": run.name, "experiment": names.get(run.experiment_id),
                                   "status": run.status, "start": pd.to_datetime(run.start_time, unit="s", utc=True),
                                   "end": (pd.to_datetime(run.end_time, unit="s", utc=True)
                                           if run.end_time is not None else pd.NaT),
                                   "parent": run.parent_uuid}
            row.update({f"params.{k}": _number_or_text(v) for k, v in sorted(run.params.items())})
            row.update({f"metrics.{k}": m.last for k, m in sorted(run.metrics.items())})
            rows.append(row)
        return pd.DataFrame(rows)

    def run(self, ref: str) -> Any:
        """One run (a uuid or a unique prefix) as the tracking store's Run: params, tags, metric summaries."""
        store = self.workspace.tracking
        return store.get_run(store.resolve_run_uuid(ref))

    def series(self, run: str, key: str, *, points: int = 0) -> Any:
        """A metric's full history as a pandas DataFrame (step, timestamp, value); points>0 downsamples (min/max)."""
        import pandas as pd

        store = self.workspace.tracking
        uuid = store.resolve_run_uuid(run)
        hist = store.metric_history_downsampled(uuid, key, points) if points else store.metric_history(uuid, key)
        return pd.DataFrame({"step": hist.steps, "timestamp": pd.to_datetime(hist.timestamps_ms, unit="ms", utc=True),
                             "value": hist.values})

    def artifact(self, run: str, path: str) -> Path:
        """The local file of a run's artifact (read-only: it is the content-addressed copy)."""
        store = self.workspace.tracking
        return store.artifact_file(store.resolve_run_uuid(run), path)

    # -------------------------------------------------------------------------------------------------- plots
    def plot(self, runs: str | list[str], keys: str | list[str], *, x: str = "step", points: int = 2000) -> Any:
        """One matplotlib Figure: each metric of each run against step (or x="time"), min/max-downsampled."""
        run_list = [runs] if isinstance(runs, str) else list(runs)
        key_list = [keys] if isinstance(keys, str) else list(keys)
        fig = _figure(8, 4)
        ax = fig.add_subplot()
        store = self.workspace.tracking
        for ref in run_list:
            uuid = store.resolve_run_uuid(ref)
            label_run = store.get_run(uuid).name or uuid[:8]
            for key in key_list:
                hist = store.metric_history_downsampled(uuid, key, points, x="time" if x == "time" else "step")
                xs = hist.timestamps_ms.astype("datetime64[ms]") if x == "time" else hist.steps
                ax.plot(xs, hist.values, label=f"{label_run} · {key}" if len(run_list) > 1 else key, linewidth=1.2)
        ax.set_xlabel("time" if x == "time" else "step")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        return fig

    def plot_dataset(self, ref: str, column: str, *, bins: int = 40) -> Any:
        """A histogram of one column of a dataset version (matplotlib Figure)."""
        frame = self.dataset(ref, "lazy").select(column).collect()
        fig = _figure(6, 3.5)
        ax = fig.add_subplot()
        series = frame[column].drop_nulls()
        if series.dtype.is_numeric():
            ax.hist(series.to_numpy(), bins=bins)
        else:
            counts = series.value_counts(sort=True).head(30)
            ax.bar([str(v) for v in counts[column].to_list()], counts["count"].to_list())
            ax.tick_params(axis="x", rotation=45)
        ax.set_title(f"{ref} · {column}")
        return fig

    # -------------------------------------------------------------------------------------------------- models
    def model(self, ref: str) -> Any:
        """A model version ("name@alias", "name/3" or "name" for the latest) as a loaded, verified predictor:
        `predict({column: array})` -> {"prediction": ..., "probabilities": ...}; `.signature` names its inputs."""
        from mlops_desktop.registry import load_predictor

        return load_predictor(self.workspace, ref)

    def model_example(self, ref: str) -> dict[str, Any] | None:
        """The input example registered with a model version, as columns (ready for `lab.model(ref).predict`)."""
        from mlops_desktop.registry import input_example

        return input_example(self.workspace, ref)


def open(home: str | Path | None = None) -> Lab:  # noqa: A001 - the natural verb for a notebook
    """The workspace at ``home``, else $MLOPS_DESKTOP_HOME, else the user's default workspace."""
    return Lab(Workspace.open(home))


@functools.cache
def _figure_class() -> type:
    from matplotlib.figure import Figure  # no pyplot: never a GUI window, the same in any kernel or script

    class NotebookFigure(Figure):
        """A Figure that Jupyter shows as a PNG (a bare Figure has no rich display without pyplot)."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100)
            return buffer.getvalue()

    return NotebookFigure


def _figure(width: float, height: float) -> Any:
    return _figure_class()(figsize=(width, height), layout="constrained")


def _number_or_text(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
