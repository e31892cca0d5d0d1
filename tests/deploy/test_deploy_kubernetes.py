"""The Kubernetes target against the real cluster (a real kubelet + containerd node, kube-proxy in iptables mode):
real model images from the test registry, pulled through a dockerconfigjson pull secret, answering through the
Service's NodePort. Rollouts are watched; a crashing image and a failing readiness probe are rolled back by us.
A/B and shadow: our router as its own Deployment in front of one Deployment per version, its weights changed live
through its admin API at the NodePort (no port-forward)."""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
from kube_helpers import KubeImages, build_images, predict, wait_answers
from kube_helpers import http as get_url

from mlops_desktop.deploy.backend import EngineUnreachable
from mlops_desktop.deploy.kubernetes import KubernetesBackend
from mlops_desktop.deploy.models import ArmPlan, DeploymentSpec, Revision, RouterPlan, Target
from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.serving.router_client import AdminClient

pytestmark = pytest.mark.kubernetes


@pytest.fixture(scope="session")
def kube_images(docker_engine, tmp_path_factory) -> KubeImages:
    pytest.importorskip("mlops_desktop.containers.images", reason="the containers capability builds the images")
    from engines.docker_engine import DockerScope

    from mlops_desktop.workspace import Workspace

    tmp = tmp_path_factory.mktemp("kube-images")
    scope = DockerScope(docker_engine, "kube-images")
    ws = Workspace.open(tmp / "ws")
    try:
        yield build_images(ws, docker_engine, scope, tmp)
    finally:
        ws.close()
        scope.cleanup()


@pytest.fixture
def backend(kube_cluster, kube_namespace, docker_engine) -> KubernetesBackend:
    secret = kube_namespace.add_pull_secret(docker_engine.registry, docker_engine.registry_user,
                                            docker_engine.registry_password)
    b = KubernetesBackend(Target("k", "kubernetes", namespace=kube_namespace.name,
                                 options={"kubeconfig": str(kube_cluster.kubeconfig), "pull_secret": secret,
                                          "node_address": kube_cluster.node_ip}))
    yield b
    b.close()


def spec(images: KubeImages, version: int, **kw) -> DeploymentSpec:
    base = {"name": "churn", "target": "k", "model_ref": f"{images.model}/{version}", "model": images.model,
            "version": version, "replicas": 1, "memory": 512 * 1024**2}
    base.update(kw)
    return DeploymentSpec(**base)


def rev(number: int, s: DeploymentSpec, image: str) -> Revision:
    return Revision(deployment=s.name, number=number, model=s.model, version=s.version, image=image, actor="test",
                    at=time.time(), reason="test", outcome="pending", spec=s)


def apply(backend, images, number, version, image=None, deadline=120.0, progress=None, **kw):
    s = spec(images, version, **kw)
    image = image or images.good[version]
    return backend.apply(s, rev(number, s, image), image, None, deadline, progress)


def url_of(backend, name="churn") -> str:
    eps = backend.endpoints(name)
    assert eps, f"no endpoint for {name}"
    return eps[0].url


def test_check_sees_the_server_version_and_the_ready_node(backend):
    result = backend.check()
    assert result.reachable, result.detail
    assert result.version.startswith("v1.20")
    assert result.nodes and all(n["state"] == "ready" for n in result.nodes)
    assert f"namespace {backend.namespace}" in result.detail


