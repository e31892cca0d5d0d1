"""The A/B router over real HTTP in front of real model servers: the weighted split (a binomial bound over thousands
of requests), sticky arms across weight changes and the kill switch, versioned v2 routes, the arm in the backends'
prediction logs, health and readiness, and what clients see when a backend refuses, hangs or is killed mid-load."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
import requests
from router_factories import ThresholdClassifier, body
from router_helpers import ADMIN, config, free_port, hanging_server, metric, post_many, running_router, wait_for
from serving_helpers import running

from mlops_desktop.serving.app import ServedModel
from mlops_desktop.serving.config import LogConfig, ServeConfig
from mlops_desktop.serving.router_state import Selector

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
Z = 5.0  # binomial bounds at 5 standard deviations: a correct router fails one run in ~3.5 million


def within(k: int, n: int, p: float) -> bool:
    return abs(k - n * p) <= Z * math.sqrt(n * p * (1 - p))


@pytest.fixture(scope="module")
def two_servers():
    with running(ServedModel("m", "1", ThresholdClassifier())) as a, \
            running(ServedModel("m", "2", ThresholdClassifier())) as b:
        yield a, b


def test_the_split_follows_the_weights_within_a_binomial_bound(two_servers):
    a, b = two_servers
    cfg = config([{"name": "v1", "weight": 90, "backends": [a.url]}, {"name": "v2", "weight": 10,
                                                                     "backends": [b.url]}])
    with running_router(cfg) as rr:
        rr.wait_ready()
        n = 3000
        results = post_many(rr.url, n)
        assert all(code == 200 for code, _ in results)
        on_b = sum(1 for _, arm in results if arm == "v2")
        assert sum(1 for _, arm in results if arm == "v1") + on_b == n
        assert within(on_b, n, 0.10), f"{on_b} of {n} requests on the 10 % arm"
        text = requests.get(rr.url + "/metrics", timeout=5).text
        assert metric(text, "mlops_router_requests_total", arm="v2", code="200") == on_b
        assert metric(text, "mlops_router_upstream_duration_seconds_count", arm="v1") == n - on_b


def test_selector_shares_for_three_arms_and_sticky_keys():
    import random

    sel = Selector(("a", "b", "c"), {"a": 60, "b": 30, "c": 10}, kill_switch=False, stable="a")
    rng = random.Random(7)
    n = 20000
    picks = [sel.pick(rng.random()) for _ in range(n)]
    keys = [sel.sticky(f"user-{i}".encode()) for i in range(n)]
    for arm, p in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        assert within(picks.count(arm), n, p), (arm, picks.count(arm))
        assert within(keys.count(arm), n, p), (arm, keys.count(arm))
    # an arm at weight 0 gets nothing, and gives up only its own keys
    zero = Selector(("a", "b", "c"), {"a": 60, "b": 30, "c": 0}, kill_switch=False, stable="a")
    moved = [i for i in range(n) if zero.sticky(f"user-{i}".encode()) != keys[i]]
    assert moved and all(keys[i] == "c" for i in moved)
    assert "c" not in {zero.sticky(f"user-{i}".encode()) for i in range(2000)}


def test_sticky_users_keep_their_arm_across_weight_changes_and_the_kill_switch(two_servers):
    a, b = two_servers
    cfg = config([{"name": "v1", "weight": 90, "backends": [a.url]}, {"name": "v2", "weight": 10,
                                                                     "backends": [b.url]}],
                 sticky_header="X-User-Id").with_(admin_token=ADMIN)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    users = 1500
    with running_router(cfg) as rr:
        rr.wait_ready()

        def arms() -> list[str | None]:
            return [arm for _, arm in post_many(rr.url, users, lambda i: {"X-User-Id": f"user-{i}"})]

        first = arms()
        assert arms() == first  # the same header, the same arm, every time
        assert within(first.count("v2"), users, 0.10)
        r = requests.post(rr.url + "/admin/settings", headers=admin, timeout=10,
                          json={"weights": {"v1": 80, "v2": 20}, "actor": "tester", "reason": "ramp up"})
        assert r.status_code == 200, r.text
        second = arms()
        # nobody leaves the arm whose weight rose; those who move go from v1 to v2, about 10 % of the users
        assert all(s == "v2" for f, s in zip(first, second, strict=True) if f == "v2")
        moved = sum(1 for f, s in zip(first, second, strict=True) if f != s)
        assert within(moved, users, 0.10), moved
        assert within(second.count("v2"), users, 0.20)
        r = requests.post(rr.url + "/admin/settings", headers=admin, timeout=10,
                          json={"kill_switch": True, "actor": "tester", "reason": "v2 misbehaves"})
        assert r.status_code == 200, r.text
        assert set(arms()) == {"v1"}
        requests.post(rr.url + "/admin/settings", headers=admin, timeout=10,
                      json={"kill_switch": False, "actor": "tester", "reason": "fixed"}).raise_for_status()
        assert arms() == second  # everyone is back on the arm they had


def test_the_backend_logs_the_arm_and_a_versioned_route_goes_to_its_arm(tmp_path):
    log_a, log_b = tmp_path / "a", tmp_path / "b"
    with running(ServedModel("m", "1", ThresholdClassifier()), ServeConfig(log=LogConfig(directory=log_a))) as a, \
            running(ServedModel("m", "2", ThresholdClassifier()), ServeConfig(log=LogConfig(directory=log_b))) as b:
        cfg = config([{"name": "blue", "weight": 50, "version": "1", "backends": [a.url]},
                      {"name": "green", "weight": 50, "version": "2", "backends": [b.url]}])
        with running_router(cfg) as rr:
            rr.wait_ready()
            got = {}
            with requests.Session() as s:
                for i in range(40):
                    r = s.post(rr.url + "/invocations", json=body(0.9), headers={"X-Request-Id": f"req-{i}"},
                               timeout=10)
                    assert r.status_code == 200 and r.json() == {"predictions": [1]}
                    assert r.headers["x-request-id"] == f"req-{i}"
                    got[f"req-{i}"] = r.headers["x-mlops-arm"]
                v2 = {"inputs": [{"name": "p", "shape": [1], "datatype": "FP64", "data": [0.2]}]}
                for version, arm in (("1", "blue"), ("2", "green")):
                    r = s.post(f"{rr.url}/v2/models/m/versions/{version}/infer", json=v2, timeout=10)
                    assert r.status_code == 200 and r.headers["x-mlops-arm"] == arm
                    assert r.json()["model_version"] == version
                r = s.post(f"{rr.url}/v2/models/m/versions/7/infer", json=v2, timeout=10)
                assert r.status_code == 404 and "blue (version 1)" in r.json()["error"]
                # a client cannot claim an arm: the router sets the header itself
                r = s.post(rr.url + "/invocations", json=body(0.9), timeout=10,
                           headers={"X-Mlops-Arm": "forged", "X-Request-Id": "req-forged"})
                got["req-forged"] = r.headers["x-mlops-arm"]
    rows = pl.concat([pl.read_parquet(f) for f in sorted(tmp_path.rglob("*.parquet"))])
    logged = dict(zip(rows["request_id"].to_list(), rows["arm"].to_list(), strict=True))
    for rid, arm in got.items():
        assert logged[rid] == arm
    assert set(rows["version"].to_list()) == {"1", "2"}
    assert rows.filter(pl.col("arm") == "blue")["version"].unique().to_list() == ["1"]
    assert not rows["shadow"].any()


def test_readiness_follows_the_stable_arm_only(two_servers):
    a, _ = two_servers
    dead = f"127.0.0.1:{free_port()}"
    cfg = config([{"name": "v1", "weight": 90, "backends": [a.url]}, {"name": "v2", "weight": 10,
                                                                     "backends": [dead]}])
    with running_router(cfg) as rr:
        rr.wait_ready()
        wait_for(lambda: rr.call(lambda: rr.router.arms["v2"][0].up) is False)
        assert requests.get(rr.url + "/v2/health/ready", timeout=5).status_code == 200
        health = requests.get(rr.url + "/health", timeout=5).json()
        assert health["arms"]["v2"] == {"up": 0, "backends": 1}
        text = requests.get(rr.url + "/metrics", timeout=5).text
        assert metric(text, "mlops_router_backend_up", arm="v2") == 0
        assert metric(text, "mlops_router_backend_up", arm="v1") == 1
    cfg = config([{"name": "v1", "weight": 90, "backends": [dead]}, {"name": "v2", "weight": 10,
                                                                    "backends": [a.url]}])
    with running_router(cfg) as rr:
        wait_for(lambda: rr.call(lambda: rr.router.arms["v1"][0].up) is False)
        assert requests.get(rr.url + "/v2/health/ready", timeout=5).status_code == 503
        assert requests.get(rr.url + "/health", timeout=5).json()["status"] == "unavailable"
        assert requests.get(rr.url + "/v2/health/live", timeout=5).status_code == 200


def test_a_refused_backend_is_retried_on_its_arm_or_answered_502_naming_the_arm(two_servers):
    a, _ = two_servers
    with running(ServedModel("m", "1", ThresholdClassifier())) as doomed:
        arms = [{"name": "v1", "weight": 1, "backends": [doomed.url, a.url]}]
        # health checks far apart: the router still takes the stopped backend for up, and learns from the refusal
        with running_router(config(arms, health={"interval_s": 600})) as rr:
            rr.wait_ready()
            wait_for(lambda: rr.call(lambda: all(b.up for b in rr.router.arms["v1"])))
            doomed.stop()
            codes = [code for code, _ in post_many(rr.url, 40, threads=2)]
            assert set(codes) == {200}
            text = requests.get(rr.url + "/metrics", timeout=5).text
            assert metric(text, "mlops_router_upstream_errors_total", arm="v1", kind="refused") >= 1
            assert metric(text, "mlops_router_retries_total", arm="v1") >= 1
            assert rr.call(lambda: rr.router.arms["v1"][0].up) is False  # marked down by the refusal itself
    dead = f"127.0.0.1:{free_port()}"
    with running_router(config([{"name": "v1", "weight": 1, "backends": [dead]}])) as rr:
        r = requests.post(rr.url + "/invocations", json=body(0.3), timeout=10)
        assert r.status_code == 502
        doc = r.json()
        assert doc["arm"] == "v1" and "refused the connection" in doc["message"] and dead in doc["message"]
        assert r.headers["x-mlops-arm"] == "v1"


def test_a_backend_that_hangs_is_a_504_naming_the_arm():
    with hanging_server() as port:
        cfg = config([{"name": "slow", "weight": 1, "backends": [f"127.0.0.1:{port}"]}],
                     timeout_s=0.5, health={"path": "/nothing", "interval_s": 60})
        with running_router(cfg) as rr:
            t = time.perf_counter()
            r = requests.post(rr.url + "/invocations", json=body(0.3), timeout=10)
            assert r.status_code == 504 and time.perf_counter() - t < 5
            assert "arm 'slow'" in r.json()["message"] and "0.5 s" in r.json()["message"]
            text = requests.get(rr.url + "/metrics", timeout=5).text
            assert metric(text, "mlops_router_upstream_errors_total", arm="slow", kind="timeout") == 1
            assert metric(text, "mlops_router_requests_total", arm="slow", code="504") == 1


def test_a_backend_killed_mid_load_gives_counted_502s_and_the_other_arm_is_unaffected(tmp_path):
    good, good_url = start_backend(tmp_path / "good")
    doomed, doomed_url = start_backend(tmp_path / "doomed")
    try:
        cfg = config([{"name": "v1", "weight": 50, "backends": [good_url]},
                      {"name": "v2", "weight": 50, "backends": [doomed_url]}])
        with running_router(cfg) as rr:
            rr.wait_ready()
            results: list[tuple[int, str | None]] = []
            stop = threading.Event()

            def load() -> None:
                with requests.Session() as s:
                    while not stop.is_set():
                        r = s.post(rr.url + "/invocations", json=body(0.3), timeout=30)
                        results.append((r.status_code, r.headers.get("x-mlops-arm")))

            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            wait_for(lambda: len(results) >= 200)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(10)
            n_at_kill = len(results)
            wait_for(lambda: len(results) >= n_at_kill + 400)
            stop.set()
            for t in threads:
                t.join(30)
            text = requests.get(rr.url + "/metrics", timeout=5).text
        v1 = [code for code, arm in results if arm == "v1"]
        v2_after = [code for code, arm in results[n_at_kill:] if arm == "v2"]
        assert v1 and set(v1) == {200}  # the other arm never saw an error
        assert v2_after and set(v2_after) == {502}
        assert metric(text, "mlops_router_requests_total", arm="v2", code="502") == \
            sum(1 for code, arm in results if arm == "v2" and code == 502)
        assert metric(text, "mlops_router_upstream_errors_total", arm="v2") >= len(v2_after)
        assert metric(text, "mlops_router_backend_up", arm="v2") == 0
    finally:
        for p in (good, doomed):
            if p.poll() is None:
                p.terminate()
                p.wait(30)


def test_head_keep_alive_pipelining_and_large_bodies(two_servers):
    a, _ = two_servers
    cfg = config([{"name": "v1", "weight": 1, "backends": [a.url]}], max_body_mb=0.01)
    with running_router(cfg) as rr:
        rr.wait_ready()
        host, port = rr.url.removeprefix("http://").split(":")
        payload = json.dumps(body(0.9)).encode()
        one = (f"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               f"content-length: {len(payload)}\r\n\r\n").encode() + payload
        with socket.create_connection((host, int(port)), timeout=10) as c:
            c.sendall(one * 3 + b"HEAD /version HTTP/1.1\r\nhost: x\r\n\r\n")  # pipelined: answered in order
            data = b""
            deadline = time.monotonic() + 10
            while data.count(b"HTTP/1.1 200") < 4 and time.monotonic() < deadline:
                data += c.recv(65536)
        answers = data.split(b"HTTP/1.1 200 OK")[1:]
        assert len(answers) == 4 and all(x.endswith(b'{"predictions":[1]}') for x in answers[:3])
        assert answers[3].endswith(b"\r\n\r\n")  # HEAD: the head only
        big = requests.post(rr.url + "/invocations", data=b"x" * 20000, timeout=10)
        assert big.status_code == 413 and "limit" in big.json()["message"]
        chunked = requests.post(rr.url + "/invocations", data=iter([payload[:5], payload[5:]]), timeout=10,
                                headers={"Content-Type": "application/json"})
        assert chunked.status_code == 200 and chunked.json() == {"predictions": [1]}
        with socket.create_connection((host, int(port)), timeout=10) as c:
            c.sendall(b"NONSENSE\r\n\r\n")
            assert c.recv(65536).startswith(b"HTTP/1.1 400")


def start_backend(folder: Path, factory: str = "router_factories:threshold_clf",
                  *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    folder.mkdir(parents=True, exist_ok=True)
    status = folder / "status.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    proc = subprocess.Popen([sys.executable, "-m", "mlops_desktop.serving", "--factory", factory, "--name", "m",
                             "--port", "0", "--status-file", str(status), "--no-log", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "log", "wb"))
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (folder / "log").read_text()
        assert time.monotonic() < deadline, "the backend did not start"
        try:
            doc = json.loads(status.read_text())
            if doc.get("state") == "running":
                return proc, f"http://127.0.0.1:{doc['port']}"
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
