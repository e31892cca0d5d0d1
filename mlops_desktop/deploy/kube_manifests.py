"""The Kubernetes objects of a deployment, as plain dicts: Deployments, Services, the router's ConfigMap and Secret.

Pure functions (no client, no cluster): what they build is what `kubectl get -o json` would show, so they are tested
offline and their output is what the backend sends. Names come from `names.workload_name` (checked DNS labels);
every object carries the labels below so that status, logs and delete find all a deployment owns, and the Deployment's
selector is `mlops.deployment` + `mlops.workload` (immutable, never the revision or the version).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from mlops_desktop.deploy.backend import READY_PATH, ROUTER_SUFFIX
from mlops_desktop.deploy.names import check_deployment_name, workload_name

if TYPE_CHECKING:
    from mlops_desktop.deploy.models import DeploymentSpec, RouterPlan

LABEL_DEPLOYMENT = "mlops.deployment"
LABEL_WORKLOAD = "mlops.workload"
LABEL_ROLE = "mlops.role"              # model | router
LABEL_REVISION = "mlops.revision"
LABEL_MODEL = "mlops.model"
LABEL_VERSION = "mlops.version"
LABEL_ARM = "mlops.arm"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mlops-desktop"}
ANN_SPEC = "mlops.desktop/spec"          # the DeploymentSpec that was applied (JSON), on the Deployment
ANN_TEMPLATE = "mlops.desktop/template"  # hash of the pod template we rendered (re-applying the same is a no-op)
ANN_CONFIG = "mlops.desktop/config"      # hash of the router config (a changed ConfigMap rolls the router)
ANN_RESTARTED = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets
K8S_REVISION = "deployment.kubernetes.io/revision"
MODEL_CONTAINER = "model"
ROUTER_CONTAINER = "router"
ROUTER_CONFIG_KEY = "router.json"
ROUTER_CONFIG_DIR = "/etc/mlops-router"
ROUTER_TOKEN_KEY = "admin-token"
# The router runs from the model image (same image family): its Python has mlops_desktop installed.
ROUTER_COMMAND = ("python3", "-m", "mlops_desktop.serving.router")
FATAL_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                           "CreateContainerError", "ErrImageNeverPull", "RunContainerError"})


def hash_of(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def selector(deployment: str, workload: str) -> dict[str, str]:
    return {LABEL_DEPLOYMENT: deployment, LABEL_WORKLOAD: workload}


def cpu_quantity(cpu: float) -> str:
    """0.5 -> '500m', 2 -> '2' (Kubernetes quantities, millicores at most)."""
    milli = max(1, round(cpu * 1000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def resources(spec: DeploymentSpec) -> dict[str, Any]:
    """Requests = limits (a model server is sized for its load; Guaranteed QoS when both are given)."""
    limits: dict[str, str] = {}
    if spec.cpu is not None:
        limits["cpu"] = cpu_quantity(spec.cpu)
    if spec.memory is not None:
        limits["memory"] = str(int(spec.memory))
    if spec.gpus:
        limits["nvidia.com/gpu"] = str(int(spec.gpus))
    return {"limits": dict(limits), "requests": dict(limits)} if limits else {}


def _probe(path: str, port: str, *, period: int, failures: int, delay: int = 0) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 1,
            "failureThreshold": failures, "successThreshold": 1, "initialDelaySeconds": delay}


def _pull_secrets(pull_secret: str | None) -> list[dict[str, str]]:
    return [{"name": pull_secret}] if pull_secret else []


def pull_policy(image: str) -> str:
    """A digest never changes: IfNotPresent; a tag may be pushed again: Always (the registry says if it changed)."""
    return "IfNotPresent" if "@sha256:" in image else "Always"


def model_deployment(spec: DeploymentSpec, image: str, revision: int, *, arm: str | None = None,
                     replicas: int | None = None, pull_secret: str | None = None, deadline_s: float = 60,
                     extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """The Deployment of one model workload: the whole deployment (`arm` None) or one arm behind the router."""
    name = check_deployment_name(spec.name)
    workload = workload_name(name, arm)
    sel = selector(name, workload)
    labels = {**MANAGED_BY, **sel, LABEL_ROLE: "model", LABEL_MODEL: spec.model, LABEL_VERSION: str(spec.version)}
    if arm:
        labels[LABEL_ARM] = arm
    pod_labels = {**labels, LABEL_REVISION: str(revision)}
    env = [{"name": k, "value": v} for k, v in sorted({**spec.env, **(extra_env or {})}.items())]
    container: dict[str, Any] = {
        "name": MODEL_CONTAINER, "image": image, "imagePullPolicy": pull_policy(image),
        "ports": [{"name": "http", "containerPort": int(spec.port), "protocol": "TCP"}],
        "env": env,
        "readinessProbe": _probe(READY_PATH, "http", period=1, failures=2),
        "livenessProbe": _probe("/v2/health/live", "http", period=10, failures=3, delay=30),
        "resources": resources(spec),
    }
    template: dict[str, Any] = {"metadata": {"labels": pod_labels, "annotations": {}},
                "spec": {"containers": [container], "imagePullSecrets": _pull_secrets(pull_secret),
                         "terminationGracePeriodSeconds": 30, "enableServiceLinks": False}}
    template["metadata"]["annotations"][ANN_TEMPLATE] = hash_of(template)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": workload, "labels": labels,
                     "annotations": {ANN_SPEC: json.dumps(spec.to_dict(), sort_keys=True)}},
        "spec": {"replicas": int(spec.replicas if replicas is None else replicas), "selector": {"matchLabels": sel},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": max(10, int(deadline_s)),
                 "minReadySeconds": 0,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                 "template": template},
    }


def service(deployment: str, workload: str, port: int, *, name: str | None = None, service_type: str = "ClusterIP",
            keep_node_port: int | None = None, role: str = "model", target_port: str = "http") -> dict[str, Any]:
    """A Service in front of one workload: ClusterIP, NodePort or LoadBalancer (keeping its NodePort: URLs stay)."""
    port_doc: dict[str, Any] = {"name": "http", "port": int(port), "targetPort": target_port, "protocol": "TCP"}
    if service_type != "ClusterIP" and keep_node_port:
        port_doc["nodePort"] = int(keep_node_port)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name or workload,
                     "labels": {**MANAGED_BY, LABEL_DEPLOYMENT: deployment, LABEL_ROLE: role}},
        "spec": {"type": service_type, "selector": selector(deployment, workload),
                 "ports": [port_doc]},
    }


def router_config(deployment: str, plan: RouterPlan, arm_addresses: dict[str, list[str]]) -> dict[str, Any]:
    """The router's config document (serving/router_config.py) with each arm's backends (its Service's address)."""
    arms = [{"name": a.arm, "weight": a.weight, "version": str(a.version), "backends": arm_addresses[a.arm]}
            for a in plan.arms]
    doc: dict[str, Any] = {"name": f"{deployment}-{ROUTER_SUFFIX}", "host": "0.0.0.0", "port": int(plan.port),  # noqa: S104 - inside the pod
                           "stable": plan.stable, "arms": arms, "insecure": True,
                           "admin_token_file": f"{ROUTER_CONFIG_DIR}/token/{ROUTER_TOKEN_KEY}",
                           "state_dir": "/tmp/router-state"}  # noqa: S108 - the pod's own emptyDir
    if plan.sticky_header:
        doc["sticky_header"] = plan.sticky_header
    if plan.shadow_arm:
        doc["shadow"] = {"arm": plan.shadow_arm, "percent": float(plan.shadow_percent)}
    return doc


def router_configmap(deployment: str, config: dict[str, Any]) -> dict[str, Any]:
    name = workload_name(deployment, ROUTER_SUFFIX)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {**MANAGED_BY, LABEL_DEPLOYMENT: deployment, LABEL_ROLE: "router"}},
            "data": {ROUTER_CONFIG_KEY: json.dumps(config, indent=2, sort_keys=True)}}