def test_deploy_update_scale_logs_restart_and_roll_back_to_an_older_revision(backend, kube_images):
    t0 = time.monotonic()
    seen = []
    r1 = apply(backend, kube_images, 1, 1, progress=lambda f, m: seen.append((f, m)), cpu=1.0)
    assert r1.outcome == "healthy", r1
    url = url_of(backend)
    # "healthy" means the URL this machine was given answers now: no retry loop (kube-proxy is waited for)
    status, _, doc = get_url(url + "/version", timeout=3)
    assert status == 200 and str(doc["version"]) == "1", doc
    assert any(url in m and "answers" in m for _, m in seen), seen
    first_answer = wait_answers(url, 1)
    deploy_s = time.monotonic() - t0
    status, headers, doc = predict(url)
    assert status == 200 and len(doc["predictions"]) == 2, doc
    assert seen and seen[-1][0] <= 1.0 and any("ready" in m for _, m in seen)

    pod = backend.pods("churn")[0]
    limits = pod.spec.containers[0].resources.limits
    assert limits["cpu"] == "1" and limits["memory"] in ("512Mi", str(512 * 1024**2)), limits
    assert pod.spec.image_pull_secrets[0].name == backend.target.option("pull_secret")
    assert pod.metadata.labels["mlops.version"] == "1" and pod.metadata.labels["mlops.revision"] == "1"

    t1 = time.monotonic()
    r2 = apply(backend, kube_images, 2, 2)
    assert r2.outcome == "healthy", r2
    wait_answers(url, 2)
    update_s = time.monotonic() - t1
    assert url_of(backend) == url  # the NodePort stays across updates

    backend.scale("churn", 3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and backend.status("churn").ready < 3:
        time.sleep(0.5)
    st = backend.status("churn")
    assert (st.desired, st.ready, st.state) == (3, 3, "healthy"), st
    # a v1 pod still inside its termination grace is listed, as stopped and terminating, never as ready
    live = [r for r in st.replicas if r.health != "stopped"]
    assert {r.version for r in live} == {"2"} and all(r.health == "ready" for r in live), st.replicas
    assert all(r.detail == "terminating" for r in st.replicas if r.health == "stopped"), st.replicas
    assert st.events, "the cluster's events of the deployment"

    lines = list(backend.logs("churn"))
    assert lines and all(" | " in line for line in lines)
    assert {line.split(" | ")[0] for line in lines} <= {r.id for r in st.replicas}

    stream = backend.logs("churn", follow=True)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(next(stream) for _ in range(1)), daemon=True)
    reader.start()
    for _ in range(5):
        predict(url)
    reader.join(30)
    assert got and not reader.is_alive(), "a followed log yields lines"
    stream.close()

    before = {r.id for r in st.replicas}
    backend.restart("churn")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = backend.status("churn")
        ids = {r.id for r in now.replicas if r.health == "ready"}
        if now.state == "healthy" and len(ids) == 3 and not ids & before:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"the restart did not replace every pod: {backend.status('churn')}")

    # back to revision 1's spec (not only the previous one): re-applied from the stored spec, gated again
    s1 = spec(kube_images, 1)
    r3 = backend.undo("churn", s1, rev(3, s1, kube_images.good[1]), kube_images.good[1], None, 60)
    assert r3.outcome == "healthy", r3
    wait_answers(url, 1)
    st = backend.status("churn")
    assert st.desired == 1 and {r.version for r in st.replicas if r.health == "ready"} == {"1"}

    backend.delete("churn")
    assert backend.status("churn").state == "missing"
    backend.delete("churn")  # idempotent
    print(f"\nkubernetes deploy->answering {deploy_s:.1f} s (first answer {first_answer:.1f} s after healthy), "
          f"update->answering {update_s:.1f} s")


