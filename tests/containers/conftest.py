"""Container test helpers: a workspace with a real trained, registered scikit-learn model and its training data in
the lake, and one package image per session (the slow part of a cold build), removed at the end."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.registry.conftest import churn_frame, fit_pipeline, log_sklearn_run


def register_churn(ws: Any, tmp_path: Path, *, rows: int = 600, seed: int = 0, name: str = "churn",
                   ingest_data: bool = True) -> Any:
    """Ingest churn data (version N), train on it, register the next version of `name`."""
    from mlops_desktop import registry
    from mlops_desktop.data.ingest import ingest

    frame = churn_frame(rows, seed=seed)
    inputs: list[tuple[str, str]] = []
    if ingest_data:
        csv = tmp_path / f"churn-{seed}.csv"
        frame.to_csv(csv, index=False)
        version = ingest(ws, [str(csv)], "churn_data")
        inputs = [("churn_data", str(getattr(version, "version", 1)))]
    run = log_sklearn_run(ws, tmp_path, fit_pipeline(frame), frame, inputs=inputs, name=f"run-{seed}")
    return registry.register(ws, run, name).version


@pytest.fixture
def churn_version(ws, tmp_path):
    return register_churn(ws, tmp_path)


@pytest.fixture(scope="session")
def deps_repository(docker_engine):
    """A package-image repository of this session: built by the first build, reused, removed at the end."""
    repo = f"mlt-containers-deps-{secrets.token_hex(3)}"
    yield repo
    client = docker_engine.client(timeout=60)
    for image in client.images.list(name=repo):
        for tag in image.tags:
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)


@pytest.fixture
def build(ws, docker_engine, docker_scope, deps_repository):
    """build(ref, what="churn", **options) -> ImageRecord: a build on the test engine, named in the test's scope."""
    from mlops_desktop import containers

    def run(ref: str, what: str = "churn", tag: str = "1", **options: Any) -> Any:
        options.setdefault("tag", f"{docker_scope.name(what)}:{tag}")
        options.setdefault("base", docker_engine.base_image)
        return containers.build_image(ws, ref, docker_host=docker_engine.host, deps_repository=deps_repository,
                                      labels=docker_scope.labels, **options)

    return run