def router_secret(deployment: str, token: str) -> dict[str, Any]:
    name = workload_name(deployment, ROUTER_SUFFIX) + "-admin"
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "labels": {**MANAGED_BY, LABEL_DEPLOYMENT: deployment, LABEL_ROLE: "router"}},
            "stringData": {ROUTER_TOKEN_KEY: token}}


def router_deployment(deployment: str, plan: RouterPlan, revision: int, config: dict[str, Any], *,
                      pull_secret: str | None = None, deadline_s: float = 60, replicas: int = 1,
                      python: str = ROUTER_COMMAND[0]) -> dict[str, Any]:
    """The router's Deployment: the stable arm's image, the config from the ConfigMap, the admin token a Secret."""
    workload = workload_name(deployment, ROUTER_SUFFIX)
    sel = selector(deployment, workload)
    labels = {**MANAGED_BY, **sel, LABEL_ROLE: "router"}
    container = {
        "name": ROUTER_CONTAINER, "image": plan.image, "imagePullPolicy": pull_policy(plan.image),
        "command": [python, *ROUTER_COMMAND[1:], "--config", f"{ROUTER_CONFIG_DIR}/config/{ROUTER_CONFIG_KEY}"],
        "ports": [{"name": "http", "containerPort": int(plan.port), "protocol": "TCP"}],
        "readinessProbe": _probe(READY_PATH, "http", period=1, failures=2),
        "livenessProbe": _probe("/v2/health/live", "http", period=10, failures=3, delay=15),
        "volumeMounts": [{"name": "config", "mountPath": f"{ROUTER_CONFIG_DIR}/config", "readOnly": True},
                         {"name": "token", "mountPath": f"{ROUTER_CONFIG_DIR}/token", "readOnly": True},
                         {"name": "state", "mountPath": "/tmp/router-state"}],  # noqa: S108
    }
    template: dict[str, Any] = {"metadata": {"labels": {**labels, LABEL_REVISION: str(revision)},
                             "annotations": {ANN_CONFIG: hash_of(config)}},
                "spec": {"containers": [container], "imagePullSecrets": _pull_secrets(pull_secret),
                         "terminationGracePeriodSeconds": 30, "enableServiceLinks": False,
                         "volumes": [{"name": "config", "configMap": {"name": workload}},
                                     {"name": "token", "secret": {"secretName": workload + "-admin",
                                                                  "defaultMode": 0o444}},
                                     {"name": "state", "emptyDir": {}}]}}
    template["metadata"]["annotations"][ANN_TEMPLATE] = hash_of(template)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": workload, "labels": labels, "annotations": {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": sel}, "revisionHistoryLimit": 10,
                 "progressDeadlineSeconds": max(10, int(deadline_s)),
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                 "template": template},
    }