def test_a_crashing_image_is_rolled_back_automatically_and_the_old_version_keeps_serving(backend, kube_images):
    first = apply(backend, kube_images, 1, 1, replicas=2)
    assert first.outcome == "healthy", (first.outcome, first.detail, first.events[-5:])
    url = url_of(backend)
    wait_answers(url, 1)
    answers: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                answers.append(predict(url)[0])
            except OSError:
                answers.append(0)
            time.sleep(0.1)

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    t0 = time.monotonic()
    result = apply(backend, kube_images, 2, 2, image=kube_images.crash, replicas=2, deadline=60)
    seconds = time.monotonic() - t0
    stop.set()
    asker.join(10)
    assert result.outcome == "rolled_back", result
    assert "CrashLoopBackOff" in result.detail or "restart" in result.detail, result.detail
    assert any("restored revision" in e for e in result.events), result.events
    assert seconds <= 30, f"a crashing rollout took {seconds:.1f} s to roll back (goal 30 s)"
    wait_answers(url, 1)
    assert answers and all(code == 200 for code in answers), f"the old version stopped answering: {answers}"
    st = backend.status("churn")
    assert st.state == "healthy" and st.ready == 2, st
    print(f"\nkubernetes crashing image -> rolled back in {seconds:.1f} s; {len(answers)} requests meanwhile, all 200")


def test_a_failing_readiness_probe_is_rolled_back_at_the_deadline(backend, kube_images):
    first = apply(backend, kube_images, 1, 1)
    assert first.outcome == "healthy", (first.outcome, first.detail, first.events[-5:])
    url = url_of(backend)
    t0 = time.monotonic()
    result = apply(backend, kube_images, 2, 2, image=kube_images.not_ready, deadline=15)
    seconds = time.monotonic() - t0
    assert result.outcome == "rolled_back", result
    assert "deadline" in result.detail and "readiness" in result.detail, result.detail
    assert 15 <= seconds <= 30, seconds
    wait_answers(url, 1)
    print(f"\nkubernetes never-ready image -> rolled back in {seconds:.1f} s (deadline 15 s)")


def test_a_first_deploy_that_never_works_is_failed_and_scaled_to_zero(backend, kube_images):
    result = apply(backend, kube_images, 1, 1, image=kube_images.crash, deadline=40)
    assert result.outcome == "failed", result
    st = backend.status("churn")
    assert st.state == "stopped" and st.desired == 0, st


def test_an_image_the_registry_refuses_fails_fast_with_the_reason(kube_cluster, kube_namespace, kube_images):
    # no pull secret: the registry answers 401, the pull is refused (never waits out the deadline)
    b = KubernetesBackend(Target("k", "kubernetes", namespace=kube_namespace.name,
                                 options={"kubeconfig": str(kube_cluster.kubeconfig),
                                          "node_address": kube_cluster.node_ip}))
    t0 = time.monotonic()
    result = apply(b, kube_images, 1, 1, deadline=120)
    assert result.outcome == "failed", result
    assert "ImagePull" in result.detail or "ErrImagePull" in result.detail, result.detail
    assert time.monotonic() - t0 < 60
    b.close()


def test_an_interrupted_rollout_resumes_when_run_again(backend, kube_images):
    def interrupt(fraction: float, message: str) -> None:
        if "Deployment churn" in message:
            raise Cancelled()

    with pytest.raises(Cancelled):
        apply(backend, kube_images, 1, 1, progress=interrupt)
    events: list[str] = []
    result = apply(backend, kube_images, 1, 1, progress=lambda f, m: events.append(m))
    assert result.outcome == "healthy", result
    assert any("resume" in m for m in events), events
    wait_answers(url_of(backend), 1)


def test_hostile_names_never_reach_the_cluster(backend, kube_images, kube_namespace):
    for name in ("Churn", "churn;rm", "a" * 41, "-x", "x--y", "../x"):
        with pytest.raises(UsageError, match="invalid deployment name"):
            apply(backend, kube_images, 1, 1, name=name)
        with pytest.raises(UsageError):
            backend.status(name)
    assert not kube_namespace.apps.list_namespaced_deployment(kube_namespace.name).items


