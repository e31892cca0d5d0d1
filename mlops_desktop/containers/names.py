"""Image references, tags and registry addresses checked before they reach the Docker engine (no injection, no
surprises): the grammar of docker/distribution's reference package, stricter where it costs nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlops_desktop.errors import UsageError

# docker/distribution reference grammar (reference/regexp.go), lowercase path components only
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
REGISTRY_RE = re.compile(rf"^{_HOST}$")
REPOSITORY_RE = re.compile(rf"^(?:(?P<host>{_HOST})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)$")
TAG_RE = re.compile(rf"^{_TAG}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
IMAGE_ID_RE = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")
MAX_REFERENCE = 255


@dataclass(frozen=True)
class ImageName:
    """`[REGISTRY/]PATH:TAG`, parsed and checked."""

    registry: str  # "" when the name has no registry part
    path: str
    tag: str

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}" if self.registry else self.path

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"

    def in_registry(self, registry: str) -> ImageName:
        """The same path and tag under `registry` (a name already in that registry is kept)."""
        return ImageName(check_registry(registry), self.path, self.tag)


def _split_registry(repo: str) -> tuple[str, str]:
    first, sep, rest = repo.partition("/")
    # as docker does: the first component is a registry when it has a '.' or ':' or is localhost
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", repo


def parse_image_name(text: str, *, default_tag: str | None = None, what: str = "image name") -> ImageName:
    """Parse `[REGISTRY/]PATH[:TAG]`; errors say which part is wrong. No digests here (`@sha256:` is for pulls)."""
    raw = text if isinstance(text, str) else ""
    if not raw or len(raw) > MAX_REFERENCE:
        raise UsageError(f"invalid {what} {text!r}: it must be 1-{MAX_REFERENCE} characters")
    if "@" in raw:
        raise UsageError(f"invalid {what} {text!r}: a digest (@sha256:...) names a pushed image; give a tag",
                         hint="e.g. mlops-desktop/churn:v3")
    repo, tag = raw, default_tag
    head, sep, last = raw.rpartition(":")
    if sep and "/" not in last:  # a ':' after the last '/' separates the tag (not a registry port)
        repo, tag = head, last
    if tag is None:
        raise UsageError(f"invalid {what} {text!r}: it has no tag", hint="write REPOSITORY:TAG")
    if not TAG_RE.match(tag):
        raise UsageError(f"invalid {what} {text!r}: the tag {tag!r} must be letters, digits, '_', '.', '-' "
                         "(at most 128, not starting with '.' or '-')")
    registry, path = _split_registry(repo)
    if registry and not REGISTRY_RE.match(registry):
        raise UsageError(f"invalid {what} {text!r}: {registry!r} is not a registry address (HOST[:PORT])")
    if not REPOSITORY_RE.match(path):
        raise UsageError(f"invalid {what} {text!r}: the repository {path!r} must be lowercase letters, digits and "
                         "separators ('.', '_', '-', '/'), each part starting and ending with a letter or digit")
    return ImageName(registry, path, tag)


def check_registry(registry: str) -> str:
    """A registry address `HOST[:PORT]` (no scheme, no path: those belong to Docker's configuration)."""
    text = (registry or "").strip() if isinstance(registry, str) else ""
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            raise UsageError(f"invalid registry {registry!r}: give HOST[:PORT] without {scheme}",
                             hint="whether a registry is plain http is dockerd's setting (insecure-registries); "
                                  "127.0.0.0/8 is allowed by default")
    if not text or not REGISTRY_RE.match(text):
        raise UsageError(f"invalid registry {registry!r}: expected HOST[:PORT], e.g. 127.0.0.1:5000 or "
                         "registry.example.com")
    return text


def image_name_for(model: str, version: int, bundle_hash: str, repository: str = "mlops-desktop") -> ImageName:
    """The default name of a model version's image: mlops-desktop/MODEL:vVERSION-HASH12 (unique per bundle)."""
    return parse_image_name(f"{repository}/{model}:v{version}-{bundle_hash[:12]}")
