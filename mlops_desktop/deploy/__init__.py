"""Deployments: targets (local Docker, Swarm, Kubernetes), revisions, health-gated rollouts, rollback, A/B and shadow.

The public surface (what the CLI, the GUI, monitoring and promotion call):
    DeploymentService(ws) -> create, update, resume, rollback, revert, flag_alerting, last_stable, scale, restart,
        status, logs, history, events, split, shadow, endpoints, delete; add_target, targets, check_target
    models: Target, TargetCheck, DeploymentSpec, Revision, Status, ReplicaStatus, Endpoint, RolloutResult,
        Deployment, RouterPlan, ArmPlan;  backend.Backend (the protocol each target kind implements)
docker and kubernetes are imported only by the backends, when a target is used.
"""

from __future__ import annotations

from mlops_desktop.deploy.backend import Backend, EngineUnreachable, make_backend
from mlops_desktop.deploy.models import (
    ArmPlan,
    Deployment,
    DeploymentSpec,
    Endpoint,
    ReplicaStatus,
    Revision,
    RolloutResult,
    RouterPlan,
    Status,
    Target,
    TargetCheck,
)
from mlops_desktop.deploy.service import DeploymentService

__all__ = ["ArmPlan", "Backend", "Deployment", "DeploymentService", "DeploymentSpec", "Endpoint", "EngineUnreachable",
           "ReplicaStatus", "Revision", "RolloutResult", "RouterPlan", "Status", "Target", "TargetCheck",
           "make_backend"]
