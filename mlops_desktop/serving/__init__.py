"""Model server: an ASGI app (MLflow /invocations, Open Inference Protocol v2, health, metrics) with adaptive
batching and a prediction log, and managed local server processes.

Public surface: `create_app`, `ServedModel`, `ServeConfig` (imported lazily: this package loads no heavy library).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "ServedModel", "ServeConfig", "BatchConfig", "LogConfig"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "ServedModel"):
        from mlops_desktop.serving import app

        return getattr(app, name)
    if name in ("ServeConfig", "BatchConfig", "LogConfig"):
        from mlops_desktop.serving import config

        return getattr(config, name)
    raise AttributeError(name)
