"""Model images on the real Docker engine and registry: build, smoke test (the image's answers against the
in-process model's), push (and a push with wrong credentials), cache reuse after a model change, cancel, a bad base,
SIGTERM handling."""

from __future__ import annotations

import threading

import pytest

from mlops_desktop import containers
from mlops_desktop.containers.names import parse_image_name
from mlops_desktop.errors import UsageError
from tests.containers.conftest import register_churn

pytestmark = pytest.mark.docker


def test_build_smoke_push_records_everything(ws, churn_version, build, docker_engine, docker_scope):
    lines: list[str] = []
    record = build(churn_version.ref, on_log=lines.append)
    assert record.model == "churn" and record.version == churn_version.version and record.kind == "model"
    assert record.image_id.startswith("sha256:") and record.size_bytes > 100e6 and record.build_seconds > 0
    assert record.digest == "" and record.pushed_to == "" and record.smoke is None
    assert any(line.startswith("Step 1/") for line in lines), "the build log is streamed"
    attrs = docker_engine.client().images.get(record.tag).attrs["Config"]
    labels = attrs["Labels"]
    assert labels["org.mlops-desktop.model"] == "churn" and labels["org.mlops-desktop.kind"] == "model"
    assert labels["org.mlops-desktop.version"] == str(churn_version.version)
    assert labels["org.mlops-desktop.bundle-hash"] == churn_version.bundle_hash
    assert attrs["User"] == "10001:10001" and "8080/tcp" in attrs["ExposedPorts"]
    assert attrs["Entrypoint"] == ["/usr/bin/tini", "--"] and not attrs.get("Healthcheck")
    assert "--bundle-hash" in attrs["Cmd"] and churn_version.bundle_hash in attrs["Cmd"]

    smoke = containers.smoke_test(ws, record.tag, churn_version.ref, docker_host=docker_engine.host,
                                  labels=docker_scope.labels)
    assert smoke.passed, smoke.to_dict()
    assert smoke.mismatches == 0 and smoke.example_rows > 0 and smoke.sample_rows == 200
    assert smoke.sample_source == "lake:churn_data@1" and smoke.rows == smoke.example_rows + 200
    assert 0 < smoke.p50_ms <= smoke.p99_ms and smoke.requests == 200
    # SIGTERM: tini forwards it, the server drains and exits 0, well before the 20 s kill
    assert smoke.exit_code == 0 and smoke.stop_seconds < 15
    leftovers = docker_engine.client().containers.list(all=True, filters={"label": "org.mlops-desktop.kind=smoke-test"})
    assert not [c for c in leftovers if c.labels.get("mlops-test.scope") == docker_scope.id]

    pushed = containers.push_image(ws, record.tag, docker_engine.registry, docker_host=docker_engine.host,
                                   auth_config=docker_engine.auth_config)
    repo = parse_image_name(record.tag).path
    assert pushed.pushed_to == docker_engine.registry
    assert pushed.digest.startswith(f"{docker_engine.registry}/{repo}@sha256:")
    assert docker_engine.registry_tags(repo) == ["1"]
    again = containers.get_image(ws, pushed.digest)
    assert again.id == record.id and again.smoke and again.smoke["passed"] and again.digest == pushed.digest
    assert [r.tag for r in containers.images_for(ws, "churn", churn_version.version)] == [record.tag]


def test_push_with_wrong_credentials_fails_loudly_without_the_secret(ws, churn_version, build, docker_engine):
    record = build(churn_version.ref)
    secret = "not-the-password-7f3a9"
    with pytest.raises(containers.PushFailed) as err:
        containers.push_image(ws, record.tag, docker_engine.registry, docker_host=docker_engine.host,
                              auth_config={"username": docker_engine.registry_user, "password": secret})
    text = str(err.value)
    assert "unauthorized" in text or "authentication required" in text
    assert secret not in text and docker_engine.registry_password not in text
    assert containers.get_image(ws, record.tag).digest == ""  # nothing recorded as pushed


def test_a_new_model_version_rebuilds_only_the_model_layers(ws, tmp_path, churn_version, build):
    first = build(churn_version.ref, tag="1")
    second_version = register_churn(ws, tmp_path, rows=500, seed=1)
    assert second_version.bundle_hash != churn_version.bundle_hash
    lines: list[str] = []
    second = build(second_version.ref, tag="2", on_log=lines.append)
    assert second.image_id != first.image_id and second.deps_key == first.deps_key
    # base, packages and server code come from the cache: only the model, its labels and the command are new
    # (FROM is no step of its own in the cache count)
    assert second.steps - 1 - second.cached_steps == 3, lines
    text = "\n".join(lines)
    copy_app = text.index("COPY app/")
    assert text[copy_app:].splitlines()[1].strip() == "---> Using cache"
    assert "from the cached image" in text


