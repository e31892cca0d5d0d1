"""The fluent API's process state: where runs go (set_tracking_uri), the active experiment, the last run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_desktop import envvars
from mlops_desktop.tracking import uri as uris


@dataclass
class _State:
    tracking_home: Path | None = None       # set by set_tracking_uri; None: the environment decides
    tracking_home_set: bool = False
    experiment_home: Path | None = None     # the workspace the active experiment belongs to
    experiment_id: int | None = None        # set by set_experiment
    experiment_name: str | None = None      # set by set_experiment (what a spooled run records)
    last_run_id: str | None = None
    last_run_home: Path | None = None


state = _State()


def set_tracking_home(home: Path | None) -> None:
    state.tracking_home = home
    state.tracking_home_set = True
    state.experiment_id = None  # an experiment id means nothing in another workspace


def resolve_home(home: str | Path | None = None) -> Path:
    """The workspace: ``home``, else set_tracking_uri(), else $MLOPS_DESKTOP_HOME, else an mlops-desktop
    $MLFLOW_TRACKING_URI, else the default workspace in the user data dir."""
    from mlops_desktop.paths import default_home
    from mlops_desktop.paths import resolve_home as resolve

    if home is not None:
        return resolve(home)
    if state.tracking_home_set:
        return state.tracking_home or default_home()
    if envvars.MLOPS_DESKTOP_HOME.get():
        return default_home()
    env_uri = envvars.MLFLOW_TRACKING_URI.get()
    if env_uri and env_uri.startswith(uris.SCHEME + ":"):
        return uris.workspace_from_uri(env_uri) or default_home()
    return default_home()


def active_experiment_id(home: Path) -> int | None:
    if state.experiment_id is not None and state.experiment_home == home:
        return state.experiment_id
    return None


def set_active_experiment(home: Path, experiment_id: int) -> None:
    state.experiment_home = home
    state.experiment_id = experiment_id
