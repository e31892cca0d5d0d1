"""The workspace's schema: every capability's named migrations, composed in the order they were released.

`store/` only knows how to apply migrations; this module, above the capabilities, lists them. A new capability
appends its `MIGRATIONS` here (never reorders or edits a released one; migrations are matched by name).
"""

from __future__ import annotations

from mlops_desktop.store.migrations import Migration


def all_migrations() -> list[Migration]:
    from mlops_desktop.audit import schema as audit_schema
    from mlops_desktop.backtest import schema as backtest_schema
    from mlops_desktop.containers import schema as containers_schema
    from mlops_desktop.data import schema as data_schema
    from mlops_desktop.deploy import schema as deploy_schema
    from mlops_desktop.execution import schema as execution_schema
    from mlops_desktop.monitoring import schema as monitoring_schema
    from mlops_desktop.promotion import schema as promotion_schema
    from mlops_desktop.registry import schema as registry_schema
    from mlops_desktop.serving import schema as serving_schema
    from mlops_desktop.tracking import schema as tracking_schema

    migrations: list[Migration] = [
        *tracking_schema.MIGRATIONS,   # 0001
        *data_schema.MIGRATIONS,       # 0002
        *execution_schema.MIGRATIONS,  # 0003
        *audit_schema.MIGRATIONS,      # 0004
        *registry_schema.MIGRATIONS,   # 0005
        *serving_schema.MIGRATIONS,    # 0006
        *execution_schema.CONTACT_MIGRATIONS,  # 0007
        *tracking_schema.MLFLOW_MIGRATIONS,  # 0008_tracking_mlflow
        *containers_schema.MIGRATIONS,  # 0009_containers
        *deploy_schema.MIGRATIONS,      # 0010_deploy
        *monitoring_schema.MIGRATIONS,  # 0011_monitoring
        *promotion_schema.MIGRATIONS,   # 0012_promotion
        *backtest_schema.MIGRATIONS,    # 0013_backtest
    ]
    names = [m.name for m in migrations]
    if len(set(names)) != len(names):
        raise RuntimeError(f"duplicate migration names: {names}")
    return migrations


MIGRATIONS: list[Migration] = all_migrations()
SCHEMA_VERSION = len(MIGRATIONS)
