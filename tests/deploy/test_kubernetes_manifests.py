"""The Kubernetes target without a cluster: rendered objects, kubeconfig contexts, names, and an API server that is
not there (a real closed port, not a mock)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from mlops_desktop.deploy import kube_manifests as km
from mlops_desktop.deploy.backend import EngineUnreachable
from mlops_desktop.deploy.kube_client import KubeApi, list_contexts, resolve_context
from mlops_desktop.deploy.models import ArmPlan, DeploymentSpec, RouterPlan, Target
from mlops_desktop.errors import UsageError


def spec(**kw):
    base = {"name": "churn", "target": "k", "model_ref": "churn@prod", "model": "churn", "version": 3, "replicas": 2}
    base.update(kw)
    return DeploymentSpec(**base)


def test_model_deployment_has_probe_resources_env_pull_secret_and_labels():
    doc = km.model_deployment(spec(cpu=0.5, memory=512 * 1024**2, gpus=1, env={"B": "2", "A": "1"}),
                              "127.0.0.1:5000/churn:3", 7, pull_secret="regcred", deadline_s=25)
    assert doc["metadata"]["name"] == "churn"
    assert doc["spec"]["selector"]["matchLabels"] == {"mlops.deployment": "churn", "mlops.workload": "churn"}
    assert doc["spec"]["progressDeadlineSeconds"] == 25
    assert doc["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = doc["spec"]["template"]
    assert pod["metadata"]["labels"]["mlops.revision"] == "7"
    assert pod["metadata"]["labels"]["mlops.model"] == "churn"
    assert pod["metadata"]["labels"]["mlops.version"] == "3"
    c = pod["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["resources"]["limits"] == {"cpu": "500m", "memory": str(512 * 1024**2), "nvidia.com/gpu": "1"}
    assert c["resources"]["requests"] == c["resources"]["limits"]
    assert [e["name"] for e in c["env"]] == ["A", "B"]
    assert c["imagePullPolicy"] == "Always"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert json.loads(doc["metadata"]["annotations"][km.ANN_SPEC])["version"] == 3


def test_the_template_hash_changes_with_what_runs_and_only_with_it():
    a = km.model_deployment(spec(), "reg/churn:3", 1)
    b = km.model_deployment(spec(), "reg/churn:3", 1)
    c = km.model_deployment(spec(), "reg/churn:4", 1)
    d = km.model_deployment(spec(replicas=5), "reg/churn:3", 1)

    def h(doc):
        return doc["spec"]["template"]["metadata"]["annotations"][km.ANN_TEMPLATE]

    assert h(a) == h(b) != h(c)
    assert h(a) == h(d)  # replicas are not part of the pod template
    assert km.pull_policy("reg/churn@sha256:" + "0" * 64) == "IfNotPresent"


def test_cpu_quantities():
    assert km.cpu_quantity(2) == "2"
    assert km.cpu_quantity(0.25) == "250m"
    assert km.cpu_quantity(1.5) == "1500m"
    assert km.resources(spec()) == {}


def test_services_clusterip_and_nodeport_keep_their_port():
    svc = km.service("churn", "churn", 8080)
    assert svc["spec"]["type"] == "ClusterIP" and "nodePort" not in svc["spec"]["ports"][0]
    svc = km.service("churn", "churn-router", 8080, name="churn", service_type="NodePort", keep_node_port=31234, role="router")
    assert svc["metadata"]["name"] == "churn"
    assert svc["spec"]["selector"] == {"mlops.deployment": "churn", "mlops.workload": "churn-router"}
    assert svc["spec"]["ports"][0]["nodePort"] == 31234


def test_router_objects():
    plan = RouterPlan(arms=(ArmPlan("v1", "churn", 1, "reg/churn:1", 90.0, 2), ArmPlan("v2", "churn", 2,
                                                                                      "reg/churn:2", 10.0, 1)),
                      stable="v1", sticky_header="x-user", image="reg/churn:1")
    config = km.router_config("churn", plan, {"v1": ["10.96.0.10:8080"], "v2": ["10.96.0.11:8080"]})
    from mlops_desktop.serving.router_config import from_dict

    # the config our router accepts (its own checker), minus the token file that only exists in the pod
    checked = from_dict({k: v for k, v in config.items() if k != "admin_token_file"})
    assert checked.stable == "v1" and checked.sticky_header == "x-user"
    assert [a.weight for a in checked.arms] == [90.0, 10.0]
    dep = km.router_deployment("churn", plan, 4, config, pull_secret="regcred")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["metadata"]["name"] == "churn-router"
    assert c["command"][:3] == ["python3", "-m", "mlops_desktop.serving.router"]
    assert c["image"] == "reg/churn:1"
    other = km.router_deployment("churn", plan, 4, {**config, "arms": config["arms"][:1]})
    assert other["spec"]["template"]["metadata"]["annotations"][km.ANN_CONFIG] != \
        dep["spec"]["template"]["metadata"]["annotations"][km.ANN_CONFIG]  # a new config rolls the router
    secret = km.router_secret("churn", "t" * 40)
    assert secret["metadata"]["name"] == "churn-router-admin"
    assert "t" * 40 not in json.dumps(dep)  # the token is never in the Deployment


@pytest.mark.parametrize("name", ["Churn", "churn_api", "a" * 41, "x;rm -rf /", "-churn", "churn-", "ch--urn", "",
                                  "churn\n", "../etc"])
def test_hostile_deployment_names_are_refused_before_anything_is_rendered(name):
    with pytest.raises(UsageError, match="invalid deployment name"):
        km.model_deployment(spec(name=name), "reg/churn:3", 1)


KUBECONFIG = """
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
contexts:
- name: dev
  context: {{cluster: c1, user: u1, namespace: models}}
