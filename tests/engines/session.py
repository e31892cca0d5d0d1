"""Engines started for one test session (root on Debian), in a private state dir, and stopped at its end."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .common import ENV_BUILD_K8S, EngineUnavailable, can_start_engines, missing_commands, run_script

K8S_VERSION = "1.20.2"


def infra_cache() -> Path:
    """The cache the scripts use (scripts/infra/lib.sh computes the same default)."""
    if os.environ.get("MLOPS_INFRA_CACHE"):
        return Path(os.environ["MLOPS_INFRA_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/mlops-desktop")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops-desktop"


def k8s_binaries() -> Path:
    return infra_cache() / f"k8s-v{K8S_VERSION}" / "bin"


class SessionEngines:
    """Starts docker-up.sh / k8s-up.sh on first use with MLOPS_INFRA_STATE = a fresh dir; down.sh at close()."""

    DOCKER_COMMANDS = ("/usr/sbin/dockerd", "/usr/bin/docker", "/usr/bin/docker-registry", "htpasswd", "ip",
                       "iptables")
    KUBE_COMMANDS = ("/usr/bin/containerd", "/usr/bin/ctr", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
                     "/usr/lib/cni/portmap", "iptables", "openssl")

    def __init__(self) -> None:
        self.state: Path | None = None
        self.docker_env: dict[str, str] | None = None
        self.kube_env: dict[str, str] | None = None
        self._failed: dict[str, str] = {}

    def _env(self) -> dict[str, str]:
        if self.state is None:
            self.state = Path(tempfile.mkdtemp(prefix="mlops-engines-", dir="/var/tmp"))
        return {"MLOPS_INFRA_STATE": str(self.state)}

    @staticmethod
    def _read_env(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export "):].partition("=")
                out[key] = value
        return out

    def _start(self, kind: str, script: str, commands: tuple[str, ...], extra: dict[str, str] | None = None) -> None:
        if kind in self._failed:
            raise EngineUnavailable(self._failed[kind])
        try:
            why = can_start_engines()
            if why:
                raise EngineUnavailable(why)
            missing = missing_commands(*commands)
            if missing:
                raise EngineUnavailable(f"not installed: {', '.join(missing)} (run `bash scripts/infra/install.sh`)")
            run_script(script, env={**self._env(), **(extra or {})})
        except EngineUnavailable as exc:
            self._failed[kind] = str(exc)
            raise

    def docker(self) -> dict[str, str]:
        if self.docker_env is None:
            if not os.path.exists(infra_cache() / "base") and not shutil.which("debootstrap"):
                raise EngineUnavailable("no cached base image and no debootstrap (run `bash scripts/infra/install.sh`)")
            self._start("docker", "docker-up.sh", self.DOCKER_COMMANDS)
            assert self.state is not None
            self.docker_env = self._read_env(self.state / "docker" / "env.sh")
        return self.docker_env

    def kube(self) -> dict[str, str]:
        if self.kube_env is None:
            docker = self.docker()  # the node pulls from this engine's registry
            if not (k8s_binaries().parent / ".complete").exists():
                if os.environ.get(ENV_BUILD_K8S) == "1":
                    run_script("k8s-build.sh", timeout=3600)
                else:
                    raise EngineUnavailable(
                        f"no Kubernetes binaries in {k8s_binaries()}: run `bash scripts/infra/k8s-build.sh` once "
                        f"(~6 min, cached) or set {ENV_BUILD_K8S}=1")
            self._start("kubernetes", "k8s-up.sh", self.KUBE_COMMANDS,
                        {"MLOPS_TEST_REGISTRY": docker["MLOPS_TEST_REGISTRY"]})
            assert self.state is not None
            self.kube_env = self._read_env(self.state / "k8s" / "env.sh")
        return self.kube_env

    def close(self) -> str | None:
        """Stop what this session started and remove its state; the down script's error, if any."""
        if self.state is None:
            return None
        try:
            run_script("down.sh", env=self._env(), timeout=300)
        except EngineUnavailable as exc:
            return str(exc)
        shutil.rmtree(self.state, ignore_errors=True)
        return None
