"""Deploy test helpers: registered versions of a real scikit-learn model (the registry's own path)."""

from __future__ import annotations

from pathlib import Path

import pytest


def register_versions(ws, tmp_path: Path, count: int = 3, name: str = "churn") -> list:
    """`count` versions of `name`, each a real fitted pipeline registered from a real run."""
    from sklearn.linear_model import LogisticRegression

    from mlops_desktop import registry
    from tests.registry.conftest import churn_frame, fit_pipeline, log_sklearn_run

    out = []
    for i in range(count):
        frame = churn_frame(300, seed=i)
        model = fit_pipeline(frame, LogisticRegression(max_iter=200, C=1.0 + i))
        run = log_sklearn_run(ws, tmp_path, model, frame, name=f"v{i + 1}")
        out.append(registry.register(ws, run, name).version)
    return out


@pytest.fixture
def churn_versions(ws, tmp_path):
    return register_versions(ws, tmp_path)


@pytest.fixture(scope="session")
def tiny_images(docker_engine):
    """Images of the tiny server (tests/deploy/tiny) built FROM the engine's base image: {"v1": ref, ...}."""
    from tests.deploy.tiny.images import build_tiny_images, remove_images

    client = docker_engine.client()
    made = build_tiny_images(client, docker_engine.base_image)
    yield made
    remove_images(client, list(made.values()))


def tiny_source(churn_versions, tiny_images):
    """churn/1..3 -> the tiny v1..v3 images (what a built model image would be), and the bad ones by name."""
    from mlops_desktop.deploy.images import GivenImages

    return GivenImages({("churn", v.version): tiny_images[f"v{v.version}"] for v in churn_versions})


def deployment_name(scope) -> str:
    """A deployment name inside the test's Docker scope (its engine objects start with the scope's prefix)."""
    return scope.prefix


@pytest.fixture(scope="session")
def router_image(docker_engine):
    """An image that runs our router (tests/deploy/tiny/images.py says how it is made)."""
    from tests.deploy.tiny.images import build_router_image, remove_images

    client = docker_engine.client()
    ref = build_router_image(client, docker_engine.base_image)
    yield ref
    remove_images(client, [ref])


def ab_source(churn_versions, tiny_images, router_image):
    from mlops_desktop.deploy.images import GivenImages

    return GivenImages({("churn", v.version): tiny_images[f"v{v.version}"] for v in churn_versions},
                       router=router_image)