def test_the_api_server_stopped_mid_rollout_is_unknown_and_a_rerun_resumes(backend, kube_images, kube_cluster):
    kube_cluster.require_restartable()  # a shared cluster's API server is not ours to stop (runs in CI)
    first = apply(backend, kube_images, 1, 1)
    assert first.outcome == "healthy", (first.outcome, first.detail, first.events[-5:])
    outcome: dict[str, object] = {}
    rolling = threading.Event()

    def roll() -> None:
        try:
            outcome["result"] = apply(backend, kube_images, 2, 2, deadline=120,
                                      progress=lambda f, m: rolling.set() if "updated" in m else None)
        except EngineUnreachable as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=roll, daemon=True)
    thread.start()
    assert rolling.wait(60)
    with kube_cluster.apiserver_stopped():
        thread.join(60)
        assert isinstance(outcome.get("error"), EngineUnreachable), outcome  # never "healthy" unseen
        assert "does not answer" in str(outcome["error"])
        with pytest.raises(EngineUnreachable):
            backend.status("churn")
        assert not backend.check().reachable
    result = apply(backend, kube_images, 2, 2, deadline=120)
    assert result.outcome == "healthy", result
    wait_answers(url_of(backend), 2)


def test_the_deadline_is_measured_from_the_start_of_apply(backend, kube_images):
    result = apply(backend, kube_images, 1, 1, image=kube_images.not_ready, deadline=10)
    assert result.outcome == "failed" and result.seconds < 25, result


def test_a_kubernetes_deployment_through_the_cli_only(kube_cluster, kube_namespace, docker_engine, kube_images,
                                                      capsys):
    import json
    import secrets

    from mlops_desktop.cli.main import main

    def run(*argv):
        code = main(["--home", kube_images.home, *argv])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err

    secret = kube_namespace.add_pull_secret(docker_engine.registry, docker_engine.registry_user,
                                            docker_engine.registry_password)
    target, name = f"k{secrets.token_hex(3)}", f"c{secrets.token_hex(3)}"
    code, _, err = run("targets", "add", target, "--kubernetes", "--namespace", kube_namespace.name,
                       "--option", f"kubeconfig={kube_cluster.kubeconfig}", "--option", f"pull_secret={secret}",
                       "--option", f"node_address={kube_cluster.node_ip}")
    assert code == 0, err
    code, out, err = run("targets", "check", target, "--json")
    check = json.loads(out)[0]
    assert code == 0 and check["reachable"] and check["version"].startswith("v1.20"), (out, err)
    code, out, err = run("deploy", "create", name, "--target", target, "--model", f"{kube_images.model}/1",
                         "--image", kube_images.good[1], "--json")
    assert code == 0 and json.loads(out)["outcome"] == "healthy", (out, err)
    code, out, err = run("deploy", "update", name, "--model", f"{kube_images.model}/2", "--image",
                         kube_images.crash, "--deadline", "40")
    assert code == 1 and "rolled_back" in out, out + err
    code, out, _ = run("deploy", "status", name, "--json")
    st = json.loads(out)
    assert st["state"] == "healthy" and st["ready"] == 1, st
    code, out, _ = run("deploy", "endpoints", name, "--json")
    assert code == 0
    wait_answers(json.loads(out)[0]["url"], 1)
    code, out, err = run("deploy", "delete", name)
    assert code == 0, err
    assert not kube_namespace.apps.list_namespaced_deployment(kube_namespace.name).items


# ----------------------------------------------------------------------------- A/B and shadow through our router

BODY = b'{"dataframe_records": [{"tenure": 3.0, "spend": 80.0, "plan": "basic", "calls": 4}]}'


def plan(images: KubeImages, w1: float, w2: float, *, shadow: bool = False, sticky: str | None = None) -> RouterPlan:
    return RouterPlan(arms=(ArmPlan("v1", images.model, 1, images.good[1], w1, 1),
                            ArmPlan("v2", images.model, 2, images.good[2], w2, 1)),
                      stable="v1", sticky_header=sticky, shadow_arm="v2" if shadow else None,
                      shadow_percent=100.0 if shadow else 0.0, image=images.good[1])