- name: prod
  context: {{cluster: c1, user: u1}}
users:
- name: u1
  user: {{token: abcdefghijklmnop}}
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_kubeconfig(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.format(port=port))
    return path


def test_contexts_and_namespaces_come_from_the_kubeconfig(tmp_path):
    path = write_kubeconfig(tmp_path, 6443)
    contexts = {c.name: c for c in list_contexts(path)}
    assert contexts["dev"].current and contexts["dev"].namespace == "models"
    assert contexts["prod"].namespace == "default"
    assert resolve_context(path, None).name == "dev"
    with pytest.raises(UsageError, match="no context 'staging'.*") as err:
        resolve_context(path, "staging")
    assert "dev, prod" in str(err.value)
    assert KubeApi(path, "prod", None).namespace == "default"
    assert KubeApi(path, None, "other").namespace == "other"


def test_missing_or_broken_kubeconfig_is_said_in_words(tmp_path):
    with pytest.raises(UsageError, match="no kubeconfig at"):
        list_contexts(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.write_text("contexts: [\n  - {name: x\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        list_contexts(bad)


def test_an_api_server_that_is_not_there_is_unreachable_quickly_and_check_says_why(tmp_path):
    from mlops_desktop.deploy.kubernetes import KubernetesBackend

    path = write_kubeconfig(tmp_path, closed_port())
    backend = KubernetesBackend(Target("k", "kubernetes", context="dev", options={"kubeconfig": str(path)}))
    t0 = time.monotonic()
    result = backend.check()
    assert not result.reachable
    assert "does not answer" in result.detail and "connection refused" in result.detail
    assert time.monotonic() - t0 < 10
    with pytest.raises(EngineUnreachable, match="does not answer"):
        backend.status("churn")
    backend.close()


def test_a_hostile_namespace_is_refused(tmp_path):
    from mlops_desktop.deploy.kubernetes import KubernetesBackend

    path = write_kubeconfig(tmp_path, closed_port())
    backend = KubernetesBackend(Target("k", "kubernetes", namespace="Prod;x", options={"kubeconfig": str(path)}))
    with pytest.raises(UsageError, match="invalid namespace"):
        backend.status("churn")
    result = backend.check()
    assert not result.reachable and "invalid namespace" in result.detail
