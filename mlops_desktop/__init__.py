"""MLOps Desktop: from raw data to a monitored deployment, on a workstation."""

__version__ = "0.1.0"
