"""Push an image to a registry and record the digest it answered. The Engine API reports push failures inside an
HTTP 200 stream (docker-py#3161), so every line is read and any error fails the push. Credentials come from
Docker's own config.json and credential helpers (the SDK reads them), from the OS keyring (service
`mlops-desktop:REGISTRY`, if the keyring package is installed) or from the caller; we never store or log them."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

from mlops_desktop.containers import records
from mlops_desktop.containers.build import LogFn
from mlops_desktop.containers.engine import EngineUnreachable, api_error, connect, engine_address, short_reason
from mlops_desktop.containers.names import check_registry, parse_image_name
from mlops_desktop.containers.records import ImageRecord
from mlops_desktop.errors import MlopsError, NotFoundError

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class PushFailed(MlopsError):
    """The registry refused the push (credentials, permissions, an unreachable or full registry)."""


def keyring_auth(registry: str) -> dict[str, str] | None:
    """Credentials kept in the OS keyring under `mlops-desktop:REGISTRY`, when the keyring package is there."""
    try:
        import keyring
    except ImportError:
        return None
    with contextlib.suppress(Exception):  # no backend, a locked keyring: fall back to Docker's config
        cred = keyring.get_credential(f"mlops-desktop:{registry}", None)
        if cred is not None and cred.username and cred.password:
            return {"username": cred.username, "password": cred.password}
    return None


def push_image(ws: Workspace, image: str | ImageRecord, registry: str, *, docker_host: str | None = None,
               on_log: LogFn | None = None, auth_config: dict[str, str] | None = None) -> ImageRecord:
    """Tag the image REGISTRY/PATH:TAG, push it, and record `REGISTRY/PATH@sha256:...` as its digest."""
    from mlops_desktop.containers.images import get_image

    record = get_image(ws, image)
    registry = check_registry(registry)
    target = parse_image_name(record.tag, what="image tag").in_registry(registry)
    auth = auth_config or keyring_auth(registry)
    secrets = [v for v in (auth or {}).values() if v]
    client = connect(docker_host, timeout=600)
    where = engine_address(docker_host)

    def say(line: str) -> None:
        if on_log is not None:
            on_log(_scrub(line, secrets))

    try:
        api = client.api
        try:
            api.inspect_image(record.image_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                raise NotFoundError(f"the image {record.tag} ({record.image_id[7:19]}) is no longer on the Docker "
                                    f"engine at {where}", hint=f"build it again: mlops-desktop images build "
                                                               f"{record.ref}") from None
            raise api_error("looking up the image", exc, where) from None
        api.tag(record.image_id, target.repository, target.tag, force=True)
        say(f"pushing {target} ({record.image_id[7:19]}, {record.size_bytes / 1e6:.0f} MB)")
        digest = _stream_push(api, target.repository, target.tag, auth, say, where, secrets)
    finally:
        client.close()
    reference = f"{target.repository}@{digest}"
    say(f"pushed {target}: {reference}")
    return records.save_push(ws.db, record, registry=registry, reference=str(target), digest=reference)


def _stream_push(api: Any, repository: str, tag: str, auth: dict[str, str] | None, say: LogFn, where: str,
                 secrets: list[str]) -> str:
    digest = ""
    last_status: dict[str, str] = {}
    try:
        stream = api.push(repository, tag, stream=True, decode=True, auth_config=auth)
        for chunk in stream:
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error") or chunk.get("errorDetail"):
                detail = chunk.get("errorDetail") or {}
                message = _scrub(str(chunk.get("error") or detail.get("message") or "unknown error"), secrets)
                raise PushFailed(f"the push of {repository}:{tag} failed: {message}", hint=_hint(message))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            status, layer = str(chunk.get("status") or ""), str(chunk.get("id") or "")
            if status and last_status.get(layer) != status and "ing" not in status[-4:]:
                last_status[layer] = status
                say(f"{layer + ': ' if layer else ''}{status}")
            m = _DIGEST.search(status) if "digest:" in status else None
            if m and not digest:
                digest = m.group(0)
    except PushFailed:
        raise
    except Exception as exc:
        if getattr(exc, "status_code", None):
            raise PushFailed(f"the push of {repository}:{tag} failed: {_scrub(short_reason(exc), secrets)}") from None
        raise EngineUnreachable(f"the Docker engine at {where} stopped answering during the push "
                                f"({_scrub(short_reason(exc), secrets)})") from None
    if not digest:
        raise PushFailed(f"the push of {repository}:{tag} ended without the registry confirming a digest",
                         hint="the registry may have dropped the connection; push again")
    return digest


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _hint(message: str) -> str | None:
    low = message.lower()
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        return ("log in to the registry with `docker login REGISTRY` (Docker's config and credential helpers are "
                "used), or keep the credentials in the OS keyring under mlops-desktop:REGISTRY")
    if "connection refused" in low or "no such host" in low or "timeout" in low:
        return "the registry does not answer from the Docker engine's host; check its address and that it runs"
    if "http response to https client" in low:
        return "the registry speaks plain http: add it to dockerd's insecure-registries (127.0.0.0/8 is by default)"
    return None
