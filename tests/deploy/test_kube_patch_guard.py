"""Our Deployment patches are guarded by the generation, not the resourceVersion (real API server and controller).

The Deployment controller writes the status all through a rollout (CI caught an undo refused with HTTP 422 just
after the controller had marked the progress deadline). Here a real status write, or a real change of the spec by
someone else, lands between our read of the Deployment and our patch: the status write must not stop the patch;
the spec change must, in words, and must not be overwritten. The pods never start (the image is on a registry
that does not exist); the ReplicaSets, revisions and patches are what is tested.
"""

from __future__ import annotations

import time

import pytest

from mlops_desktop.deploy import kube_manifests as km
from mlops_desktop.deploy import kube_objects as ko
from mlops_desktop.deploy import kube_rollout as kr
from mlops_desktop.deploy.backend import RolloutFailed
from mlops_desktop.deploy.kube_client import KubeApi
from mlops_desktop.deploy.models import DeploymentSpec

pytestmark = pytest.mark.kubernetes

IMAGE_A = "127.0.0.1:9/guard-test:a"  # nothing listens on port 9: pods stay in ImagePullBackOff
IMAGE_B = "127.0.0.1:9/guard-test:b"


class Interleaved(KubeApi):
    """A KubeApi that runs `before_patch` (a real request by 'someone else') just before its next Deployment patch."""

    before_patch = None

    def call(self, fn, *args, **kwargs):
        if getattr(fn, "__name__", "") == "patch_namespaced_deployment" and self.before_patch is not None:
            action, self.before_patch = self.before_patch, None
            action()
        return super().call(fn, *args, **kwargs)


def spec(version: int) -> DeploymentSpec:
    return DeploymentSpec(name="guard", target="k", model_ref=f"m/{version}", model="m", version=version,
                          replicas=1, memory=64 * 1024**2)


@pytest.fixture
def api(kube_cluster, kube_namespace):
    a = Interleaved(str(kube_cluster.kubeconfig), None, kube_namespace.name)
    yield a
    a.close()


def read(api):
    return api.apps().read_namespaced_deployment("guard", api.namespace)


def two_revisions(api) -> None:
    """Deployment guard at revision 2 (image B) with revision 1's ReplicaSet (image A) kept."""
    assert ko.put_deployment(api, km.model_deployment(spec(1), IMAGE_A, 1)).action == "created"
    wait_for_replica_sets(api, 1)
    assert ko.put_deployment(api, km.model_deployment(spec(2), IMAGE_B, 2)).action == "updated"
    wait_for_replica_sets(api, 2)


def wait_for_replica_sets(api, n: int) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        if len(kr.owned_replica_sets(api, read(api))) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"the Deployment controller made no {n} ReplicaSets in 30 s")


def status_write(api):
    """What the Deployment controller does all the time: a write of the status subresource (a new resourceVersion)."""
    def write():
        before = read(api).metadata.resource_version
        api.apps().patch_namespaced_deployment_status("guard", api.namespace, {"status": {"conditions": [
            {"type": "MlopsGuardTest", "status": "True", "reason": "Test", "message": "a status write"}]}})
        after = read(api)
        assert after.metadata.resource_version != before
        write.generation = after.metadata.generation
    return write


def image_of(dep) -> str:
    return dep.spec.template.spec.containers[0].image


def test_undo_goes_through_a_status_write_made_meanwhile(api):
    two_revisions(api)
    generation = read(api).metadata.generation
    write = status_write(api)
    api.before_patch = write
    assert kr.undo(api, "guard") == 1
    assert api.before_patch is None and write.generation == generation  # the write happened; the spec had not moved
    assert image_of(read(api)) == IMAGE_A


def test_an_update_goes_through_a_status_write_made_meanwhile(api):
    assert ko.put_deployment(api, km.model_deployment(spec(1), IMAGE_A, 1)).action == "created"
    api.before_patch = status_write(api)
    assert ko.put_deployment(api, km.model_deployment(spec(2), IMAGE_B, 2)).action == "updated"
    assert api.before_patch is None and image_of(read(api)) == IMAGE_B


def test_a_spec_changed_by_someone_else_meanwhile_is_refused_in_words_and_kept(api):
    two_revisions(api)

    def someone_scales():
        api.apps().patch_namespaced_deployment_scale("guard", api.namespace, {"spec": {"replicas": 3}})

    api.before_patch = someone_scales
    with pytest.raises(RolloutFailed) as err:
        kr.undo(api, "guard")
    text = str(err.value)
    assert "restoring revision 1 of Deployment guard" in text and "changed by someone else meanwhile" in text
    assert "HTTP 422" not in text
    now = read(api)
    assert now.spec.replicas == 3 and image_of(now) == IMAGE_B  # their change kept, ours not applied


def test_a_deployment_deleted_meanwhile_is_said_so(api):
    assert ko.put_deployment(api, km.model_deployment(spec(1), IMAGE_A, 1)).action == "created"

    def someone_deletes():
        api.apps().delete_namespaced_deployment("guard", api.namespace)

    api.before_patch = someone_deletes
    with pytest.raises(RolloutFailed, match="was deleted meanwhile"):
        ko.put_deployment(api, km.model_deployment(spec(2), IMAGE_B, 2))
