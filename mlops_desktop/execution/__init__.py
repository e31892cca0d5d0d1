"""Execution: hosts (this machine and SSH boxes) with their GPUs, and jobs run there with logs and metrics streamed back.

    from mlops_desktop.execution import Executor, JobRequest
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="gpu1", kind="recipe", recipe="sklearn", params={...}, gpus=1))
        ex.follow([job.id], on_log=lambda job, data: print(data.decode(), end=""))
"""

from mlops_desktop.execution.executor import Executor, JobRequest, TickResult
from mlops_desktop.execution.hosts import HostRegistry
from mlops_desktop.execution.models import ALL_STATES, FINAL_STATES, Gpu, Host, Inventory, Job

__all__ = ["ALL_STATES", "FINAL_STATES", "Executor", "Gpu", "Host", "HostRegistry", "Inventory", "Job", "JobRequest",
           "TickResult"]
