"""What the engine fixtures share: the environment variables, the infra scripts, waiting, and the skip-or-fail rule."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "scripts" / "infra"
ENGINE_MARKERS = ("docker", "swarm", "kubernetes", "prometheus")

# Environment variables (docs/TESTING.md). scripts/infra/up.sh writes the MLOPS_TEST_* ones to $STATE/env.sh.
ENV_STATE = "MLOPS_TEST_ENGINES_STATE"  # the up.sh state dir of the engines named below (their pid files)
ENV_RESTARTABLE = "MLOPS_TEST_ENGINES_RESTARTABLE"  # "1": tests may stop/restart those shared engines
ENV_MODE = "MLOPS_TEST_ENGINES"  # "off": never start engines in the session (their tests skip)
ENV_BUILD_K8S = "MLOPS_TEST_BUILD_K8S"  # "1": build the Kubernetes binaries in the session when not cached
ENV_DOCKER_HOST = "MLOPS_TEST_DOCKER_HOST"
ENV_REGISTRY = "MLOPS_TEST_REGISTRY"
ENV_REGISTRY_USER = "MLOPS_TEST_REGISTRY_USER"
ENV_REGISTRY_PASSWORD_FILE = "MLOPS_TEST_REGISTRY_PASSWORD_FILE"
ENV_BASE_IMAGE = "MLOPS_TEST_BASE_IMAGE"
ENV_KUBECONFIG = "MLOPS_TEST_KUBECONFIG"
ENV_KUBE_NODE_IP = "MLOPS_TEST_KUBE_NODE_IP"
ENV_KUBE_BIN = "MLOPS_TEST_KUBE_BIN"
ENV_PROMETHEUS = "MLOPS_TEST_PROMETHEUS"  # the prometheus binary (default: Debian's /usr/bin/prometheus)
ENV_PROMTOOL = "MLOPS_TEST_PROMTOOL"

T = TypeVar("T")


class EngineUnavailable(Exception):
    """An engine cannot run here; the message says why and what to do about it."""


class EngineGone(Exception):
    """An engine that ran has gone away (its daemon exited, its socket stopped answering)."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the test with the reason; under CI=true an engine must run, so it is a failure instead."""
    if in_ci():
        pytest.fail(f"CI=true but an engine test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def can_start_engines() -> str | None:
    """Why this session cannot start root engines itself, or None when it can."""
    if os.environ.get(ENV_MODE) == "off":
        return f"{ENV_MODE}=off: the session starts no engines"
    if os.geteuid() != 0:
        return "the engines need root (or start them with `sudo bash scripts/infra/up.sh` and source its env.sh)"
    if not Path("/etc/debian_version").exists():
        return "the engine scripts need Debian (apt, debootstrap, Debian's docker.io and containerd)"
    return None


def missing_commands(*paths: str) -> list[str]:
    return [p for p in paths if not (os.access(p, os.X_OK) or shutil.which(p))]


def run_script(name: str, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """Run scripts/infra/NAME; its combined output, or EngineUnavailable with the output's tail."""
    proc = subprocess.run(["bash", str(INFRA / name), *args], env={**os.environ, **(env or {})},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise EngineUnavailable(f"scripts/infra/{name} {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def wait_until(predicate: Callable[[], T], timeout: float, what: str, every: float = 0.3) -> T:
    """predicate()'s first truthy value within timeout seconds, else TimeoutError naming `what` and the last error."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing we wait for is not there yet
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s" + (f" (last error: {last})" if last else ""))
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid_file: Path, pattern: str) -> int | None:
    """The pid in pid_file when it runs a command line containing pattern (a recycled pid is not ours)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return pid if pattern in cmdline and state not in ("Z", "X") else None  # a zombie has exited
