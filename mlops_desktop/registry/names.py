"""Model and alias names, and references to a version (NAME, NAME/VERSION, NAME@ALIAS), checked in one place.

Model names end up in container, image, Swarm service and Kubernetes object names, so they follow the strictest of
those: a DNS-1035 label (what a Kubernetes Service name must be) — lowercase letters, digits and '-', starting with
a letter, ending with a letter or digit, no '--' (reserved for punycode 'xn--'), at most 40 characters so that
`mlops-<name>-v<version>-<alias>` still fits in the 63-character label limit. Aliases follow the same rules with at
most 20 characters; `latest` and `v<digits>` are refused because they read like versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlops_desktop.errors import UsageError

MODEL_NAME_MAX = 40
ALIAS_MAX = 20
_LABEL = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_VERSIONISH = re.compile(r"^v\d+$")
NAME_RULES = ("lowercase letters, digits and '-', starting with a letter and ending with a letter or digit, "
              f"no '--', at most {MODEL_NAME_MAX} characters (it becomes part of container and Kubernetes names)")


def check_model_name(name: str) -> str:
    text = name if isinstance(name, str) else ""
    problem = _label_problem(text, MODEL_NAME_MAX)
    if problem:
        raise UsageError(f"invalid model name {name!r}: {problem}", hint="use " + NAME_RULES
                         + (f", e.g. {suggest_name(text)!r}" if suggest_name(text) else ""))
    return text


def check_alias(alias: str) -> str:
    text = alias if isinstance(alias, str) else ""
    problem = _label_problem(text, ALIAS_MAX)
    if not problem and (text == "latest" or _VERSIONISH.fullmatch(text)):
        problem = "it reads like a version ('latest', 'v3'); aliases name a role such as champion or production"
    if problem:
        raise UsageError(f"invalid alias {alias!r}: {problem}",
                         hint=f"use lowercase letters, digits and '-', starting with a letter, at most {ALIAS_MAX} "
                              "characters")
    return text


def _label_problem(text: str, limit: int) -> str:
    if not text:
        return "it is empty"
    if len(text) > limit:
        return f"it is {len(text)} characters long (at most {limit})"
    if not _LABEL.fullmatch(text):
        bad = sorted({c for c in text if not (c.islower() and c.isascii() or c.isdigit() or c == "-")})
        if bad:
            return "it contains " + ", ".join(repr(c) for c in bad[:5])
        if not text[0].isalpha():
            return "it must start with a letter"
        return "it must end with a letter or digit"
    if "--" in text:
        return "it contains '--'"
    return ""


def suggest_name(text: str) -> str:
    """A valid name close to `text` ('Churn Model v2' -> 'churn-model-v2'), or '' if none can be made."""
    out = re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")
    out = re.sub(r"-{2,}", "-", out)
    out = re.sub(r"^[^a-z]+", "", out)[:MODEL_NAME_MAX].rstrip("-")
    return out if out and not _label_problem(out, MODEL_NAME_MAX) else ""


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of version / alias, or neither (the latest version)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(ref: str) -> ModelRef:
    """'churn' (latest), 'churn/3', 'churn@production'; errors say which part is wrong."""
    text = (ref or "").strip()
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(check_model_name(name), alias=check_alias(alias))
    if "/" in text:
        name, _, version = text.partition("/")
        check_model_name(name)
        if not version.isdigit() or int(version) < 1:
            raise UsageError(f"invalid model version in {ref!r}",
                             hint="write NAME/N with N a version number (1, 2, ...), or NAME@ALIAS")
        return ModelRef(name, version=int(version))
    return ModelRef(check_model_name(text))
