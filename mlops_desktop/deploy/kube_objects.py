"""Create-or-update of the Kubernetes objects a deployment owns, each one call with a timeout, told in words.

`put_deployment` changes only what we render (template, replicas, deadline, our annotations) with a JSON patch
guarded by the Deployment's generation (`patch_deployment`), so re-applying the same spec is a no-op and a
concurrent change of its spec is refused rather than overwritten. The guard is the generation, not the
resourceVersion: the Deployment controller writes the status all through a rollout, and each write moves the
resourceVersion (CI saw an undo refused with HTTP 422 because the controller had just marked the deadline). Services keep their NodePort across updates (the URL a user was given stays valid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_desktop.deploy.backend import RolloutFailed
from mlops_desktop.deploy.kube_manifests import ANN_SPEC, ANN_TEMPLATE, LABEL_DEPLOYMENT
from mlops_desktop.errors import MlopsError, NotFoundError

if TYPE_CHECKING:
    from mlops_desktop.deploy.kube_client import KubeApi


@dataclass
class Put:
    """What `put_deployment` did: created, changed (with what it replaced, to restore on failure) or unchanged."""

    name: str
    action: str                      # created | updated | unchanged
    previous_replicas: int | None = None
    previous_hash: str = ""


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def ensure_namespace(api: KubeApi) -> None:
    core = api.core()
    if api.get(core.read_namespace, api.namespace, what=f"reading namespace {api.namespace}") is not None:
        return
    try:
        api.call(core.create_namespace, {"metadata": {"name": api.namespace}},
                 what=f"creating namespace {api.namespace}")
    except MlopsError as exc:
        if "already exists" not in str(exc):
            raise


def put_deployment(api: KubeApi, manifest: dict[str, Any]) -> Put:
    apps = api.apps()
    name = manifest["metadata"]["name"]
    existing = api.get(apps.read_namespaced_deployment, name, api.namespace, what=f"reading Deployment {name}")
    if existing is None:
        api.call(apps.create_namespaced_deployment, api.namespace, manifest, what=f"creating Deployment {name}")
        return Put(name, "created")
    want_hash = manifest["spec"]["template"]["metadata"]["annotations"][ANN_TEMPLATE]
    have_hash = str((existing.spec.template.metadata.annotations or {}).get(ANN_TEMPLATE, ""))
    have_spec = (existing.metadata.annotations or {}).get(ANN_SPEC)
    want_spec = manifest["metadata"]["annotations"].get(ANN_SPEC)
    if (existing.metadata.labels or {}).get(LABEL_DEPLOYMENT) != manifest["metadata"]["labels"][LABEL_DEPLOYMENT]:
        raise MlopsError(f"a Deployment {name} that MLOps Desktop did not create already exists in namespace "
                         f"{api.namespace}", hint="choose another deployment name or namespace")
    same = have_hash == want_hash and existing.spec.replicas == manifest["spec"]["replicas"] \
        and (want_spec is None or have_spec == want_spec)
    if same:
        return Put(name, "unchanged", existing.spec.replicas, have_hash)
    patch: list[dict[str, Any]] = [
        {"op": "replace", "path": "/spec/replicas", "value": manifest["spec"]["replicas"]},
        {"op": "replace", "path": "/spec/progressDeadlineSeconds",
         "value": manifest["spec"]["progressDeadlineSeconds"]},
    ]
    if have_hash != want_hash:
        patch.append({"op": "replace", "path": "/spec/template", "value": manifest["spec"]["template"]})
    if existing.metadata.annotations is None:
        patch.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for key, value in manifest["metadata"]["annotations"].items():
        patch.append({"op": "add", "path": f"/metadata/annotations/{_escape(key)}", "value": value})
    patch_deployment(api, existing, patch, f"updating Deployment {name}")
    return Put(name, "updated", existing.spec.replicas, have_hash)


def patch_deployment(api: KubeApi, existing: Any, ops: list[dict[str, Any]], what: str) -> None:
    """Apply the JSON patch `ops` to the Deployment read as `existing`, only if its spec has not changed since.

    A `test` of /metadata/generation goes first: the generation moves on a change of the spec only (anyone's
    `kubectl edit`, scale or rollout), never on the controller's status writes. A failed test is HTTP 422; the
    Deployment is read again to tell that apart from a patch the server found invalid, and said in words.
    """
    apps = api.apps()
    name = existing.metadata.name
    generation = existing.metadata.generation
    guard = {"op": "test", "path": "/metadata/generation", "value": generation}
    try:
        api.call(apps.patch_namespaced_deployment, name, api.namespace, [guard, *ops], what=what)
    except (RolloutFailed, NotFoundError):
        now = api.get(apps.read_namespaced_deployment, name, api.namespace, what=f"reading Deployment {name}")
        if now is None:
            raise RolloutFailed(f"{what}: Deployment {name} was deleted meanwhile in namespace {api.namespace}",
                                hint="run the action again to start from the cluster's state") from None
        if now.metadata.generation != generation:
            raise RolloutFailed(f"{what}: Deployment {name} was changed by someone else meanwhile (its spec went "
                                f"from generation {generation} to {now.metadata.generation}); nothing was "
                                f"overwritten", hint="look at `kubectl describe deployment` and run the action "
                                                     "again") from None
        raise


def set_replicas(api: KubeApi, name: str, replicas: int) -> None:
    apps = api.apps()
    api.call(apps.patch_namespaced_deployment_scale, name, api.namespace, {"spec": {"replicas": int(replicas)}},
             what=f"scaling Deployment {name} to {replicas}")


def put_service(api: KubeApi, manifest: dict[str, Any]) -> Any:
    """Create the Service, or bring its type, selector and port to the manifest's, keeping its NodePort."""
    core = api.core()
    name = manifest["metadata"]["name"]
    existing = api.get(core.read_namespaced_service, name, api.namespace, what=f"reading Service {name}")
    if existing is None:
        return api.call(core.create_namespaced_service, api.namespace, manifest, what=f"creating Service {name}")
    if (existing.metadata.labels or {}).get(LABEL_DEPLOYMENT) != manifest["metadata"]["labels"][LABEL_DEPLOYMENT]:
        raise MlopsError(f"a Service {name} that MLOps Desktop did not create already exists in namespace "
                         f"{api.namespace}", hint="choose another deployment name or namespace")
    port = dict(manifest["spec"]["ports"][0])
    old_ports = existing.spec.ports or []
    node_port = manifest["spec"]["type"] != "ClusterIP"
    if node_port and old_ports and old_ports[0].node_port and "nodePort" not in port:
        port["nodePort"] = old_ports[0].node_port
    same = existing.spec.type == manifest["spec"]["type"] and dict(existing.spec.selector or {}) == \
        manifest["spec"]["selector"] and old_ports and old_ports[0].port == port["port"] and \
        str(old_ports[0].target_port) == str(port["targetPort"]) and \
        (not node_port or old_ports[0].node_port == port.get("nodePort"))
    if same:
        return existing
    patch = [{"op": "replace", "path": "/spec/type", "value": manifest["spec"]["type"]},
             {"op": "replace", "path": "/spec/selector", "value": manifest["spec"]["selector"]},
             {"op": "replace", "path": "/spec/ports", "value": [port]}]
    return api.call(core.patch_namespaced_service, name, api.namespace, patch, what=f"updating Service {name}")


