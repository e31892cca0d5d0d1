"""The mlflow package's plugins for the `mlops-desktop` scheme: a tracking store and an artifact repository.

Registered as entry points in pyproject.toml (`mlflow.tracking_store`, `mlflow.artifact_repository`); only mlflow
imports these modules, so nothing here loads unless mlflow asks for an mlops-desktop URI.
"""
