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

MLOPS_SERVE_TOKEN = EnvVar("MLOPS_SERVE_TOKEN", "Bearer token the model server requires (instead of --token-file).")
MLOPS_ADMIN_TOKEN = EnvVar("MLOPS_ADMIN_TOKEN", "Bearer token of the admin API of the model server and the A/B router "
                                                "(live threshold, weights, shadow, kill switch).")
MLOPS_ROUTER_CONFIG = EnvVar("MLOPS_ROUTER_CONFIG", "The A/B router's config: a file path, or the JSON document itself.")
MLOPS_ROUTER_BACKEND_TOKEN = EnvVar("MLOPS_ROUTER_BACKEND_TOKEN", "Bearer token the A/B router sends to its backends.")

ALL = [MLOPS_DESKTOP_HOME, MLOPS_RUN_ID, MLOPS_EXPERIMENT, MLOPS_SPOOL, MLOPS_FLUSH_INTERVAL, MLOPS_SERVE_TOKEN]

# Read by the MLflow-compatible API and the MLflow plugin (mlops_desktop.tracking.mlflow_api, .mlflow_plugin).
MLFLOW_TRACKING_URI = EnvVar("MLFLOW_TRACKING_URI", "Used by `mlops_desktop.tracking` only when it is an "
                             "mlops-desktop:///PATH URI; the mlflow package reads it to pick our store plugin.")
MLFLOW_EXPERIMENT_NAME = EnvVar("MLFLOW_EXPERIMENT_NAME", "Experiment name for runs started without one "
                                "(after $MLOPS_EXPERIMENT), as in MLflow.")
MLFLOW_EXPERIMENT_ID = EnvVar("MLFLOW_EXPERIMENT_ID", "Experiment id for runs started without one "
                              "(after $MLFLOW_EXPERIMENT_NAME), as in MLflow.")
ALL += [MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, MLFLOW_EXPERIMENT_ID]
ALL += [MLOPS_ADMIN_TOKEN, MLOPS_ROUTER_CONFIG, MLOPS_ROUTER_BACKEND_TOKEN]