def put_configmap(api: KubeApi, manifest: dict[str, Any]) -> dict[str, str] | None:
    """Create or replace the ConfigMap's data; the data it had (to restore on failure), None if it was new."""
    core = api.core()
    name = manifest["metadata"]["name"]
    existing = api.get(core.read_namespaced_config_map, name, api.namespace, what=f"reading ConfigMap {name}")
    if existing is None:
        api.call(core.create_namespaced_config_map, api.namespace, manifest, what=f"creating ConfigMap {name}")
        return None
    old = dict(existing.data or {})
    if old != manifest["data"]:
        api.call(core.patch_namespaced_config_map, name, api.namespace,
                 [{"op": "replace", "path": "/data", "value": manifest["data"]}], what=f"updating ConfigMap {name}")
    return old


def delete_owned(api: KubeApi, deployment: str, *, keep: set[str] | None = None, kinds: tuple[str, ...] = (
        "deployment", "service", "config_map", "secret"), only: set[str] | None = None) -> list[str]:
    """Delete the objects labelled with the deployment, except those in `keep`, or only those in `only` (both as
    'kind/name', e.g. 'deployment/churn', 'service/churn'); idempotent. What was deleted, as 'kind/name'."""
    from mlops_desktop.errors import NotFoundError

    keep = keep or set()
    sel = f"{LABEL_DEPLOYMENT}={deployment}"
    apis = {"deployment": api.apps(), "service": api.core(), "config_map": api.core(), "secret": api.core()}
    deleted: list[str] = []
    for kind in kinds:
        client = apis[kind]
        items = api.call(getattr(client, f"list_namespaced_{kind}"), api.namespace, label_selector=sel,
                         what=f"listing the {kind.replace('_', '')}s of {deployment}").items
        for obj in items:
            name = obj.metadata.name
            key = f"{kind.replace('_', '')}/{name}"
            if key in keep or (only is not None and key not in only):
                continue
            try:
                api.call(getattr(client, f"delete_namespaced_{kind}"), name, api.namespace,
                         propagation_policy="Background", what=f"deleting {kind.replace('_', '')} {name}")
            except NotFoundError:
                continue
            deleted.append(key)
    return deleted