def arms_of(url: str, n: int, headers_for=lambda i: {}) -> Counter[str]:
    """n predictions over one keep-alive connection; the arm of each answer (x-mlops-arm)."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    counts: Counter[str] = Counter()
    try:
        for i in range(n):
            conn.request("POST", "/invocations", BODY, {"Content-Type": "application/json", **headers_for(i)})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
            counts[resp.getheader("x-mlops-arm") or "?"] += 1
    finally:
        conn.close()
    return counts


def within_binomial(k: int, n: int, p: float, z: float = 4.5) -> bool:
    return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p))


def deploy_router(backend, images, p: RouterPlan, number: int = 1):
    s = spec(images, 1)
    result = backend.apply(s, rev(number, s, images.good[1]), images.good[1], p, 180)
    assert result.outcome == "healthy", result
    return result


def test_split_is_honoured_weights_change_live_and_sticky_users_keep_their_arm(backend, kube_images):
    deploy_router(backend, kube_images, plan(kube_images, 80, 20))
    eps = {e.role: e.url for e in backend.endpoints("churn")}
    url = eps["router"]
    wait_answers(url, 1, timeout=60)  # /version of the router's stable arm... or the router's own answer
    n = 1500
    counts = arms_of(url, n)
    assert set(counts) <= {"v1", "v2"}
    assert within_binomial(counts["v2"], n, 0.2), counts

    admin = backend.router_admin("churn")
    assert admin is not None
    admin_url, token = admin
    assert admin_url == url
    client = AdminClient(admin_url, token)
    client.change(actor="test", reason="even split", weights={"v1": 50, "v2": 50})
    assert client.state()["settings"]["weights"] == {"v1": 50.0, "v2": 50.0}
    counts = arms_of(url, 800)
    assert within_binomial(counts["v2"], 800, 0.5), counts
    with pytest.raises(Exception, match="401|admin token"):
        AdminClient(admin_url, "x" * 32).state()

    # sticky: the router rolls to the new config; a user keeps their arm, users spread over both
    deploy_router(backend, kube_images, plan(kube_images, 50, 50, sticky="x-user"), number=2)
    assert backend.endpoints("churn")[0].url == url  # the NodePort stays
    per_user = [arms_of(url, 5, lambda i, u=u: {"x-user": f"user-{u}"}) for u in range(30)]
    assert all(len(c) == 1 for c in per_user), per_user
    assert {next(iter(c)) for c in per_user} == {"v1", "v2"}


def test_shadow_answers_are_never_returned_and_going_single_keeps_the_url(backend, kube_images):
    deploy_router(backend, kube_images, plan(kube_images, 100, 0, shadow=True))
    url = backend.endpoints("churn")[0].url
    status, _, _ = get_url(url + "/v2/health/ready", timeout=3)  # the rollout waited for kube-proxy's NodePort
    assert status == 200
    wait_answers(url, 1, timeout=60)
    counts = arms_of(url, 200)
    assert counts == Counter({"v1": 200}), counts
    admin_url, token = backend.router_admin("churn")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shadow = AdminClient(admin_url, token).state()["shadow"]
        if shadow["mirrored"] >= 150:
            break
        time.sleep(0.5)
    assert shadow["arm"] == "v2" and shadow["mirrored"] >= 150, shadow
    st = backend.status("churn")
    assert st.state == "healthy" and {r.arm for r in st.replicas} == {"v1", "v2", "router"}, st

    # back to a single workload: Service churn selects it, the router and the arms go, the URL stays
    s = spec(kube_images, 2)
    result = backend.apply(s, rev(2, s, kube_images.good[2]), kube_images.good[2], None, 120)
    assert result.outcome == "healthy", result
    assert backend.endpoints("churn")[0].url == url and backend.router_admin("churn") is None
    wait_answers(url, 2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and {r.arm for r in backend.status("churn").replicas} != {""}:
        time.sleep(1)
    assert {r.arm for r in backend.status("churn").replicas} == {""}
