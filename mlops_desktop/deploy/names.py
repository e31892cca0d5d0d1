"""Deployment and target names, model references, env and resource values: checked before anything reaches an engine.

A deployment's name becomes part of container, Swarm service, Kubernetes Deployment/Service and router names
(`<name>-router`, `<name>-v12`, `<name>-r12-...`), so it is a DNS-1035 label (what a Kubernetes Service name must be:
lowercase letters, digits and '-', starting with a letter, ending with a letter or digit) of at most 40 characters,
which leaves room for the suffixes within the 63-character label limit. Everything is refused in words that say what
is wrong, never by an engine's raw message.
"""

from __future__ import annotations

import re

from mlops_desktop.errors import UsageError
from mlops_desktop.registry.names import ModelRef, parse_ref

DEPLOYMENT_NAME_MAX = 40
TARGET_NAME_MAX = 40
_LABEL = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,252}$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?$", re.IGNORECASE)
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
RESERVED_ENV_PREFIX = "MLOPS_"  # our own settings inside the containers; the user's env may not override them
NAME_RULES = ("lowercase letters, digits and '-', starting with a letter and ending with a letter or digit, no '--', "
              f"at most {DEPLOYMENT_NAME_MAX} characters (it becomes part of container, service and Kubernetes names)")


def _label_problem(text: str, limit: int, pattern: re.Pattern[str] = _LABEL) -> str:
    if not text:
        return "it is empty"
    if len(text) > limit:
        return f"it is {len(text)} characters long (at most {limit})"
    if not pattern.fullmatch(text):
        bad = sorted({c for c in text if not ((c.islower() and c.isascii()) or (c.isdigit() and c.isascii())
                                               or c == "-")})
        if bad:
            return "it contains " + ", ".join(repr(c) for c in bad[:5])
        if pattern is _LABEL and not text[0].isalpha():
            return "it must start with a letter"
        if not text[0].isalnum():
            return "it must start with a letter or digit"
        return "it must end with a letter or digit"
    if "--" in text:
        return "it contains '--'"
    return ""


def suggest(text: str, limit: int = DEPLOYMENT_NAME_MAX) -> str:
    """A valid name close to `text` ('Churn API v2' -> 'churn-api-v2'), or '' when none can be made."""
    out = re.sub(r"[^a-z0-9]+", "-", (text if isinstance(text, str) else "").lower()).strip("-")
    out = re.sub(r"-{2,}", "-", out)
    out = re.sub(r"^[^a-z]+", "", out)[:limit].rstrip("-")
    return out if out and not _label_problem(out, limit) else ""


def _check_label(kind: str, name: object, limit: int) -> str:
    text = name if isinstance(name, str) else ""
    problem = _label_problem(text, limit) if isinstance(name, str) else "it is not text"
    if problem:
        hint = "use " + NAME_RULES.replace(str(DEPLOYMENT_NAME_MAX), str(limit))
        better = suggest(text, limit)
        raise UsageError(f"invalid {kind} name {name!r}: {problem}",
                         hint=hint + (f", e.g. {better!r}" if better else ""))
    return text


def check_deployment_name(name: object) -> str:
    return _check_label("deployment", name, DEPLOYMENT_NAME_MAX)


def check_target_name(name: object) -> str:
    return _check_label("target", name, TARGET_NAME_MAX)


def check_namespace(namespace: object) -> str:
    """A Kubernetes namespace: a DNS-1123 label of at most 63 characters."""
    text = namespace if isinstance(namespace, str) else ""
    problem = _label_problem(text, 63, _DNS1123_LABEL) if isinstance(namespace, str) else "it is not text"
    if problem:
        raise UsageError(f"invalid namespace {namespace!r}: {problem}",
                         hint="lowercase letters, digits and '-', at most 63 characters")
    return text


def check_context(context: object) -> str:
    """A kubeconfig context name (it is looked up in the kubeconfig, never put into a command line)."""
    text = context if isinstance(context, str) else ""
    if not _CONTEXT.fullmatch(text):
        raise UsageError(f"invalid kubeconfig context {context!r}",
                         hint="letters, digits and . _ : @ / -, as `kubectl config get-contexts` lists them")
    return text