def test_a_cancelled_build_leaves_no_tag(ws, churn_version, build, docker_engine):
    cancel = threading.Event()

    def on_log(line: str) -> None:
        if line.startswith("Step 2/"):
            cancel.set()

    with pytest.raises(containers.BuildCancelled, match="nothing was tagged"):
        build(churn_version.ref, what="cancelled", on_log=on_log, cancel=cancel)
    tags = [t for image in docker_engine.client().images.list() for t in image.tags]
    assert not [t for t in tags if "cancelled" in t]
    assert containers.images_for(ws, "churn") == []


def test_a_bad_base_image_fails_in_words(ws, churn_version, build, docker_engine):
    with pytest.raises(containers.BuildFailed) as err:
        build(churn_version.ref, what="badbase", base="mlt-no-such-base/python:1")
    text = str(err.value)
    assert "mlt-no-such-base/python:1" in text and "cannot be pulled" in text and "Traceback" not in text
    assert "base-image.sh" in text  # the hint says how to make one
    assert not [t for image in docker_engine.client().images.list() for t in image.tags if "badbase" in t]


def test_the_model_image_also_runs_the_router(ws, churn_version, build, docker_engine, docker_scope):
    """One image family: the same image with the router module as its command fronts a model container."""
    import json
    import urllib.request

    from tests.engines.common import wait_until

    record = build(churn_version.ref)
    client = docker_engine.client()
    model = client.containers.run(record.tag, detach=True, name=docker_scope.name("model"),
                                  labels=docker_scope.labels)
    wait_until(lambda: model.reload() or model.attrs["NetworkSettings"]["IPAddress"], 30, "the model's address")
    backend = f"{model.attrs['NetworkSettings']['IPAddress']}:8080"
    config = {"name": "ab", "host": "0.0.0.0", "port": 8090, "insecure": True,
              "arms": [{"name": "v1", "weight": 1, "backends": [backend]}]}
    router = client.containers.run(record.tag, ["python3", "-m", "mlops_desktop.serving.router"],
                                   detach=True, name=docker_scope.name("router"), labels=docker_scope.labels,
                                   environment={"MLOPS_ROUTER_CONFIG": json.dumps(config)},
                                   ports={"8090/tcp": ("127.0.0.1", None)})

    def port() -> int:
        router.reload()
        bindings = router.attrs["NetworkSettings"]["Ports"].get("8090/tcp") or []
        return int(bindings[0]["HostPort"]) if bindings else 0

    wait_until(port, 30, "the router's published port")
    body = json.dumps({"dataframe_split": {"columns": ["tenure", "spend", "plan", "calls"],
                                           "data": [[10.0, 40.0, "basic", 3], [30.0, 50.0, "pro", 0]]}}).encode()

    def answer() -> dict | None:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port()}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                return {"doc": json.loads(r.read()), "arm": r.headers.get("x-mlops-arm")}
        except OSError:
            return None

    from mlops_desktop import registry
    from mlops_desktop.serving.payloads import RequestSchema, parse_mlflow

    columns = parse_mlflow(body, "application/json", RequestSchema(churn_version.signature)).column_arrays()
    expected = registry.load_predictor(ws, churn_version, prefer_onnx=False).predict(columns)["prediction"].tolist()
    got = wait_until(answer, 120, "the router to answer through the model container")
    assert got["doc"]["predictions"] == expected, (got, router.logs(tail=20))
    router.stop(timeout=20)
    router.reload()
    assert router.attrs["State"]["ExitCode"] == 0


def test_the_router_image_has_the_server_code_and_no_model(ws, docker_engine, docker_scope, deps_repository):
    import json

    record = containers.build_router_image(ws, docker_host=docker_engine.host, base=docker_engine.base_image,
                                           tag=f"{docker_scope.name('router')}:1", labels=docker_scope.labels,
                                           deps_repository=deps_repository)
    assert record.kind == "router" and record.version is None and record.size_bytes > 0
    attrs = docker_engine.client().images.get(record.tag).attrs["Config"]
    assert attrs["Cmd"] == ["python3", "-m", "mlops_desktop.serving.router"]
    assert attrs["Labels"]["org.mlops-desktop.kind"] == "router" and attrs["User"] == "10001:10001"
    config = {"name": "ab", "host": "0.0.0.0", "port": 8090, "insecure": True,
              "arms": [{"name": "v1", "weight": 1, "backends": ["10.0.0.5:8080"]}]}
    out = docker_engine.client().containers.run(
        record.tag, ["python3", "-m", "mlops_desktop.serving.router", "--check"], remove=True,
        environment={"MLOPS_ROUTER_CONFIG": json.dumps(config)}, labels=docker_scope.labels,
        name=docker_scope.name("check"))
    assert json.loads(out)["name"] == "ab"
    files = docker_engine.client().containers.run(record.tag, ["python3", "-c", "import os; print(os.path.exists("
                                                  "'/opt/model'))"], remove=True, labels=docker_scope.labels)
    assert files.strip() == b"False"
    assert containers.get_image(ws, record.tag).kind == "router"


