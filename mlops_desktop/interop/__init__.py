"""Interop with other tools: Neptune exports in, Kubeflow Pipelines out (no Qt; heavy libraries imported lazily)."""

from __future__ import annotations

__all__ = ["export_kfp", "import_neptune"]


def __getattr__(name: str):  # noqa: ANN202 - lazy re-exports keep `import mlops_desktop.interop` light
    if name == "import_neptune":
        from mlops_desktop.interop.neptune_import import import_neptune

        return import_neptune
    if name == "export_kfp":
        from mlops_desktop.interop.kfp_export import export_kfp

        return export_kfp
    raise AttributeError(name)
