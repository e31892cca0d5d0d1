"""Errors a user can act on, told apart from bugs; every one carries a plain message and an exit code."""

from __future__ import annotations


class MlopsError(Exception):
    """An error with a message meant for the user (no traceback is shown for these)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(MlopsError):
    """Bad arguments or input from the user."""

    exit_code = 2


class NotFoundError(MlopsError):
    """A run, experiment, dataset or host that does not exist."""

    exit_code = 3


class StoreError(MlopsError):
    """The workspace database cannot be used: the environment is at fault, not the code."""

    exit_code = 4


class StoreLockedError(StoreError):
    """Another process held a write lock for longer than the busy timeout."""


class StoreFullError(StoreError):
    """The disk (or a file size limit) is full."""


class StoreReadOnlyError(StoreError):
    """The workspace or its database file is not writable."""


class StoreCorruptError(StoreError):
    """The database file is not a SQLite database or is damaged."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer version of MLOps Desktop."""

    exit_code = 5


class Cancelled(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised inside a long-running core job when its progress object reports cancellation."""