def check_model_ref(ref: object) -> ModelRef:
    """MODEL/VERSION, MODEL@ALIAS or MODEL; a reference that would not fit an object name is refused in words."""
    if not isinstance(ref, str) or not ref.strip():
        raise UsageError(f"invalid model reference {ref!r}", hint="write MODEL/VERSION or MODEL@ALIAS, e.g. churn/3")
    if any(not c.isprintable() or c.isspace() for c in ref.strip()):
        raise UsageError(f"invalid model reference {ref!r}: it contains spaces or control characters",
                         hint="write MODEL/VERSION or MODEL@ALIAS, e.g. churn/3")
    return parse_ref(ref.strip())


def check_env(env: dict[str, str] | None) -> dict[str, str]:
    """Environment for the model containers: POSIX names, text values, none of our own MLOPS_* settings."""
    out: dict[str, str] = {}
    for key, value in (env or {}).items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise UsageError(f"invalid environment variable name {key!r}",
                             hint="letters, digits and '_', not starting with a digit")
        if key.startswith(RESERVED_ENV_PREFIX):
            raise UsageError(f"environment variable {key} is reserved (MLOPS_* configure the model server)")
        if not isinstance(value, str) or "\x00" in value:
            raise UsageError(f"the value of environment variable {key} must be text without NUL characters")
        out[key] = value
    return out


def parse_env(items: list[str] | None) -> dict[str, str]:
    """`KEY=VALUE` items (CLI --env) into a checked mapping."""
    env: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r} is not KEY=VALUE")
        env[key] = value
    return check_env(env)


def check_replicas(replicas: object, *, allow_zero: bool = True) -> int:
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < (0 if allow_zero else 1) \
            or replicas > 1000:
        low = 0 if allow_zero else 1
        raise UsageError(f"invalid replica count {replicas!r}", hint=f"a whole number from {low} to 1000")
    return replicas


def check_port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise UsageError(f"invalid port {port!r}", hint="a number from 1 to 65535")
    return port


def check_cpu(cpu: object) -> float | None:
    """CPUs per replica (0.5 = half a core), or None for no limit."""
    if cpu is None:
        return None
    try:
        value = float(cpu)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"invalid CPU limit {cpu!r}", hint="a number of cores, e.g. 0.5 or 2") from None
    if not 0.01 <= value <= 1024:
        raise UsageError(f"invalid CPU limit {cpu!r}", hint="between 0.01 and 1024 cores")
    return value


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mi": 1024**2, "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
          "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4}


def check_memory(memory: object) -> int | None:
    """Memory per replica in bytes, from a number of bytes or text like '512Mi', '1g', '256MB'; None: no limit."""
    if memory is None or memory == "":
        return None
    if isinstance(memory, int) and not isinstance(memory, bool):
        value = memory
    else:
        match = _MEMORY.fullmatch(str(memory).strip())
        if not match:
            raise UsageError(f"invalid memory limit {memory!r}", hint="e.g. 512Mi, 1Gi, 256MB or a number of bytes")
        value = int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])
    if not 4 * 1024**2 <= value <= 16 * 1024**4:
        raise UsageError(f"invalid memory limit {memory!r}", hint="at least 4 MiB (Docker's minimum)")
    return value


def check_gpus(gpus: object) -> int:
    if not isinstance(gpus, int) or isinstance(gpus, bool) or not 0 <= gpus <= 64:
        raise UsageError(f"invalid GPU count {gpus!r}", hint="a whole number from 0 to 64")
    return gpus


def check_header(header: object) -> str:
    if not isinstance(header, str) or not _HEADER.fullmatch(header):
        raise UsageError(f"invalid sticky header {header!r}", hint="an HTTP header name such as x-user-id")
    return header.lower()


def check_reason(reason: object) -> str:
    text = reason if isinstance(reason, str) else ""
    if len(text) > 2000 or "\x00" in text:
        raise UsageError("the reason is too long (at most 2,000 characters) or holds NUL characters")
    return text.strip()


def arm_name(version: int | str) -> str:
    """The router arm (and per-version workload suffix) of a model version: 'v3'."""
    return f"v{int(version)}"


def workload_name(deployment: str, arm: str | None = None) -> str:
    """The engine object name of a deployment's primary workload, of one arm, or of its router ('router')."""
    return deployment if arm is None else f"{deployment}-{arm}"
