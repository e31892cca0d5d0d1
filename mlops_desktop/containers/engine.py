"""The Docker engine connection: which engine (argument, $DOCKER_HOST, the default socket), checked to answer,
with every failure said in words (which engine, what to do) rather than a requests/urllib3 traceback."""

from __future__ import annotations

import os
from typing import Any

from mlops_desktop.errors import MlopsError


class EngineError(MlopsError):
    """The Docker engine cannot be reached, or refused what we asked for."""


class EngineUnreachable(EngineError):
    exit_code = 4


def engine_address(docker_host: str | None) -> str:
    return docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(docker_host: str | None = None, *, timeout: int = 120) -> Any:
    """A docker SDK client for the engine, pinged; EngineUnreachable in words when it does not answer."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:  # pragma: no cover - a declared dependency
        raise EngineError("the Docker SDK (the 'docker' package) is not installed") from None
    where = engine_address(docker_host)
    try:
        client = docker.DockerClient(base_url=where, timeout=timeout, version="auto")
    except DockerException as exc:
        raise EngineUnreachable(f"cannot reach the Docker engine at {where}: {short_reason(exc)}",
                                hint="start dockerd, or pass --docker-host / set DOCKER_HOST") from None
    try:
        client.ping()
    except Exception as exc:
        client.close()
        raise EngineUnreachable(f"the Docker engine at {where} does not answer: {short_reason(exc)}",
                                hint="start dockerd, or pass --docker-host / set DOCKER_HOST") from None
    return client


def short_reason(exc: BaseException) -> str:
    """The useful part of a docker/requests exception ('Connection refused', 'No such file or directory')."""
    text = str(getattr(exc, "explanation", None) or exc)
    for marker in ("Connection refused", "No such file or directory", "Permission denied", "timed out",
                   "Name or service not known", "Connection aborted"):
        if marker in text:
            return marker.lower() if marker != "No such file or directory" else "no such socket"
    text = text.replace("\n", " ").strip()
    return text[:300] if text else type(exc).__name__


def api_error(what: str, exc: BaseException, where: str) -> EngineError:
    """An EngineError for a failed engine call: the engine's own explanation, not the HTTP client's."""
    from docker.errors import APIError

    if isinstance(exc, APIError):
        return EngineError(f"{what} failed on the Docker engine at {where}: {short_reason(exc)}")
    return EngineUnreachable(f"{what}: the Docker engine at {where} stopped answering ({short_reason(exc)})",
                             hint="check that dockerd is running")
