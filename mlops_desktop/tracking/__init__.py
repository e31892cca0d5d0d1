"""Experiment tracking: the store (runs, params, metrics, artifacts) and the API that training code calls.

    import mlops_desktop.tracking as mt
    with mt.start_run(experiment="churn", name="baseline"):
        mt.log_params({"lr": 0.01})
        for step in range(n):
            mt.log_metric("loss", loss, step=step)   # floats, numpy numbers or 0-d torch tensors (no host sync)
"""

from mlops_desktop.tracking.client import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    log_artifact,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
    start_run,
)

__all__ = ["ActiveRun", "active_run", "end_run", "flush", "log_artifact", "log_input", "log_metric", "log_metrics",
           "log_param", "log_params", "set_tag", "set_tags", "start_run"]
