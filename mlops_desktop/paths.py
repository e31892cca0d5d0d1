"""The one place that computes user paths: the default workspace and the workspace layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_desktop import envvars

APP_NAME = "mlops-desktop"


def default_home() -> Path:
    """Workspace directory: --home, else $MLOPS_DESKTOP_HOME, else the platform's user data dir."""
    env = envvars.MLOPS_DESKTOP_HOME.get()
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "workspace"


def resolve_home(home: str | Path | None) -> Path:
    # absolute, so that jobs started in another directory see the same workspace
    return Path(home).expanduser().resolve() if home else default_home()


@dataclass(frozen=True)
class WorkspacePaths:
    """Where each part of a workspace lives; every module asks this object, never builds paths itself."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "mlops.db"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def objects(self) -> Path:
        """Content-addressed artifact blobs (sha256)."""
        return self.artifacts / "objects"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def models(self) -> Path:
        """Model bundles: one immutable directory per bundle hash (registry)."""
        return self.root / "models"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def serving(self) -> Path:
        """Managed model servers: one folder each (log, status file, prediction-log segments)."""
        return self.root / "serving"

    @property
    def containers(self) -> Path:
        """Image builds: the stripped-library cache and build scratch space (containers/)."""
        return self.root / "containers"

    @property
    def crash_reports(self) -> Path:
        return self.root / "crash"
