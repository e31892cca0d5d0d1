"""One image build on the engine through the Docker SDK's Engine API: the log streamed line by line, cancel at
any moment (the connection is closed, dockerd stops the build), the tag applied only after a build that finished
and was not cancelled — so a cancelled or failed build never leaves a tagged image."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from mlops_desktop.containers.engine import EngineError, EngineUnreachable, short_reason
from mlops_desktop.errors import MlopsError

LogFn = Callable[[str], None]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BuildFailed(MlopsError):
    """The engine refused or failed the build (bad base image, a failing step)."""


class BuildCancelled(MlopsError):
    """The build was cancelled; nothing was tagged."""

    exit_code = 130


@dataclass
class BuildOutcome:
    """What a build did: the state, the image id, the log, and how many steps came from the cache."""

    state: str  # succeeded | failed | cancelled
    image_id: str = ""
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)
    steps: int = 0
    cached_steps: int = 0
    error: str = ""


def run_build(client: Any, context: IO[bytes], *, tag: str, labels: dict[str, str] | None = None,
              on_log: LogFn | None = None, cancel: threading.Event | None = None, where: str = "",
              timeout: float = 1800.0, network: str | None = None) -> BuildOutcome:
    """Build `context` (a tar with a Dockerfile), tag the result `tag`; raise BuildFailed / BuildCancelled."""
    api = client.api
    outcome = BuildOutcome("failed")
    started = time.monotonic()
    cancel = cancel or threading.Event()
    if cancel.is_set():
        raise BuildCancelled("the build was cancelled before it started; nothing was tagged")
    params: dict[str, Any] = {"rm": True, "forcerm": True, "q": False, "nocache": False, "pull": False}
    if network:
        params["networkmode"] = network  # RUN steps without a network: nothing is fetched during a build
    if labels:
        import json

        params["labels"] = json.dumps(labels)
    try:
        # the low-level call (what APIClient.build does) so that we hold the response and can close it to cancel
        response = api._post(api._url("/build"), data=context, params=params,
                             headers={"Content-Type": "application/tar"}, stream=True, timeout=timeout)
    except Exception as exc:
        raise EngineUnreachable(f"cannot start a build on the Docker engine at {where}: {short_reason(exc)}",
                                hint="check that dockerd is running") from None
    if response.status_code >= 400:
        text = response.text.strip()
        with contextlib.suppress(ValueError):
            text = response.json().get("message", text)
        response.close()
        raise BuildFailed(f"the Docker engine at {where} refused the build: {text}")
    done = threading.Event()
    failure: list[BaseException] = []

    def emit(line: str) -> None:
        outcome.log.append(line)
        if line.startswith("Step "):
            outcome.steps += 1
        elif line.strip() == "---> Using cache":
            outcome.cached_steps += 1
        if on_log is not None:
            on_log(line)

    def read() -> None:
        try:
            for chunk in api._stream_helper(response, decode=True):
                _handle(chunk, outcome, emit)
        except Exception as exc:
            if not cancel.is_set():
                failure.append(exc)
        finally:
            done.set()

    reader = threading.Thread(target=read, name="image-build-log", daemon=True)
    reader.start()
    while not done.wait(0.1):
        if cancel.is_set():
            _close(response)
            break
    reader.join(30)
    outcome.seconds = time.monotonic() - started
    if cancel.is_set():
        outcome.state = "cancelled"
        emit("build cancelled: nothing was tagged")
        raise BuildCancelled("the build was cancelled; nothing was tagged")
    if failure:
        raise EngineUnreachable(f"the Docker engine at {where} stopped answering during the build "
                                f"({short_reason(failure[0])})", hint="check that dockerd is running")
    if outcome.error or not outcome.image_id:
        outcome.state = "failed"
        raise BuildFailed(f"the image build failed: {outcome.error or 'the engine reported no image'}",
                          hint=_hint(outcome.error))
    repo, _, version = tag.rpartition(":")
    try:
        api.tag(outcome.image_id, repo, version, force=True)
    except Exception as exc:
        raise EngineError(f"the image was built ({outcome.image_id[:19]}) but could not be tagged {tag}: "
                          f"{short_reason(exc)}") from None
    outcome.state = "succeeded"
    return outcome


def _handle(chunk: Any, outcome: BuildOutcome, emit: LogFn) -> None:
    if not isinstance(chunk, dict):
        return
    if "error" in chunk or "errorDetail" in chunk:
        detail = chunk.get("errorDetail") or {}
        outcome.error = _ANSI.sub("", str(chunk.get("error") or detail.get("message") or "unknown error")).strip()
        emit(f"error: {outcome.error}")
        return
    aux = chunk.get("aux")
    if isinstance(aux, dict) and aux.get("ID"):
        outcome.image_id = str(aux["ID"])
    text = chunk.get("stream")
    if text is None and chunk.get("status"):
        text = " ".join(str(chunk[k]) for k in ("id", "status", "progress") if chunk.get(k)) + "\n"
    if text:
        for line in _ANSI.sub("", str(text)).splitlines():
            if line.strip():
                emit(line.rstrip())
                m = re.match(r"Successfully built ([0-9a-f]{12,64})", line.strip())
                if m and not outcome.image_id:
                    outcome.image_id = m.group(1)


def _close(response: Any) -> None:
    """Drop the build's connection: dockerd cancels a build whose client went away."""
    with contextlib.suppress(Exception):
        sock = response.raw._fp.fp.raw._sock
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


def _hint(error: str) -> str | None:
    low = error.lower()
    if "pull access denied" in low or "not found" in low and ("manifest" in low or "repository" in low) \
            or "no such image" in low:
        return ("the base image is not on this engine and cannot be pulled; build the default one with "
                "`bash scripts/infra/base-image.sh mlops-desktop/python-base:bookworm` or pass --base")
    return None
