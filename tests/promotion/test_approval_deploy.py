"""Approval deploys through the deploy service on the real Docker engine: a local deployment of churn@champion is
rolled to the candidate when the last approval lands; a rejection leaves it where it was."""

from __future__ import annotations

import requests as http

from mlops_desktop import registry
from mlops_desktop.deploy import DeploymentService
from mlops_desktop.deploy.images import GivenImages
from mlops_desktop.promotion import pipeline, reviews
from mlops_desktop.promotion.policy import find_policy
from tests.deploy.conftest import deployment_name, tiny_images  # noqa: F401 - a fixture used below
from tests.promotion.promo_helpers import champion_and_candidate, project


def _version(svc, name):
    urls = [e.url for e in svc.endpoints(name) if e.role in ("router", "replica")]
    assert urls, svc.status(name)
    return http.post(urls[0] + "/invocations", json={"inputs": [[1]]}, timeout=5).json()["version"]


def test_approval_rolls_the_deployment_following_the_alias_and_rejection_does_not(ws, tmp_path, docker_scope,
                                                                                 tiny_images):  # noqa: F811
    _, champ, cand = champion_and_candidate(ws, tmp_path)
    svc = DeploymentService(ws, images=GivenImages({("churn", champ.version): tiny_images["v1"],
                                                    ("churn", cand.version): tiny_images["v2"]}))
    svc.add_target("here", "local", address=docker_scope.engine.host, options={"labels": docker_scope.labels})
    name = deployment_name(docker_scope)
    assert svc.create(name, "here", "churn@champion", reason="first", deadline_s=90).outcome == "healthy"
    assert _version(svc, name) == "1"
    root = project(tmp_path, "[promotion.churn]\n[promotion.again]\nmodel = \"churn\"\n")
    first = pipeline.run(ws, pipeline.start(ws, cand.ref, find_policy(root, "churn", "again")).id)
    rejected = reviews.decide(ws, first.id, "reject", "not yet", actor="dave", deploy_service=svc)
    assert rejected.state == "rejected" and _version(svc, name) == "1" and len(svc.history(name)) == 1
    req = pipeline.run(ws, pipeline.start(ws, cand.ref, find_policy(root, "churn", "churn")).id)
    done = reviews.decide(ws, req.id, "approve", "ship it", actor="dave", deploy_service=svc)
    assert done.state == "approved", done.message
    [deployed] = [d for d in done.outcome["deployments"] if d["kind"] == "deployment"]
    assert deployed["ok"] and deployed["name"] == name and deployed["outcome"] == "healthy"
    assert registry.resolve(ws, "churn@champion").version == cand.version
    assert _version(svc, name) == "2"
    dep = svc.get(name)
    assert dep.spec.model_ref == "churn@champion" and dep.version == cand.version  # it still follows the alias
    assert f"promotion {req.id} approved by dave" in svc.history(name)[-1].reason
