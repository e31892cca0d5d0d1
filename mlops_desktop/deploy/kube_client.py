"""The connection of a Kubernetes target: the user's kubeconfig and context, timeouts, and errors told in words.

Every API call goes through `KubeApi.call`, which adds a (connect, read) timeout and turns what the client raises
into our errors: an API server that does not answer (refused, reset, timed out, 5xx while it starts) is
`EngineUnreachable` (the service records `unknown`), a refusal (401/403/404/409/422) is an `MlopsError` that quotes
the server's own one-line message, never a traceback or a raw HTTP dump. The `kubernetes` package is imported here,
inside functions, so nothing loads it until a Kubernetes target is used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlops_desktop.deploy.backend import EngineUnreachable, RolloutFailed
from mlops_desktop.errors import MlopsError, NotFoundError, UsageError

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 20.0
DEFAULT_KUBECONFIG = "~/.kube/config"


def kubeconfig_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The kubeconfig to read: the target's own, else the first file of $KUBECONFIG, else ~/.kube/config."""
    if explicit:
        return Path(os.path.expanduser(str(explicit)))
    env = os.environ.get("KUBECONFIG", "")
    for part in env.split(os.pathsep):
        if part.strip():
            return Path(os.path.expanduser(part.strip()))
    return Path(os.path.expanduser(DEFAULT_KUBECONFIG))


@dataclass(frozen=True)
class KubeContext:
    """One context of a kubeconfig, as `kubectl config get-contexts` lists it."""

    name: str
    cluster: str
    user: str
    namespace: str
    current: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cluster": self.cluster, "user": self.user, "namespace": self.namespace,
                "current": self.current}