def test_a_pinned_version_missing_here_comes_from_a_downloaded_wheel(ws, tmp_path, monkeypatch, build,
                                                                     docker_engine, docker_scope):
    """The model was trained with six 1.16.0 (this machine has another): the image gets exactly 1.16.0, from a
    wheel `pip download` fetched (PyPI or the configured index), not the installed copy."""
    from importlib import metadata

    from mlops_desktop.registry import environment

    if metadata.version("six") == "1.16.0":
        pytest.skip("this machine has six 1.16.0 installed: nothing to download")
    original = environment.capture

    def trained_with_old_six(modules):
        env = original(modules)
        env["packages"] = {**env["packages"], "six": "1.16.0"}
        return env

    monkeypatch.setattr(environment, "capture", trained_with_old_six)
    mv = register_churn(ws, tmp_path, seed=3)
    lines: list[str] = []
    try:
        record = build(mv.ref, what="oldsix", on_log=lines.append)
    except UsageError as exc:  # no package index from here: say so rather than fail obscurely
        if "could not download" not in str(exc):
            raise
        pytest.skip(f"no package index reachable: {exc}")
    assert any("six==1.16.0 is not installed here; downloading" in line for line in lines)
    assert record.options["packages"]["six"] == "1.16.0"
    out = docker_engine.client().containers.run(record.tag, ["python3", "-c", "import six; print(six.__version__)"],
                                                remove=True, labels=docker_scope.labels)
    assert out.strip() == b"1.16.0"


def test_the_image_logs_predictions_without_pyarrow_and_the_desktop_reads_them(ws, churn_version, build,
                                                                                 docker_engine, docker_scope):
    """The image carries no pyarrow; its server logs column-lines segments, which the desktop's collector pulls
    over HTTP and stores as Parquet: every request, row and prediction is there, with the in-process answers."""
    import json
    import urllib.request

    from mlops_desktop import registry
    from mlops_desktop.monitoring.predictions import cache_dir, pull_segments, read_window
    from mlops_desktop.monitoring.targets import ScrapeTarget
    from mlops_desktop.serving.payloads import RequestSchema, parse_mlflow
    from tests.engines.common import wait_until

    record = build(churn_version.ref)
    client = docker_engine.client()
    found = client.containers.run(record.tag, ["python3", "-c", "import importlib.util as u; "
                                               "print(u.find_spec('pyarrow'), u.find_spec('orjson') is not None)"],
                                  remove=True, labels=docker_scope.labels, name=docker_scope.name("probe"))
    assert found.strip() == b"None True"
    cmd = client.images.get(record.tag).attrs["Config"]["Cmd"] + ["--segment-age", "1"]
    server = client.containers.run(record.tag, cmd, detach=True, name=docker_scope.name("logged"),
                                   labels=docker_scope.labels, ports={"8080/tcp": ("127.0.0.1", None)})

    def url() -> str:
        server.reload()
        bindings = server.attrs["NetworkSettings"]["Ports"].get("8080/tcp") or []
        return f"http://127.0.0.1:{bindings[0]['HostPort']}" if bindings else ""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url() + "/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (OSError, ValueError):
            return False

    wait_until(ready, 120, "the model container to be ready")
    rows = [[10.0 + i, 40.0, "basic" if i % 2 else "pro", i % 4] for i in range(6)]
    body = json.dumps({"dataframe_split": {"columns": ["tenure", "spend", "plan", "calls"], "data": rows}}).encode()
    for i in range(20):
        req = urllib.request.Request(url() + "/invocations", data=body,
                                     headers={"Content-Type": "application/json", "X-Request-ID": f"req-{i}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    target = ScrapeTarget(url=url(), role="replica", model="churn")

    def pulled() -> int:
        pull_segments(ws, target)
        files = sorted(cache_dir(ws).rglob("*.parquet"))
        return read_window(files).height if files else 0

    wait_until(lambda: pulled() >= 120, 60, "the container's closed segments to be pulled")
    listing = json.loads(urllib.request.urlopen(url() + "/predictions/segments", timeout=5).read())  # noqa: S310
    assert listing["segments"] and all(s["name"].endswith(".jsonl.gz") for s in listing["segments"])
    frame = read_window(sorted(cache_dir(ws).rglob("*.parquet")))
    assert frame.height == 120 and frame["request_id"].n_unique() == 20
    assert set(frame["model"]) == {"churn"} and set(frame["version"]) == {str(churn_version.version)}
    columns = parse_mlflow(body, "application/json", RequestSchema(churn_version.signature)).column_arrays()
    expected = registry.load_predictor(ws, churn_version, prefer_onnx=False).predict(columns)["prediction"].tolist()
    one = frame.filter(frame["request_id"] == "req-3").sort("row")
    assert one["prediction"].to_list() == expected and one["tenure"].to_list() == [r[0] for r in rows]
    assert str(frame.schema["ts"]) == "Datetime(time_unit='us', time_zone='UTC')"
    server.stop(timeout=20)
