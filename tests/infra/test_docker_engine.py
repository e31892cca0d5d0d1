"""The Docker engine and registry really work: build FROM the base, run and answer, push with auth, refuse bad auth."""

from __future__ import annotations

import pytest
from apps import build, get_json, push, stream_errors
from engines.common import wait_until

pytestmark = pytest.mark.docker


def test_base_image_has_python_venv_pip_and_tini(docker_engine, docker_scope):
    out = docker_scope.client.containers.run(
        docker_engine.base_image, ["python3", "-c", "import sys, venv, ensurepip, ssl; print(sys.version_info[:2])"],
        remove=True, labels=docker_scope.labels)
    assert out.decode().strip() == "(3, 11)"
    entrypoint = docker_scope.client.images.get(docker_engine.base_image).attrs["Config"]["Entrypoint"]
    assert entrypoint == ["/usr/bin/tini", "--"]  # a Python PID 1 would ignore SIGTERM


def test_build_from_base_run_and_answer(docker_engine, docker_scope):
    tag = docker_scope.image("web", "v1")
    image = build(docker_scope.client, docker_engine.base_image, tag, docker_scope.labels)
    assert tag in image.tags
    box = docker_scope.client.containers.run(tag, detach=True, name=docker_scope.name("web"),
                                             ports={"8080/tcp": ("127.0.0.1", None)}, labels=docker_scope.labels)
    box.reload()
    port = box.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    answer = wait_until(lambda: get_json(f"http://127.0.0.1:{port}/hello"), 30, "the app to answer")
    assert answer["version"] == "v1" and answer["path"] == "/hello" and answer["host"] == box.id[:12]
    box.stop(timeout=5)  # tini forwards SIGTERM: the app exits at once, not after the 5 s timeout
    box.reload()
    assert box.attrs["State"]["ExitCode"] == 0


def test_push_with_auth_and_refuse_wrong_credentials(docker_engine, docker_scope):
    tag = docker_scope.image("pushed", "1")
    build(docker_scope.client, docker_engine.base_image, tag, docker_scope.labels)
    stream = push(docker_scope.client, tag, docker_engine.auth_config)
    assert not stream_errors(stream), stream[-3:]
    repo = tag.split("/", 1)[1].rsplit(":", 1)[0]
    assert docker_engine.registry_tags(repo) == ["1"]

    # the registry asks everybody for credentials, and refuses wrong ones
    assert docker_engine.registry_request("/v2/_catalog", auth=("nobody", "wrong"))[0] == 401
    bad_tag = docker_scope.image("refused", "1")
    docker_scope.client.images.get(tag).tag(bad_tag)
    bad = push(docker_scope.client, bad_tag, {"username": docker_engine.registry_user, "password": "wrong"})
    errors = stream_errors(bad)
    assert errors and any("unauthorized" in e.lower() or "authentication" in e.lower() for e in errors), bad[-3:]
    assert docker_engine.registry_tags(bad_tag.split("/", 1)[1].rsplit(":", 1)[0]) == []


def test_scope_cleanup_removes_what_the_test_made(docker_engine, docker_scope):
    from engines.docker_engine import DockerScope

    inner = DockerScope(docker_engine, "inner")
    tag = inner.image("x", "1")
    build(inner.client, docker_engine.base_image, tag, inner.labels)
    push(inner.client, tag, docker_engine.auth_config)
    inner.client.containers.create(tag, name=inner.name("c"))
    inner.client.networks.create(inner.name("n"))
    inner.client.volumes.create(inner.name("v"))
    assert inner.cleanup() == []
    c = docker_scope.client
    assert not [x for x in c.containers.list(all=True) if x.name.startswith(inner.prefix)]
    assert not [n for n in c.networks.list() if n.name.startswith(inner.prefix)]
    assert not [v for v in c.volumes.list() if v.name.startswith(inner.prefix)]
    assert not [i for i in c.images.list() if any(inner.prefix in t for t in i.tags)]
    assert docker_engine.registry_tags(tag.split("/", 1)[1].rsplit(":", 1)[0]) == []
