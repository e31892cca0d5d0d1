"""The A/B router's settings: arms and their backends, the sticky header, the shadow, health checks and tokens.

A router is configured by one file (TOML or JSON; a deployment mounts it, e.g. a ConfigMap or a Swarm config) or
by the same document inline in `$MLOPS_ROUTER_CONFIG`. Every mistake is refused in words that name the field:

    name = "churn-ab"                 # in metrics, change events and logs
    stable = "v1"                     # the primary arm: readiness and the kill switch's target
    sticky_header = "x-user-id"       # optional: a user keeps their arm (consistent hashing of this header)
    state_dir = "/var/lib/router"     # change log, live settings, shadow comparisons
    [[arms]]
    name = "v1"
    weight = 90
    version = "3"                     # optional: the model version it serves (a versioned v2 route goes here)
    backends = ["http://10.0.0.5:8080", "10.0.0.6:8080"]
    [shadow]                          # optional: mirror a share of the traffic to an arm whose weight is 0
    arm = "v3"
    percent = 10
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.serving.config import DEFAULT_MAX_BODY, TOKEN_RE, is_loopback, read_token

ARM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class BackendAddress:
    """One replica of an arm: plain HTTP inside the deployment's network (TLS ends in front of the router)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.authority}"

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ArmConfig:
    name: str
    weight: float
    backends: tuple[BackendAddress, ...]
    version: str | None = None


@dataclass(frozen=True)
class ShadowConfig:
    """Mirror `percent` of the requests to `arm` after the primary answered; its answers are never returned."""

    arm: str
    percent: float = 10.0
    enabled: bool = True
    queue: int = 1024            # mirrored requests waiting for a shadow worker; beyond it they are dropped, counted
    concurrency: int = 8         # shadow requests in flight at once
    timeout_s: float = 5.0       # a shadow slower than this is counted as timed out (never awaited by a client)
    tolerance: float = 0.0       # relative tolerance for numeric predictions to count as agreeing (0: equal)


@dataclass(frozen=True)
class HealthConfig:
    path: str = "/v2/health/ready"
    interval_s: float = 1.0
    timeout_s: float = 1.0
    fail_after: int = 2          # consecutive failed checks before a backend is marked down
    rise_after: int = 1          # consecutive good checks before it is up again


@dataclass(frozen=True)
class RouterConfig:
    arms: tuple[ArmConfig, ...]
    stable: str
    name: str = "router"
    host: str = "127.0.0.1"
    port: int = 8090
    sticky_header: str | None = None
    shadow: ShadowConfig | None = None
    health: HealthConfig = field(default_factory=HealthConfig)
    state_dir: Path | None = None
    token: str | None = None           # clients' bearer token for predictions (as the model server's --token-file)
    insecure: bool = False             # a non-loopback bind without a client token (a trusted network)
    admin_token: str | None = None     # the admin API's bearer token; without one the admin API is closed
    backend_token: str | None = None   # sent to the backends as 'Authorization: Bearer' (else the client's header)
    timeout_s: float = 30.0            # a backend's answer, from the request sent to the last byte
    connect_timeout_s: float = 2.0
    retry: bool = True                 # a refused/reset request is tried once more on another backend of its arm
    max_body_bytes: int = DEFAULT_MAX_BODY
    drain_timeout_s: float = 20.0

    def arm(self, name: str) -> ArmConfig:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arms)

    def with_(self, **changes: Any) -> RouterConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """For /admin/state and logs: every secret masked."""
        out = asdict(self)
        for key in ("token", "admin_token", "backend_token"):
            out[key] = "***" if out[key] else None
        out["state_dir"] = str(self.state_dir) if self.state_dir else None
        out["arms"] = [{"name": a.name, "weight": a.weight, "version": a.version,
                        "backends": [b.url for b in a.backends]} for a in self.arms]
        return out


# ----------------------------------------------------------------------------- loading and checking

def load(source: str | Path | dict[str, Any]) -> RouterConfig:
    """A config from a file (TOML, or JSON by its `.json` suffix or a leading '{') or from a dict. Relative paths
    in a file (token files, state_dir) are taken from the file's folder."""
    if isinstance(source, dict):
        return from_dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the router config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the router config {path} is not UTF-8 text") from None
    return from_dict(_parse(text, str(path)), where=str(path), base=path.resolve().parent)


def loads(text: str, where: str = "router config") -> RouterConfig:
    """A config from its text (TOML or JSON)."""
    return from_dict(_parse(text, where), where=where)


def from_env_or_file(path: str | None) -> RouterConfig:
    """`--config FILE`, else `$MLOPS_ROUTER_CONFIG` (a path, or the JSON document itself starting with '{')."""
    from mlops_desktop import envvars

    if path:
        return load(path)
    value = envvars.MLOPS_ROUTER_CONFIG.get()
    if value is None:
        raise UsageError("the router needs a config", hint="--config FILE, or $MLOPS_ROUTER_CONFIG (a path or the "
                                                           "JSON document itself)")
    if value.lstrip().startswith("{"):
        return loads(value, "$MLOPS_ROUTER_CONFIG")
    return load(value)


