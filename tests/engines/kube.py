"""The Kubernetes cluster of the tests (a real node), per-test namespaces, and the API server's stop/start."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import ENV_RESTARTABLE, EngineGone, EngineUnavailable, pid_alive, run_script, wait_until
from .session import k8s_binaries

PULL_SECRET = "mlops-registry"


@dataclass
class KubeCluster:
    """Admin kubeconfig of a control plane with one real node; NodePorts answer on node_ip and 127.0.0.1."""

    kubeconfig: Path
    node_ip: str
    bin: Path  # kubectl lives here
    state: Path | None = None  # k8s-up.sh's state dir ($MLOPS_INFRA_STATE/k8s); None when known only by kubeconfig
    restartable: bool = False
    _apis: list[Any] = field(default_factory=list, repr=False)

    def api_client(self) -> Any:
        from kubernetes import config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        self._apis.append(api)
        return api

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client())

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, timeout=timeout, check=check)

    def ping(self, timeout: float = 3) -> bool:
        from kubernetes import client

        try:
            return bool(client.VersionApi(self.api_client()).get_code(_request_timeout=timeout).git_version)
        except Exception:
            return False

    def check_alive(self) -> None:
        if self.ping():
            return
        if self.state is not None and pid_alive(self.state / "apiserver.pid", str(self.state / "pki")) is None:
            raise EngineGone(f"the Kubernetes API server of {self.kubeconfig} is gone: kube-apiserver is not running "
                             f"(log: {self.state.parent / 'logs' / 'apiserver.log'})")
        raise EngineGone(f"the Kubernetes API server of {self.kubeconfig} does not answer")

    def require_restartable(self) -> None:
        if not self.restartable:
            raise EngineUnavailable(
                f"the cluster of {self.kubeconfig} is shared (not started by this session): stopping its API server "
                f"would break its other users; set {ENV_RESTARTABLE}=1 where that is fine (.ci/run does)")

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only: the node, its pods and kube-proxy's rules stay (as when a control plane dies)."""
        self.require_restartable()
        assert self.state is not None
        run_script("k8s-down.sh", "--apiserver-only", env={"MLOPS_INFRA_STATE": str(self.state.parent)}, timeout=60)
        wait_until(lambda: not self.ping(1), 30, "kube-apiserver to stop answering")

    def start_apiserver(self) -> None:
        self.require_restartable()
        assert self.state is not None
        run_script("k8s-up.sh", env={"MLOPS_INFRA_STATE": str(self.state.parent)}, timeout=300)
        wait_until(self.ping, 60, "kube-apiserver to answer again")

    @contextlib.contextmanager
    def apiserver_stopped(self) -> Iterator[None]:
        self.stop_apiserver()
        try:
            yield
        finally:
            self.start_apiserver()

    def close(self) -> None:
        for api in self._apis:
            with contextlib.suppress(Exception):
                api.close()
        self._apis.clear()


def dockerconfigjson(registry: str, user: str, password: str) -> str:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"username": user, "password": password, "auth": auth}}})


class KubeNamespace:
    """A fresh namespace for one test, deleted afterwards (in the background: pods take a while to terminate)."""

    def __init__(self, cluster: KubeCluster, test_name: str) -> None:
        self.cluster = cluster
        slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
        self.name = f"t-{secrets.token_hex(3)}-{slug}".rstrip("-")
        self.core = cluster.core()
        self.apps = cluster.apps()
        self.core.create_namespace({"metadata": {"name": self.name, "labels": {"mlops-test": "1"}}})
        # pods are admitted once the namespace's default ServiceAccount exists
        wait_until(lambda: self.core.read_namespaced_service_account("default", self.name), 30,
                   f"the default ServiceAccount of namespace {self.name}")

    def add_pull_secret(self, registry: str, user: str, password: str, name: str = PULL_SECRET,
                        default_service_account: bool = False) -> str:
        """A kubernetes.io/dockerconfigjson Secret for the registry; optionally the default ServiceAccount's."""
        self.core.create_namespaced_secret(self.name, {
            "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(dockerconfigjson(registry, user, password).encode()).decode()}})
        if default_service_account:
            self.core.patch_namespaced_service_account("default", self.name, {"imagePullSecrets": [{"name": name}]})
        return name

    def cleanup(self) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.delete_namespace(self.name, propagation_policy="Background", grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise


def cluster_from_env(env: dict[str, str], state: Path | None, restartable: bool) -> KubeCluster:
    kubeconfig = Path(env["MLOPS_TEST_KUBECONFIG"])
    if not kubeconfig.exists():
        raise EngineUnavailable(f"MLOPS_TEST_KUBECONFIG={kubeconfig} does not exist")
    return KubeCluster(kubeconfig=kubeconfig, node_ip=env.get("MLOPS_TEST_KUBE_NODE_IP", "10.255.0.1"),
                       bin=Path(env.get("MLOPS_TEST_KUBE_BIN") or k8s_binaries()), state=state, restartable=restartable)
