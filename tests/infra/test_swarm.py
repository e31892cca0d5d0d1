"""The single-node Swarm really works: a dnsrr service with host-mode ports, pulled from the registry with auth."""

from __future__ import annotations

import pytest
from apps import build, get_json, push, stream_errors
from engines.common import wait_until

pytestmark = pytest.mark.swarm


def running_tasks(client, service_name: str) -> list:
    return [c for c in client.containers.list(filters={"label": f"com.docker.swarm.service.name={service_name}"})
            if c.status == "running"]


def test_dnsrr_service_with_host_mode_ports_answers(swarm, docker_scope):
    c = docker_scope.client
    image = docker_scope.image("svc", "v1")
    build(c, swarm.base_image, image, docker_scope.labels)
    assert not stream_errors(push(c, image, swarm.auth_config))
    c.images.remove(image)  # the tasks must pull it from the registry, with the credentials the service carries
    c.login(username=swarm.registry_user, password=swarm.registry_password, registry=swarm.registry)
    net = c.networks.create(docker_scope.name("net"), driver="overlay", attachable=True, labels=docker_scope.labels)
    name = docker_scope.name("svc")
    from docker.types import EndpointSpec, ServiceMode

    # no IPVS in this kernel: VIPs and the ingress mesh do not route here, so DNS round robin + host-mode ports
    c.services.create(image, name=name, mode=ServiceMode("replicated", replicas=2), networks=[net.id],
                      endpoint_spec=EndpointSpec(mode="dnsrr", ports=[
                          {"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"}]),
                      labels=docker_scope.labels)
    tasks = wait_until(lambda: len(running_tasks(c, name)) == 2 and running_tasks(c, name), 120,
                       "2 running tasks of the service")
    hosts = set()
    for task in tasks:
        task.reload()
        port = task.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}/"
        answer = wait_until(lambda url=url: get_json(url), 30, f"task {task.name} at {url}")
        assert answer["version"] == "v1"
        hosts.add(answer["host"])
    assert len(hosts) == 2  # two replicas, each on its own host port

    # inside the overlay network the service name resolves to both tasks (DNS round robin) and answers
    probe = (f"import json, socket, urllib.request as u; ips = sorted(socket.gethostbyname_ex({name!r})[2]); "
             f"print(json.dumps([ips, json.load(u.urlopen('http://{name}:8080/', timeout=5))['version']]))")
    out = c.containers.run(swarm.base_image, ["python3", "-c", probe], network=net.name, remove=True,
                           labels=docker_scope.labels)
    import json

    ips, version = json.loads(out.decode())
    assert len(ips) == 2 and version == "v1"


def test_swarm_keeps_the_ingress_path_of_real_clusters(swarm):
    """Only the tests use dnsrr + host mode (no IPVS here: /proc/net/ip_vs is missing); the engine's ingress network
    and VIP support stay configured as on a real cluster, so deploy code can still choose VIP where IPVS exists."""
    info = swarm.client().info()
    assert info["Swarm"]["LocalNodeState"] == "active" and info["Swarm"]["ControlAvailable"]
    ingress = [n for n in swarm.client().networks.list(names=["ingress"]) if n.attrs.get("Ingress")]
    assert ingress, "the ingress network stays configured as on a real cluster"