def list_contexts(kubeconfig: str | os.PathLike[str] | None = None) -> list[KubeContext]:
    """The contexts of the user's kubeconfig (no server is contacted); a missing or broken file is said in words."""
    path = kubeconfig_path(kubeconfig)
    if not path.is_file():
        raise UsageError(f"no kubeconfig at {path}",
                         hint="pass --kubeconfig FILE, set $KUBECONFIG, or create ~/.kube/config")
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the kubeconfig {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"the kubeconfig {path} is not valid YAML{where}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"the kubeconfig {path} is not a kubeconfig (a YAML mapping with 'contexts')")
    current = doc.get("current-context") or ""
    out = []
    for item in doc.get("contexts") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        ctx: dict[str, Any] = item["context"] if isinstance(item.get("context"), dict) else {}
        out.append(KubeContext(name=item["name"], cluster=str(ctx.get("cluster") or ""), user=str(ctx.get("user") or ""),
                               namespace=str(ctx.get("namespace") or "default"), current=item["name"] == current))
    return out


def resolve_context(kubeconfig: str | os.PathLike[str] | None, context: str | None) -> KubeContext:
    """The named context (or the kubeconfig's current one), refused in words when it is not there."""
    contexts = list_contexts(kubeconfig)
    path = kubeconfig_path(kubeconfig)
    if not contexts:
        raise UsageError(f"the kubeconfig {path} has no contexts")
    if context:
        for ctx in contexts:
            if ctx.name == context:
                return ctx
        raise UsageError(f"the kubeconfig {path} has no context {context!r}",
                         hint="its contexts: " + ", ".join(c.name for c in contexts))
    for ctx in contexts:
        if ctx.current:
            return ctx
    raise UsageError(f"the kubeconfig {path} has no current context", hint="pass --context NAME; its contexts: "
                     + ", ".join(c.name for c in contexts))


def server_message(exc: Any) -> str:
    """The one-line message of an ApiException (the server's Status.message), without the HTTP dump."""
    body = getattr(exc, "body", None)
    if body:
        try:
            doc = json.loads(body)
            if isinstance(doc, dict) and doc.get("message"):
                return str(doc["message"])
        except (ValueError, TypeError):
            pass
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return text.strip().splitlines()[0][:300] if text.strip() else str(getattr(exc, "reason", ""))
    return str(getattr(exc, "reason", "") or exc)


class KubeApi:
    """The API clients of one target (its kubeconfig, context and namespace), with timeouts on every call."""

    def __init__(self, kubeconfig: str | os.PathLike[str] | None, context: str | None, namespace: str | None,
                 *, timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) -> None:
        self.kubeconfig = kubeconfig_path(kubeconfig)
        self.context = resolve_context(self.kubeconfig, context)
        self.namespace = namespace or self.context.namespace or "default"
        self.timeout = timeout
        self._api: Any = None
        self.server = ""

    # ------------------------------------------------------------------ clients
    @property
    def api_client(self) -> Any:
        if self._api is None:
            from kubernetes import client, config
            from kubernetes.config.config_exception import ConfigException

            cfg = client.Configuration()
            try:
                config.load_kube_config(config_file=str(self.kubeconfig), context=self.context.name,
                                        client_configuration=cfg, persist_config=False)
            except ConfigException as exc:
                raise UsageError(f"the kubeconfig {self.kubeconfig}, context {self.context.name!r}, cannot be "
                                 f"used: {exc}") from None
            cfg.retries = 0  # one try per call: an API server that is down is reported at once, not after retries
            self.server = cfg.host
            self._api = client.ApiClient(cfg)
        return self._api

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    def version_api(self) -> Any:
        from kubernetes import client

        return client.VersionApi(self.api_client)

    def close(self) -> None:
        if self._api is not None:
            try:
                self._api.close()
            except Exception:  # noqa: S110 - closing a pool that is already broken
                pass
            self._api = None

    # ------------------------------------------------------------------ calls
    def call(self, fn: Callable[..., T], *args: Any, timeout: float | tuple[float, float] | None = None,
             what: str = "", **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` with a timeout; errors in our words (`what` says what was asked)."""
        kwargs.setdefault("_request_timeout", timeout if timeout is not None else self.timeout)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # translated below; anything unknown is re-raised as is
            raise self.translate(exc, what or getattr(fn, "__name__", "a request")) from None

    def get(self, fn: Callable[..., T], *args: Any, what: str = "", **kwargs: Any) -> T | None:
        """As `call`, but None when the object does not exist (404)."""
        try:
            return self.call(fn, *args, what=what, **kwargs)
        except NotFoundError:
            return None

    def where(self) -> str:
        server = self.server or "the API server"
        return f"{server} (context {self.context.name!r})"

    def translate(self, exc: BaseException, what: str) -> BaseException:
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        if isinstance(exc, MlopsError):
            return exc
        if isinstance(exc, ApiException):
            status = int(exc.status or 0)
            message = server_message(exc)
            if status == 0 or status >= 500:
                return EngineUnreachable(f"the Kubernetes API server {self.where()} failed {what}: "
                                         f"{message or 'no answer'}" + (f" (HTTP {status})" if status else ""))
            if status == 401:
                return MlopsError(f"the Kubernetes API server {self.where()} does not accept the credentials of "
                                  f"the kubeconfig {self.kubeconfig} ({message})",
                                  hint="refresh the token or certificate in the kubeconfig")
            if status == 403:
                return MlopsError(f"the Kubernetes API server {self.where()} forbids {what}: {message}",
                                  hint=f"the kubeconfig's user needs that permission in namespace {self.namespace}")
            if status == 404:
                return NotFoundError(f"{what}: not found in namespace {self.namespace} ({message})")
            if status == 409:
                return RolloutFailed(f"{what}: the object changed meanwhile or already exists ({message})")
            return RolloutFailed(f"the Kubernetes API server refused {what}: {message} (HTTP {status})")
        if isinstance(exc, Urllib3Error | OSError | TimeoutError):
            reason = getattr(exc, "reason", None) or exc
            text = str(reason)
            if "Max retries exceeded" in text or "object at 0x" in text:
                text = type(reason).__name__
            if "Connection refused" in str(exc) or "ConnectionRefused" in str(exc) or "NewConnectionError" in text:
                text = "connection refused"
            elif "timed out" in str(exc).lower() or "ReadTimeout" in text or "ConnectTimeout" in text:
                text = "timed out"
            return EngineUnreachable(f"the Kubernetes API server {self.where()} does not answer ({what}): {text}")
        return exc
