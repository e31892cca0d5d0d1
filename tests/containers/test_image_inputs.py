"""What is refused before anything reaches the Docker engine: hostile names, bad references, an engine that is not
there; and the generated Dockerfile's shape (layer order, non-root user, quoting)."""

from __future__ import annotations

import json

import pytest

from mlops_desktop import containers
from mlops_desktop.containers import deps, dockerfile
from mlops_desktop.containers.names import check_registry, parse_image_name
from mlops_desktop.errors import UsageError


@pytest.mark.parametrize("tag", ["Bad/Name:1", "churn:1;rm -rf /", "churn:$(id)", "churn:-x", "churn", "a" * 300,
                                 "churn:1\nRUN id", "churn@sha256:" + "0" * 64, "../x:1", "churn:1 --rm"])
def test_hostile_or_malformed_tags_are_refused(tag):
    with pytest.raises(UsageError, match="invalid tag"):
        parse_image_name(tag, what="tag")


def test_good_names_parse():
    name = parse_image_name("127.0.0.1:5000/team/churn:v3-abc")
    assert (name.registry, name.path, name.tag) == ("127.0.0.1:5000", "team/churn", "v3-abc")
    assert str(parse_image_name("churn:1").in_registry("reg.example.com")) == "reg.example.com/churn:1"
    assert parse_image_name("localhost/churn:1").registry == "localhost"


@pytest.mark.parametrize("registry", ["http://127.0.0.1:5000", "127.0.0.1:5000/path", "", "reg istry", "a;b"])
def test_bad_registries_are_refused(registry):
    with pytest.raises(UsageError, match="registry"):
        check_registry(registry)


@pytest.mark.parametrize("base", ["debian\nRUN curl evil", "x --network=host", "-x", "a b"])
def test_hostile_base_images_are_refused(ws, churn_version, base):
    with pytest.raises(UsageError, match="invalid base image"):
        containers.build_image(ws, churn_version.ref, base=base, docker_host="unix:///nonexistent/docker.sock")


def test_hostile_model_references_are_refused(ws):
    for ref in ("Churn Model", "churn;id", "../churn/1", "churn@Prod!"):
        with pytest.raises(UsageError):
            containers.build_image(ws, ref, docker_host="unix:///nonexistent/docker.sock")


def test_an_unreachable_engine_is_said_in_words(ws, churn_version, tmp_path):
    sock = f"unix://{tmp_path}/no-dockerd.sock"
    with pytest.raises(containers.EngineUnreachable) as err:
        containers.build_image(ws, churn_version.ref, docker_host=sock)
    text = str(err.value)
    assert sock in text and "no such socket" in text and "start dockerd" in text and "Traceback" not in text
    assert err.value.exit_code == 4
    assert containers.images_for(ws, "churn") == []


def test_the_dockerfile_is_layered_for_the_cache_and_runs_as_non_root():
    command = dockerfile.ServeCommand("ab" * 32, "churn", 3).argv()
    text = dockerfile.model_dockerfile("deps:1", command, {"org.mlops-desktop.model": 'x" \\n RUN id'},
                                       tini="/usr/bin/tini")
    steps = [line.split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert steps == ["FROM", "COPY", "COPY", "WORKDIR", "USER", "EXPOSE", "ENTRYPOINT", "COPY", "LABEL", "CMD"]
    lines = text.splitlines()
    assert lines.index("COPY app/ /opt/mlops/app/") < lines.index("COPY model/ /opt/model/")
    assert "USER 10001:10001" in lines and "HEALTHCHECK" not in text
    label = next(line for line in lines if line.startswith("LABEL"))
    assert label.count("\n") == 0 and json.dumps('x" \\n RUN id') in label  # quoted: no instruction can break out
    cmd = json.loads(lines[-1][len("CMD "):])
    assert cmd[:3] == ["python3", "-m", "mlops_desktop.serving"] and cmd[cmd.index("--bundle-hash") + 1] == "ab" * 32
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "8080"
    assert dockerfile.model_dockerfile("deps:1", dockerfile.router_argv(), {}, tini="", with_model=False) \
        .count("COPY model/") == 0


def test_package_closure_follows_requirements_and_refuses_other_versions():
    import numpy

    target = deps.TargetPython(".".join(__import__("platform").python_version_tuple()))
    found = deps.resolve({"numpy": numpy.__version__}, ("scikit-learn",), target)
    assert {"numpy", "scikit-learn", "scipy", "joblib", "threadpoolctl"} <= set(found.pins)
    assert found.pins["numpy"] == numpy.__version__
    rels = [rel for _, rel in found.files]
    assert any(rel.startswith("sklearn/") for rel in rels)
    assert not [rel for rel in rels if "/tests/" in rel or rel.endswith(".pyc")]
    with pytest.raises(UsageError, match="numpy==0.0.1"):
        deps.resolve({"numpy": "0.0.1"}, (), target)
    with pytest.raises(UsageError, match="not installed"):
        deps.resolve({"no-such-distribution-xyz": "1.0"}, (), target)
    with pytest.raises(UsageError, match="Python minor version"):
        deps.check_target(deps.TargetPython("3.9.2"))


def test_a_pinned_version_not_installed_is_fetched_as_a_wheel(tmp_path):
    """Refused without a fetcher (above); with pip's, the exact version's wheel provides files and requirements."""
    from importlib import metadata

    if metadata.version("six") == "1.16.0":
        pytest.skip("six 1.16.0 is installed here")
    target = deps.TargetPython("3.11.2")
    fetch = deps.pip_fetcher(tmp_path / "wheels", target)
    try:
        found = deps.resolve({"six": "1.16.0"}, (), target, fetch=fetch)
    except UsageError as exc:
        if "could not download" not in str(exc):
            raise
        pytest.skip(f"no package index reachable: {exc}")
    assert found.pins == {"six": "1.16.0"} and found.files == []
    assert ("six.py" in [rel for _w, _m, rel in found.wheel_files]) and deps.top_level_modules(found) == ["six"]
    again = deps.resolve({"six": "1.16.0"}, (), target, fetch=fetch)  # from the wheel cache this time
    assert again.wheel_files == found.wheel_files
    with pytest.raises(UsageError, match="could not download"):
        deps.resolve({"six": "0.0.0.404"}, (), target, fetch=fetch)
