"""Errors of the execution capability: SSH hosts, host keys, jobs; each one names the host or job at fault."""

from __future__ import annotations

from mlops_desktop.errors import MlopsError, NotFoundError, UsageError


class HostNotFoundError(NotFoundError):
    """No host of that name in this workspace."""


class HostConfigError(UsageError):
    """A host definition (or ~/.ssh/config entry) that cannot be used."""


class SshError(MlopsError):
    """Anything that went wrong talking to an SSH host."""


class HostUnreachableError(SshError):
    """The host did not answer (refused, timed out, name unknown)."""


class SshAuthError(SshError):
    """The host refused our keys (no password is ever tried or stored)."""


class HostKeyUnknownError(SshError):
    """The host presented a key that no known_hosts file lists; it must be accepted explicitly."""

    def __init__(self, message: str, *, fingerprint: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.fingerprint = fingerprint


class HostKeyChangedError(SshError):
    """The host presented a key different from the one recorded: possibly a man-in-the-middle attack."""


class JobNotFoundError(NotFoundError):
    """No job with that id."""


class JobError(MlopsError):
    """A job cannot be submitted, started or controlled."""
