"""End to end with real model images (containers.build_image): a registered scikit-learn version deployed on the
Swarm answers with the registry's own predictions; an update to the next version rebuilds only the model layer and
rolls out; an A/B split between the two real versions records each answer's arm."""

from __future__ import annotations

import contextlib
import secrets

import numpy as np
import pytest
import requests

from mlops_desktop import registry
from mlops_desktop.deploy import DeploymentService
from mlops_desktop.deploy.images import ContainersImages
from tests.deploy.conftest import deployment_name
from tests.registry.conftest import churn_frame


@pytest.fixture(scope="module")
def deps_repo(docker_engine):
    repo = f"mlt-deploy-deps-{secrets.token_hex(3)}"
    yield repo
    client = docker_engine.client(timeout=60)
    for image in client.images.list(name=repo):
        for tag in image.tags:
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)


def _predict(url, rows):
    doc = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    r = requests.post(url + "/invocations", json=doc, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"], r.headers.get("x-mlops-arm")


def test_real_model_images_on_the_swarm(ws, swarm, docker_scope, churn_versions, deps_repo):
    svc = DeploymentService(ws, images=ContainersImages(
        ws, router_from_model=True, base=swarm.base_image, deps_repository=deps_repo, labels=docker_scope.labels))
    svc.add_target("sw", "swarm", address=swarm.host, options={"labels": docker_scope.labels})
    name = deployment_name(docker_scope)
    rev = svc.create(name, "sw", "churn/1", deadline_s=180)
    assert rev.outcome == "healthy", rev.detail
    rows = churn_frame(20, seed=7).drop(columns=["churned"])
    expected = registry.load_predictor(ws, "churn/1").predict({c: rows[c].to_numpy() for c in rows.columns})
    url = next(e.url for e in svc.endpoints(name) if e.role == "replica")
    got, _ = _predict(url, rows)
    assert [str(x) for x in np.asarray(expected["prediction"]).ravel()] == [str(x) for x in got]
    rev = svc.update(name, "churn/2", deadline_s=180)
    assert rev.outcome == "healthy", (rev.detail, [e["message"] for e in svc.events(name)])
    dep = svc.split(name, {"churn/1": 50, "churn/2": 50}, reason="real A/B", deadline_s=180)
    assert dep.state == "healthy"
    router = next(e.url for e in svc.endpoints(name) if e.role == "router")
    arms = {_predict(router, rows.head(1))[1] for _ in range(40)}
    assert arms == {"v1", "v2"}
