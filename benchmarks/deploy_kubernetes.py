"""Kubernetes rollouts: deploy -> healthy, update -> healthy and failure -> rolled back, ours vs the cluster's raw limit.

    python benchmarks/deploy_kubernetes.py --kubeconfig KCFG --image-v1 REG/m:v1 --image-v2 REG/m:v2 \\
        --image-crash REG/m:crash --registry 127.0.0.1:5000 --user U --password-file F [--repeats 3]

Ours: `KubernetesBackend.apply` (the rollout watched until every new pod passed the kubelet's probe AND our readiness
check through the API server's pod proxy; a crashing image rolled back by us). The raw limit, in the same run and
namespace kind: the same Deployment created / updated straight through the API with the kubelet's readiness probe as
the only gate (what `kubectl apply` + `kubectl rollout status` wait for). Kubernetes itself never rolls a failed
rollout back (progressDeadlineSeconds only sets a condition), so failure -> rolled back is measured against the goal
(30 s) only. `kubernetes_timings()` and `raw_timings()` are what benchmarks/deploy.py calls. Last line: one JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _spec(name: str, version: int, replicas: int) -> Any:
    from mlops_desktop.deploy.models import DeploymentSpec

    return DeploymentSpec(name=name, target="bench", model_ref=f"bench/{version}", model="bench", version=version,
                          replicas=replicas, memory=512 * 1024**2)


def _revision(number: int, spec: Any, image: str) -> Any:
    from mlops_desktop.deploy.models import Revision

    return Revision(deployment=spec.name, number=number, model=spec.model, version=spec.version, image=image,
                    actor="benchmark", at=time.time(), reason="benchmark", outcome="pending", spec=spec)


def kubernetes_timings(backend: Any, images: dict[str, str], *, repeats: int = 3, replicas: int = 2,
                       deadline_s: float = 90) -> dict[str, list[float]]:
    """Seconds of our rollouts: deploy (new Deployment -> healthy), update (v1 -> v2 healthy), failure (a crashing
    image -> rolled back to the previous version, healthy again). Each repeat uses a fresh deployment name."""
    out: dict[str, list[float]] = {"deploy_s": [], "update_s": [], "failure_rolled_back_s": []}
    for i in range(repeats):
        name = f"bench-{i}-{secrets.token_hex(2)}"
        s1, s2 = _spec(name, 1, replicas), _spec(name, 2, replicas)
        r = backend.apply(s1, _revision(1, s1, images["v1"]), images["v1"], None, deadline_s)
        assert r.outcome == "healthy", r
        out["deploy_s"].append(r.seconds)
        r = backend.apply(s2, _revision(2, s2, images["v2"]), images["v2"], None, deadline_s)
        assert r.outcome == "healthy", r
        out["update_s"].append(r.seconds)
        r = backend.apply(s2, _revision(3, s2, images["crash"]), images["crash"], None, deadline_s)
        assert r.outcome == "rolled_back", r
        out["failure_rolled_back_s"].append(r.seconds)
        backend.delete(name)
    return out


def raw_timings(api: Any, images: dict[str, str], *, pull_secret: str | None, repeats: int = 3,
                replicas: int = 2, timeout: float = 120) -> dict[str, list[float]]:
    """The same Deployments through the API only, gated by the kubelet's probe (`kubectl rollout status`)."""
    from mlops_desktop.deploy import kube_manifests as km

    apps = api.apps()
    out: dict[str, list[float]] = {"deploy_s": [], "update_s": []}

    def complete(name: str) -> bool:
        d = apps.read_namespaced_deployment(name, api.namespace)
        s, want = d.status, d.spec.replicas
        return (s.observed_generation or 0) >= d.metadata.generation and s.updated_replicas == want \
            and s.replicas == want and s.available_replicas == want

    def wait(name: str) -> None:
        end = time.monotonic() + timeout
        while not complete(name):
            if time.monotonic() > end:
                raise TimeoutError(f"raw rollout of {name}")
            time.sleep(0.5)

    for i in range(repeats):
        name = f"raw-{i}-{secrets.token_hex(2)}"
        doc = km.model_deployment(_spec(name, 1, replicas), images["v1"], 1, pull_secret=pull_secret)
        t0 = time.monotonic()
        apps.create_namespaced_deployment(api.namespace, doc)
        wait(name)
        out["deploy_s"].append(time.monotonic() - t0)
        t0 = time.monotonic()
        apps.patch_namespaced_deployment(name, api.namespace, {"spec": {"template": {"spec": {"containers": [
            {"name": km.MODEL_CONTAINER, "image": images["v2"]}]}}}})
        wait(name)
        out["update_s"].append(time.monotonic() - t0)
        apps.delete_namespaced_deployment(name, api.namespace, propagation_policy="Background")
    return out


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", default=os.environ.get("MLOPS_TEST_KUBECONFIG"))
    p.add_argument("--context")
    p.add_argument("--node-address", default=os.environ.get("MLOPS_TEST_KUBE_NODE_IP"))
    p.add_argument("--image-v1", required=True)
    p.add_argument("--image-v2", required=True)
    p.add_argument("--image-crash", required=True)
    p.add_argument("--registry", default=os.environ.get("MLOPS_TEST_REGISTRY"))
    p.add_argument("--user", default=os.environ.get("MLOPS_TEST_REGISTRY_USER"))
    p.add_argument("--password-file", default=os.environ.get("MLOPS_TEST_REGISTRY_PASSWORD_FILE"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--replicas", type=int, default=2)
    args = p.parse_args(argv)
    if not args.kubeconfig:
        p.error("--kubeconfig (or $MLOPS_TEST_KUBECONFIG) is required")

    import base64

    from mlops_desktop.deploy.kube_client import KubeApi
    from mlops_desktop.deploy.kubernetes import KubernetesBackend
    from mlops_desktop.deploy.models import Target

    namespace = f"bench-{secrets.token_hex(3)}"
    api = KubeApi(args.kubeconfig, args.context, namespace)
    core = api.core()
    core.create_namespace({"metadata": {"name": namespace}})
    pull_secret = None
    try:
        while not _has_default_sa(core, namespace):
            time.sleep(0.3)
        if args.registry and args.user and args.password_file:
            password = Path(args.password_file).read_text().strip()
            auth = base64.b64encode(f"{args.user}:{password}".encode()).decode()
            doc = json.dumps({"auths": {args.registry: {"username": args.user, "password": password, "auth": auth}}})
            core.create_namespaced_secret(namespace, {"metadata": {"name": "bench-pull"},
                                                      "type": "kubernetes.io/dockerconfigjson",
                                                      "data": {".dockerconfigjson": base64.b64encode(
                                                          doc.encode()).decode()}})
            pull_secret = "bench-pull"
        options: dict[str, Any] = {"kubeconfig": args.kubeconfig}
        if pull_secret:
            options["pull_secret"] = pull_secret
        if args.node_address:
            options["node_address"] = args.node_address
        backend = KubernetesBackend(Target("bench", "kubernetes", context=args.context, namespace=namespace,
                                           options=options))
        images = {"v1": args.image_v1, "v2": args.image_v2, "crash": args.image_crash}
        load = os.getloadavg()[0]
        raw = raw_timings(api, images, pull_secret=pull_secret, repeats=args.repeats, replicas=args.replicas)
        ours = kubernetes_timings(backend, images, repeats=args.repeats, replicas=args.replicas)
        backend.close()
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")
        api.close()
    result = {"benchmark": "deploy_kubernetes", "replicas": args.replicas, "repeats": args.repeats,
              "load_1m": round(load, 2),
              "ours_median_s": {k: _median(v) for k, v in ours.items()},
              "raw_median_s": {k: _median(v) for k, v in raw.items()},
              "ratio_ours_vs_raw": {k: round(_median(ours[k]) / _median(raw[k]), 2) for k in raw},
              "failure_goal_s": 30, "ours_s": ours, "raw_s": raw}
    print(json.dumps(result))
    return 0


def _has_default_sa(core: Any, namespace: str) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        core.read_namespaced_service_account("default", namespace)
        return True
    except ApiException:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
