"""Every environment variable MLOps Desktop reads, declared once, typed and documented."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvVar:
    name: str
    doc: str

    def get(self) -> str | None:
        value = os.environ.get(self.name)
        return value if value not in (None, "") else None

    def get_float(self, default: float) -> float:
        raw = self.get()
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            from mlops_desktop.errors import UsageError

            raise UsageError(f"{self.name}={raw!r} is not a number") from None


MLOPS_DESKTOP_HOME = EnvVar("MLOPS_DESKTOP_HOME", "Workspace directory; overrides the default in the user data dir.")
MLOPS_RUN_ID = EnvVar("MLOPS_RUN_ID", "Run id a launched job logs into (set by the job runner).")
MLOPS_EXPERIMENT = EnvVar("MLOPS_EXPERIMENT", "Experiment name for runs started without one.")
MLOPS_SPOOL = EnvVar("MLOPS_SPOOL", "If set, the tracking client appends to this spool file instead of the database.")
MLOPS_FLUSH_INTERVAL = EnvVar("MLOPS_FLUSH_INTERVAL", "Seconds between background flushes of logged values (default 0.1).")

ALL = [MLOPS_DESKTOP_HOME, MLOPS_RUN_ID, MLOPS_EXPERIMENT, MLOPS_SPOOL, MLOPS_FLUSH_INTERVAL]
