"""Tracking and artifact URIs of the `mlops-desktop` scheme: one workspace, its runs' and logged models' artifacts.

    mlops-desktop:///abs/path/to/workspace                         a workspace (the tracking URI)
    mlops-desktop:  or  mlops-desktop://                           the default workspace
    mlops-desktop:///abs/ws/runs/<run id>/artifacts[/sub/path]     a run's artifacts
    mlops-desktop:///abs/ws/models/<model id>/artifacts[/sub/path] a logged model's artifacts
    mlops-desktop:///abs/ws/experiments/<id>                       an experiment's artifact location
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from mlops_desktop.errors import UsageError

SCHEME = "mlops-desktop"
_ARTIFACTS = re.compile(r"^(?P<root>.*?)/(?P<kind>runs|models)/(?P<ident>[A-Za-z0-9_\-]+)/artifacts(?:/(?P<path>.*))?$")
_EXPERIMENT = re.compile(r"^(?P<root>.*?)/experiments/(?P<ident>\d+)/?$")


def workspace_from_uri(uri: str | Path | None) -> Path | None:
    """The workspace a tracking URI names: a plain path or mlops-desktop:///PATH; None means the default one."""
    if uri is None:
        return None
    if isinstance(uri, Path):
        return uri.expanduser().resolve()
    text = str(uri).strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme == SCHEME:
        if parts.netloc:
            raise UsageError(f"tracking URI {text!r} names a host ({parts.netloc!r}); this scheme is local only",
                             hint=f"write {SCHEME}:///ABSOLUTE/PATH (three slashes)")
        path = unquote(parts.path)
        return Path(path).expanduser().resolve() if path else None
    if parts.scheme == "file":
        return Path(unquote(parts.path)).expanduser().resolve()
    if parts.scheme and len(parts.scheme) > 1:  # not a Windows drive letter
        raise UsageError(f"MLOps Desktop cannot log to the tracking URI {text!r} ({parts.scheme} scheme)",
                         hint=f"use a workspace folder or {SCHEME}:///PATH; to keep an MLflow server, "
                              "use the mlflow package itself")
    return Path(text).expanduser().resolve()


def tracking_uri(root: Path) -> str:
    return f"{SCHEME}://{quote(root.as_posix())}"


def run_artifact_uri(root: Path, run_id: str, path: str = "") -> str:
    return _join(f"{tracking_uri(root)}/runs/{run_id}/artifacts", path)


def model_artifact_uri(root: Path, model_id: str, path: str = "") -> str:
    return _join(f"{tracking_uri(root)}/models/{model_id}/artifacts", path)


def experiment_uri(root: Path, experiment_id: int | str) -> str:
    return f"{tracking_uri(root)}/experiments/{experiment_id}"


def _join(base: str, path: str | None) -> str:
    path = (path or "").strip("/")
    return f"{base}/{quote(path)}" if path else base


@dataclass(frozen=True)
class ArtifactLocation:
    root: Path   # the workspace
    kind: str    # "runs" | "models" | "experiments"
    ident: str   # run id, logged model id or experiment id
    path: str    # the path below the artifact root, "" for the root itself


def parse_artifact_uri(uri: str) -> ArtifactLocation:
    parts = urlsplit(uri)
    if parts.scheme != SCHEME or parts.netloc:
        raise UsageError(f"{uri!r} is not an MLOps Desktop artifact URI",
                         hint=f"expected {SCHEME}:///WORKSPACE/runs/RUN_ID/artifacts")
    path = unquote(parts.path)
    m = _ARTIFACTS.match(path)
    if m:
        return ArtifactLocation(Path(m["root"] or "/"), m["kind"], m["ident"], (m["path"] or "").strip("/"))
    m = _EXPERIMENT.match(path)
    if m:
        return ArtifactLocation(Path(m["root"] or "/"), "experiments", m["ident"], "")
    raise UsageError(f"{uri!r} does not name the artifacts of a run or a logged model",
                     hint=f"expected {SCHEME}:///WORKSPACE/runs/RUN_ID/artifacts[/PATH]")
