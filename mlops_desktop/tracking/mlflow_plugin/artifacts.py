"""The `mlops-desktop` artifact repository for the mlflow package (entry point `mlflow.artifact_repository`):
a run's or a logged model's artifacts in the workspace's content-addressed object store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlflow.entities import FileInfo
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from mlops_desktop.errors import NotFoundError
from mlops_desktop.tracking import blobs
from mlops_desktop.tracking import uri as uris
from mlops_desktop.tracking.entities import Artifact
from mlops_desktop.tracking.mlflow_api.artifacts import list_children
from mlops_desktop.tracking.mlflow_plugin.convert import mlflow_errors
from mlops_desktop.tracking.mlflow_tables import MlflowTables


class MlopsDesktopArtifactRepository(ArtifactRepository):
    """Artifacts below mlops-desktop:///WS/runs/RUN/artifacts[/PATH] or .../models/MODEL/artifacts[/PATH]."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        self._loc = uris.parse_artifact_uri(artifact_uri)
        if self._loc.kind not in ("runs", "models"):
            raise NotFoundError(f"{artifact_uri!r} is an experiment, not a run's or a model's artifacts")
        self._ws: Any = None

    def _workspace(self) -> Any:
        if self._ws is None:
            from mlops_desktop.workspace import Workspace

            self._ws = Workspace.open(self._loc.root, create=False)
        return self._ws

    def _full(self, path: str | None) -> str:
        parts = [p for p in (self._loc.path, (path or "").strip("/")) if p]
        return "/".join(parts)

    def _artifacts(self) -> list[Artifact]:
        ws = self._workspace()
        if self._loc.kind == "runs":
            return ws.tracking.list_artifacts(self._loc.ident)
        return MlflowTables(ws.tracking).get_logged_model(self._loc.ident, allow_deleted=True).artifacts

    def _store_file(self, local: Path, folder: str) -> None:
        ws = self._workspace()
        if self._loc.kind == "runs":
            ws.tracking.log_artifact(self._loc.ident, local, folder or None)
        else:
            MlflowTables(ws.tracking).log_model_artifact(self._loc.ident, local, folder or None)

    @mlflow_errors
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        self._store_file(Path(local_file), self._full(artifact_path))

    @mlflow_errors
    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        folder = Path(local_dir)
        for child in sorted(folder.iterdir()):
            self._store_file(child, self._full(artifact_path))

    @mlflow_errors
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        base = self._loc.path
        out = []
        for info in list_children(self._artifacts(), self._full(path)):
            rel = info.path[len(base) + 1:] if base else info.path
            out.append(FileInfo(rel, info.is_dir, info.file_size))
        return out

    @mlflow_errors
    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        wanted = self._full(remote_file_path)
        for a in self._artifacts():
            if a.path == wanted:
                shutil.copyfile(blobs.blob_path(self._workspace().paths.objects, a.digest), local_path)
                Path(local_path).chmod(0o644)
                return
        raise NotFoundError(f"no artifact {wanted!r} in {self.artifact_uri}")
