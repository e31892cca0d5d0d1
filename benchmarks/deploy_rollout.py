"""Rollout timings of our deploy targets against the engine's raw path in the same run: deploy -> healthy,
update -> healthy, and a bad rollout (a crashing image; a never-ready one with a 10 s deadline) -> rolled back.

Peer/floor: the same image started straight through the Docker SDK (`containers.run` with a published port, or
`services.create` with dnsrr + a host-mode port on the Swarm) and polled on /v2/health/ready until it answers:
what any tool must wait for at least. Ours adds the revision records, the audit events and the per-replica gate.
Images: the tiny server of tests/deploy/tiny (starts in ~0.1 s), so the figures are the orchestration's, not a
model's load time. Goal (issue 10): a bad rollout detected and rolled back <= 30 s after it starts (Flagger's
defaults need minutes: its analysis runs every 1 min, 5 failed checks before a rollback).
Needs an engine: $MLOPS_TEST_DOCKER_HOST (source the engines' env.sh) or $DOCKER_HOST. Last line: one JSON object.

    .venv/bin/python benchmarks/deploy_rollout.py [--rounds 3] [--targets local,swarm]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _wait_ready(url_host: str, port_of, timeout: float = 120.0) -> float:
    from mlops_desktop.deploy.dockerapi import probe

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        port = port_of()
        if port and probe(url_host, port)[0]:
            return time.monotonic() - start
        time.sleep(0.1)
    raise TimeoutError("the raw container did not become ready")


def raw_local(client, image: str, name: str) -> float:
    start = time.monotonic()
    c = client.containers.run(image, name=name, detach=True, ports={"8080/tcp": ("127.0.0.1", None)})

    def port():
        c.reload()
        b = (c.attrs["NetworkSettings"]["Ports"] or {}).get("8080/tcp") or []
        return int(b[0]["HostPort"]) if b else None
    try:
        _wait_ready("127.0.0.1", port)
        return time.monotonic() - start
    finally:
        c.remove(force=True)


def raw_swarm(client, image: str, name: str) -> float:
    from docker.types import EndpointSpec

    start = time.monotonic()
    svc = client.services.create(image, name=name, endpoint_spec=EndpointSpec(mode="dnsrr", ports={None: (
        8080, "tcp", "host")}))

    def port():
        for t in svc.tasks(filters={"desired-state": "running"}):
            for p in ((t.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []:
                if p.get("PublishedPort"):
                    return int(p["PublishedPort"])
        return None
    try:
        _wait_ready("127.0.0.1", port)
        return time.monotonic() - start
    finally:
        svc.remove()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", default="local,swarm")
    args = parser.parse_args()
    host = os.environ.get("MLOPS_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    base = os.environ.get("MLOPS_TEST_BASE_IMAGE", "mlops-desktop/python-base:bookworm")
    if not host:
        sys.exit("set MLOPS_TEST_DOCKER_HOST (source the engines' env.sh) or DOCKER_HOST")
    import docker

    from mlops_desktop.deploy import DeploymentService
    from mlops_desktop.deploy.images import GivenImages
    from mlops_desktop.workspace import Workspace
    from tests.deploy.conftest import register_versions
    from tests.deploy.tiny.images import build_tiny_images, remove_images

    client = docker.DockerClient(base_url=host, timeout=120)
    tag = f"mlb-deploy-{secrets.token_hex(3)}"
    images = build_tiny_images(client, base, prefix=tag)
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ws = Workspace.open(Path(tmp) / "ws")
            register_versions(ws, Path(tmp), count=2)
            good = GivenImages({("churn", 1): images["v1"], ("churn", 2): images["v2"]})
            svc = DeploymentService(ws, images=good)
            for kind in args.targets.split(","):
                svc.add_target(f"b-{kind}", kind, address=host)
                r = results.setdefault(kind, {k: [] for k in ("raw_start_s", "create_s", "update_s",
                                                             "crash_rolled_back_s", "unready_rolled_back_s")})
                for i in range(args.rounds):
                    name = f"{tag}-{kind[:2]}{i}"
                    raw = raw_local if kind == "local" else raw_swarm
                    r["raw_start_s"].append(raw(client, images["v1"], f"{name}-raw"))
                    svc.images = good
                    t0 = time.monotonic()
                    assert svc.create(name, f"b-{kind}", "churn/1", deadline_s=120).outcome == "healthy"
                    r["create_s"].append(time.monotonic() - t0)
                    t0 = time.monotonic()
                    assert svc.update(name, "churn/2", deadline_s=120).outcome == "healthy"
                    r["update_s"].append(time.monotonic() - t0)
                    svc.images = GivenImages({("churn", 1): images["crash"], ("churn", 2): images["v2"]})
                    t0 = time.monotonic()
                    assert svc.update(name, "churn/1", deadline_s=60).outcome == "rolled_back"
                    r["crash_rolled_back_s"].append(time.monotonic() - t0)
                    svc.images = GivenImages({("churn", 1): images["unready"], ("churn", 2): images["v2"]})
                    t0 = time.monotonic()
                    assert svc.update(name, "churn/1", deadline_s=10).outcome == "rolled_back"
                    r["unready_rolled_back_s"].append(time.monotonic() - t0)
                    svc.delete(name)
            ws.close()
    finally:
        remove_images(client, list(images.values()))
    summary = {}
    for kind, r in results.items():
        med = {k: statistics.median(v) for k, v in r.items() if v}
        med["create_vs_raw"] = med["create_s"] / med["raw_start_s"]
        med["update_vs_raw"] = med["update_s"] / med["raw_start_s"]
        med["crash_goal_met"] = med["crash_rolled_back_s"] <= 30
        med["unready_goal_met"] = med["unready_rolled_back_s"] <= 30
        summary[kind] = {"median": med, "rounds": r}
    print(json.dumps({"benchmark": "deploy_rollout", "rounds": args.rounds, "load_before": load_before,
                      "load_after": os.getloadavg(), "results": summary}))


if __name__ == "__main__":
    main()