def _parse(text: str, where: str) -> dict[str, Any]:
    stripped = text.lstrip()
    if stripped.startswith("{") or where.endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{where} is not valid JSON: {exc}") from None
    else:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{where} is not valid TOML: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{where} must be a table/object of settings")
    return doc


_TOP = {"name", "host", "port", "stable", "sticky_header", "arms", "shadow", "health", "state_dir", "token_file",
        "insecure", "admin_token_file", "backend_token_file", "timeout_s", "connect_timeout_s", "retry",
        "max_body_mb", "drain_timeout_s"}


def from_dict(doc: dict[str, Any], *, where: str = "router config", base: Path | None = None) -> RouterConfig:
    from mlops_desktop import envvars

    base = base or Path.cwd()
    _unknown(doc, _TOP, where)
    raw_arms = doc.get("arms")
    if not isinstance(raw_arms, list) or not raw_arms:
        raise UsageError(f"{where}: 'arms' must list at least one arm ([[arms]] with name, weight and backends)")
    arms = tuple(_arm(a, f"{where}: arms[{i}]") for i, a in enumerate(raw_arms))
    names = [a.name for a in arms]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{where}: arm name(s) {', '.join(dupes)} appear more than once")
    stable = doc.get("stable", names[0])
    if stable not in names:
        raise UsageError(f"{where}: 'stable' is {stable!r}, which is no arm (arms: {', '.join(names)})")
    shadow = _shadow(doc.get("shadow"), f"{where}: shadow", arms, stable)
    check_weights({a.name: a.weight for a in arms}, shadow.arm if shadow and shadow.enabled else None, where)
    sticky = doc.get("sticky_header")
    if sticky is not None and (not isinstance(sticky, str) or not HEADER_RE.match(sticky)):
        raise UsageError(f"{where}: 'sticky_header' must be an HTTP header name (got {sticky!r})")

    def token(key: str, env: Any) -> str | None:
        value = doc.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise UsageError(f"{where}: {key!r} must be a file path")
            tok: str | None = read_token(_path(value, base))
        else:
            tok = env.get() if env is not None else None
        if tok is not None and not TOKEN_RE.match(tok):
            raise UsageError(f"{where}: the token of {key} must be 16-512 characters of letters, digits and ._~+/=-")
        return tok

    state_dir = doc.get("state_dir")
    if state_dir is not None and not isinstance(state_dir, str):
        raise UsageError(f"{where}: 'state_dir' must be a folder path")
    config = RouterConfig(
        arms=arms, stable=stable, name=_name(doc.get("name", "router"), f"{where}: name"),
        host=_str(doc, "host", "127.0.0.1", where), port=_int(doc, "port", 8090, where, 0, 65535),
        sticky_header=sticky.lower() if sticky else None, shadow=shadow,
        health=_health(doc.get("health", {}), f"{where}: health"),
        state_dir=_path(state_dir, base) if state_dir else None,
        token=token("token_file", envvars.MLOPS_SERVE_TOKEN), insecure=_bool(doc, "insecure", False, where),
        admin_token=token("admin_token_file", envvars.MLOPS_ADMIN_TOKEN),
        backend_token=token("backend_token_file", envvars.MLOPS_ROUTER_BACKEND_TOKEN),
        timeout_s=_num(doc, "timeout_s", 30.0, where, 0.001, 3600),
        connect_timeout_s=_num(doc, "connect_timeout_s", 2.0, where, 0.001, 600),
        retry=_bool(doc, "retry", True, where),
        max_body_bytes=int(_num(doc, "max_body_mb", DEFAULT_MAX_BODY / (1 << 20), where, 0.001, 4096) * (1 << 20)),
        drain_timeout_s=_num(doc, "drain_timeout_s", 20.0, where, 0, 3600))
    check_exposure(config, where)
    return config


def check_exposure(config: RouterConfig, where: str = "router config") -> None:
    if not is_loopback(config.host) and config.token is None and not config.insecure:
        raise UsageError(f"{where}: binding to {config.host} exposes the models beyond this machine without a token",
                         hint="set token_file (or $MLOPS_SERVE_TOKEN), or insecure = true for a network you trust "
                              "(the admin API always needs its own token)")


def check_weights(weights: dict[str, float], shadow_arm: str | None, where: str) -> None:
    """Weights are finite, >= 0, sum above 0; the shadow arm's is 0 (its answers are never returned)."""
    for name, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise UsageError(f"{where}: the weight of arm {name!r} must be a number >= 0 (got {w!r})")
    if sum(weights.values()) <= 0:
        raise UsageError(f"{where}: the weights add up to 0; at least one arm needs a weight above 0",
                         hint="to send everything to the stable arm, use the kill switch")
    if shadow_arm is not None and weights.get(shadow_arm, 0) > 0:
        raise UsageError(f"{where}: arm {shadow_arm!r} is the shadow and has weight {weights[shadow_arm]:g}; a "
                         "shadow's answers are never returned, so its weight must be 0",
                         hint="turn the shadow off first to send it real traffic")


def _arm(raw: Any, where: str) -> ArmConfig:
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a table with name, weight and backends")
    _unknown(raw, {"name", "weight", "backends", "version"}, where)
    name = _name(raw.get("name"), f"{where}.name")
    weight = raw.get("weight", 0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
        raise UsageError(f"{where}.weight must be a number >= 0 (got {weight!r})")
    backends = raw.get("backends")
    if not isinstance(backends, list) or not backends:
        raise UsageError(f"{where}.backends must list at least one backend address (host:port or http://host:port)")
    addrs = tuple(parse_backend(b, f"{where}.backends[{i}]") for i, b in enumerate(backends))
    if len(set(addrs)) != len(addrs):
        raise UsageError(f"{where}.backends lists the same address twice")
    version = raw.get("version")
    if version is not None and (not isinstance(version, str | int) or not ARM_RE.match(str(version))):
        raise UsageError(f"{where}.version must be a version name such as \"3\" (got {version!r})")
    return ArmConfig(name, float(weight), addrs, str(version) if version is not None else None)


def parse_backend(value: Any, where: str) -> BackendAddress:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where} must be an address like 10.0.0.5:8080 or http://host:8080 (got {value!r})")
    text = value
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme.lower() != "http":
            raise UsageError(f"{where}: {value!r} uses {scheme}://; the router speaks plain HTTP to its backends",
                             hint="terminate TLS in front of the router; backends are inside the deployment")
    text = text.rstrip("/")
    if "/" in text or "?" in text or "@" in text:
        raise UsageError(f"{where}: {value!r} must be only host:port (no path, query or user)")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"{where}: {value!r} needs a host and a port between 1 and 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOST_RE.match(host) or len(host) > 253:
            raise UsageError(f"{where}: {host!r} is not a host name or IP address") from None
    return BackendAddress(host, int(port_text))


def _shadow(raw: Any, where: str, arms: tuple[ArmConfig, ...], stable: str) -> ShadowConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a table (arm, percent, ...)")
    _unknown(raw, {"arm", "percent", "enabled", "queue", "concurrency", "timeout_s", "tolerance"}, where)
    arm = raw.get("arm")
    names = [a.name for a in arms]
    if arm not in names:
        raise UsageError(f"{where}.arm is {arm!r}, which is no arm (arms: {', '.join(names)})")
    if arm == stable:
        raise UsageError(f"{where}.arm is the stable arm {stable!r}; the shadow must be another arm")
    return ShadowConfig(arm=arm, percent=check_percent(raw.get("percent", 10.0), f"{where}.percent"),
                        enabled=_bool(raw, "enabled", True, where), queue=_int(raw, "queue", 1024, where, 1, 1 << 20),
                        concurrency=_int(raw, "concurrency", 8, where, 1, 1024),
                        timeout_s=_num(raw, "timeout_s", 5.0, where, 0.001, 600),
                        tolerance=_num(raw, "tolerance", 0.0, where, 0, 1))


def check_percent(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise UsageError(f"{where} must be a number from 0 to 100 (got {value!r})")
    return float(value)


def _health(raw: Any, where: str) -> HealthConfig:
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a table")
    _unknown(raw, {"path", "interval_s", "timeout_s", "fail_after", "rise_after"}, where)
    path = _str(raw, "path", "/v2/health/ready", where)
    if not path.startswith("/") or any(c in path for c in " \r\n"):
        raise UsageError(f"{where}.path must be a URL path such as /v2/health/ready (got {path!r})")
    return HealthConfig(path, _num(raw, "interval_s", 1.0, where, 0.05, 3600),
                        _num(raw, "timeout_s", 1.0, where, 0.01, 600), _int(raw, "fail_after", 2, where, 1, 100),
                        _int(raw, "rise_after", 1, where, 1, 100))


def _unknown(doc: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(doc) - known)
    if extra:
        raise UsageError(f"{where}: unknown setting(s) {', '.join(map(repr, extra))}",
                         hint="known: " + ", ".join(sorted(known)))


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not ARM_RE.match(value):
        raise UsageError(f"{where} must be 1-63 letters, digits, '.', '_' or '-' (got {value!r})")
    return value


def _str(doc: dict[str, Any], key: str, default: str, where: str) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {key!r} must be text (got {value!r})")
    return value


def _bool(doc: dict[str, Any], key: str, default: bool, where: str) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise UsageError(f"{where}: {key!r} must be true or false (got {value!r})")
    return value


def _num(doc: dict[str, Any], key: str, default: float, where: str, low: float, high: float) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise UsageError(f"{where}: {key!r} must be a number from {low:g} to {high:g} (got {value!r})")
    return float(value)


def _int(doc: dict[str, Any], key: str, default: int, where: str, low: int, high: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{where}: {key!r} must be a whole number from {low} to {high} (got {value!r})")
    return value


def _path(value: str, base: Path) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p
