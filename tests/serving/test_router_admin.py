"""Live switches through the router's admin API: the bearer token, who and why in a hash-chained change log, the
kill switch, a classifier's threshold moving its labels live (and the model server's own admin endpoint), the
settings a restarted router resumes, and bad configs refused in words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from router_factories import Regressor, ThresholdClassifier, body
from router_helpers import ADMIN, config, running_router
from serving_helpers import running

from mlops_desktop.errors import UsageError
from mlops_desktop.serving.app import ServedModel
from mlops_desktop.serving.config import ServeConfig
from mlops_desktop.serving.router_config import from_dict, load
from mlops_desktop.serving.router_state import read_changes, verify_changes

AUTH = {"Authorization": f"Bearer {ADMIN}"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def servers():
    cfg = ServeConfig(admin_token=ADMIN)
    with running(ServedModel("m", "1", ThresholdClassifier()), cfg) as a, \
            running(ServedModel("m", "2", ThresholdClassifier()), cfg) as b:
        yield a, b


def arms(a, b, **w):
    return [{"name": "v1", "weight": w.get("v1", 90), "backends": [a.url]},
            {"name": "v2", "weight": w.get("v2", 10), "backends": [b.url]}]


def change(url: str, doc: dict, headers: dict | None = None) -> requests.Response:
    return requests.post(url + "/admin/settings", json=doc, headers=AUTH if headers is None else headers,
                         timeout=10)


def test_the_admin_api_refuses_without_its_token_and_records_who_and_why(servers, tmp_path):
    a, b = servers
    seen = []
    cfg = config(arms(a, b), state_dir=str(tmp_path)).with_(admin_token=ADMIN)
    with running_router(cfg, on_change=seen.append) as rr:
        want = {"weights": {"v1": 50, "v2": 50}, "actor": "alice", "reason": "half and half"}
        assert change(rr.url, want, {}).status_code == 401
        assert change(rr.url, want, {"Authorization": "Bearer wrong-token-0123456789abc"}).status_code == 401
        assert requests.get(rr.url + "/admin/state", timeout=5).status_code == 401
        for missing in ("actor", "reason"):
            r = change(rr.url, {k: v for k, v in want.items() if k != missing})
            assert r.status_code == 400 and r.json()["field"] == missing
        r = change(rr.url, {"weights": {"v9": 1}, "actor": "alice", "reason": "x"})
        assert r.status_code == 400 and "no arm named v9" in r.json()["message"]
        r = change(rr.url, {"weights": {"v1": 0, "v2": 0}, "actor": "alice", "reason": "x"})
        assert r.status_code == 400 and "add up to 0" in r.json()["message"]
        assert rr.call(lambda: rr.router.settings.weights) == {"v1": 90, "v2": 10}  # refused: nothing changed
        r = change(rr.url, want)
        assert r.status_code == 200, r.text
        event = r.json()["changes"][0]
        assert (event["actor"], event["reason"], event["kind"]) == ("alice", "half and half", "router.weights")
        assert json.loads(event["from_value"]) == {"v1": 90, "v2": 10}
        assert json.loads(event["to_value"]) == {"v1": 50, "v2": 50}
        assert change(rr.url, want).json()["changes"] == []  # the same again: nothing to record
        change(rr.url, {"kill_switch": True, "actor": "bob", "reason": "errors on v2"}).raise_for_status()
        state = requests.get(rr.url + "/admin/state", headers=AUTH, timeout=5).json()
        assert state["settings"]["kill_switch"] is True and state["changes"] == 2
        listed = requests.get(rr.url + "/admin/changes?after=1", headers=AUTH, timeout=5).json()["changes"]
        assert [(e["seq"], e["actor"], e["kind"]) for e in listed] == [(2, "bob", "router.kill_switch")]
        text = requests.get(rr.url + "/metrics", timeout=5).text
        assert 'mlops_router_kill_switch{router="router",stable="v1"} 1.0' in text
    events = read_changes(tmp_path / "changes.jsonl")
    assert [(e.actor, e.reason) for e in events] == [("alice", "half and half"), ("bob", "errors on v2")]
    assert verify_changes(events) == []
    assert [e.seq for e in seen] == [1, 2] and seen[1].audit_fields()["kind"] == "router.kill_switch"
    # an edited line breaks the chain
    lines = (tmp_path / "changes.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace("alice", "mallory")
    (tmp_path / "changes.jsonl").write_text("\n".join(lines) + "\n")
    assert verify_changes(read_changes(tmp_path / "changes.jsonl")) == ["event 1 was changed after it was written"]


def test_without_an_admin_token_the_admin_api_is_closed(servers):
    a, b = servers
    with running_router(config(arms(a, b))) as rr:
        r = change(rr.url, {"kill_switch": True, "actor": "x", "reason": "y"}, {})
        assert r.status_code == 403 and "no admin token" in r.json()["message"]


def test_the_kill_switch_sends_everything_to_stable_and_a_restart_keeps_it(servers, tmp_path):
    a, b = servers
    cfg = config(arms(a, b, v1=10, v2=90), state_dir=str(tmp_path)).with_(admin_token=ADMIN)
    with running_router(cfg) as rr:
        rr.wait_ready()
        change(rr.url, {"kill_switch": True, "actor": "pager", "reason": "v2 error rate"}).raise_for_status()
        with requests.Session() as s:
            got = {s.post(rr.url + "/invocations", json=body(0.2), timeout=10).headers["x-mlops-arm"]
                   for _ in range(60)}
        assert got == {"v1"}
    with running_router(cfg) as rr:  # a restarted router (a rescheduled pod) resumes the live settings
        rr.wait_ready()
        assert rr.call(lambda: rr.router.settings.kill_switch) is True
        with requests.Session() as s:
            assert {s.post(rr.url + "/invocations", json=body(0.2), timeout=10).headers["x-mlops-arm"]
                    for _ in range(30)} == {"v1"}


def test_a_threshold_change_moves_a_classifiers_labels_live(servers):
    a, b = servers
    with running_router(config(arms(a, b)).with_(admin_token=ADMIN)) as rr:
        rr.wait_ready()
        rows = [0.2, 0.55, 0.65, 0.8]

        def labels(url: str) -> list[int]:
            return requests.post(url + "/invocations", json=body(*rows), timeout=10).json()["predictions"]

        assert labels(rr.url) == [0, 1, 1, 1]  # the model's own argmax
        r = change(rr.url, {"threshold": {"threshold": 0.7}, "actor": "ds", "reason": "fewer false alarms"})
        assert r.status_code == 200, r.text
        assert sorted(r.json()["threshold_push"]["applied"]) == sorted([a.url, b.url])
        assert labels(a.url) == labels(b.url) == labels(rr.url) == [0, 0, 0, 1]
        assert requests.get(a.url + "/version", timeout=5).json()["decision"] == {"threshold": 0.7,
                                                                                "positive_class": 1}
        assert 'mlops_decision_threshold{model="m",version="1"} 0.7' in requests.get(a.url + "/metrics",
                                                                                     timeout=5).text
        change(rr.url, {"threshold": {"arm": "v2", "threshold": 0.5}, "actor": "ds", "reason": "v2 only"})
        assert labels(b.url) == [0, 1, 1, 1] and labels(a.url) == [0, 0, 0, 1]
        r = change(rr.url, {"threshold": {"threshold": 1.5}, "actor": "ds", "reason": "typo"})
        assert r.status_code == 400 and "from 0 to 1" in r.json()["message"]
        r = change(rr.url, {"threshold": {"threshold": 0.6, "positive_class": 7}, "actor": "ds", "reason": "x"})
        assert r.status_code == 400 and "no class 7" in r.json()["message"]
        assert labels(b.url) == [0, 1, 1, 1] and labels(a.url) == [0, 0, 0, 1]  # a refused change undid itself
        change(rr.url, {"threshold": {"threshold": None}, "actor": "ds", "reason": "back to argmax"})
        assert labels(a.url) == labels(b.url) == [0, 1, 1, 1]


def test_the_model_servers_own_admin_endpoint(tmp_path):
    with running(ServedModel("m", "1", ThresholdClassifier()), ServeConfig(admin_token=ADMIN)) as srv, \
            running(ServedModel("r", "1", Regressor()), ServeConfig(admin_token=ADMIN)) as reg, \
            running(ServedModel("m", "1", ThresholdClassifier())) as closed:
        url = srv.url + "/admin/settings"
        assert requests.put(url, json={"threshold": 0.9}, timeout=5).status_code == 401
        assert requests.put(closed.url + "/admin/settings", json={"threshold": 0.9}, headers=AUTH,
                            timeout=5).status_code == 403
        r = requests.put(url, json={"threshold": 0.9, "actor": "me", "reason": "strict"}, headers=AUTH, timeout=5)
        assert r.status_code == 200 and r.json()["decision"] == {"threshold": 0.9, "positive_class": 1}
        got = requests.get(url, headers=AUTH, timeout=5).json()
        assert got["decision"]["threshold"] == 0.9 and got["changes"][-1]["actor"] == "me"
        assert requests.post(srv.url + "/invocations", json=body(0.85), timeout=5).json() == {"predictions": [0]}
        r = requests.put(reg.url + "/admin/settings", json={"threshold": 0.5}, headers=AUTH, timeout=5)
        assert r.status_code == 409 and "not a classifier" in r.json()["message"]
        assert requests.put(url, data=b"{nope", headers=AUTH, timeout=5).status_code == 400
    # the threshold can also be given at start
    with running(ServedModel("m", "1", ThresholdClassifier()), ServeConfig(threshold=0.3)) as srv:
        assert requests.post(srv.url + "/invocations", json=body(0.35), timeout=5).json() == {"predictions": [1]}


def test_a_threshold_the_backend_refuses_is_refused_by_the_router_and_not_recorded():
    with running(ServedModel("r", "1", Regressor()), ServeConfig(admin_token=ADMIN)) as reg:
        cfg = config([{"name": "only", "weight": 1, "backends": [reg.url]}]).with_(admin_token=ADMIN)
        with running_router(cfg) as rr:
            rr.wait_ready()
            r = change(rr.url, {"threshold": {"threshold": 0.5}, "actor": "ds", "reason": "x"})
            assert r.status_code == 409 and "not a classifier" in r.json()["message"]
            assert rr.call(lambda: rr.router.changes.events()) == []


@pytest.mark.parametrize(("doc", "words"), [
    ({}, "'arms' must list at least one arm"),
    ({"arms": [{"name": "a", "weight": -1, "backends": ["127.0.0.1:1"]}]}, "arms[0].weight must be a number >= 0"),
    ({"arms": [{"name": "a", "weight": 1, "backends": []}]}, "arms[0].backends must list at least one"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["https://x:1"]}]}, "uses https://"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["127.0.0.1"]}]}, "needs a host and a port"),
    ({"arms": [{"name": "a b", "weight": 1, "backends": ["h:1"]}]}, "arms[0].name must be 1-63 letters"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}] * 2}, "appear more than once"),
    ({"arms": [{"name": "a", "weight": 0, "backends": ["h:1"]}]}, "add up to 0"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}], "stable": "b"}, "'stable' is 'b', which is no arm"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}, {"name": "b", "weight": 5, "backends": ["h:2"]}],
      "shadow": {"arm": "b"}}, "arm 'b' is the shadow and has weight 5"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}], "shadow": {"arm": "a"}}, "the shadow must be another"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}], "colour": "red"}, "unknown setting(s) 'colour'"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}], "host": "0.0.0.0"}, "without a token"),
    ({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}], "timeout_s": 0}, "'timeout_s' must be a number"),
])
def test_bad_configs_are_refused_in_words(doc, words):
    with pytest.raises(UsageError) as err:
        from_dict(doc)
    assert words in str(err.value)


def test_config_files_and_the_process_refuse_bad_input_without_a_traceback(tmp_path):
    good = tmp_path / "router.toml"
    token = tmp_path / "admin.token"
    token.write_text(ADMIN + "\n")
    good.write_text('name = "ab"\nstable = "v1"\nsticky_header = "X-User"\nadmin_token_file = "admin.token"\n'
                    '[[arms]]\nname = "v1"\nweight = 90\nbackends = ["127.0.0.1:9001"]\n'
                    '[[arms]]\nname = "v2"\nweight = 10\nbackends = ["http://127.0.0.1:9002"]\n')
    cfg = load(good)
    assert cfg.name == "ab" and cfg.sticky_header == "x-user" and cfg.admin_token == ADMIN
    assert cfg.to_dict()["admin_token"] == "***"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[arms]]\nname = "v1"\nweight = "ten"\nbackends = ["127.0.0.1:9001"]\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for path, words in ((bad, "arms[0].weight must be a number"), (tmp_path / "none.toml", "cannot read"),
                        (tmp_path, "cannot read")):
        p = subprocess.run([sys.executable, "-m", "mlops_desktop.serving.router", "--config", str(path)],
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr, p.stderr
    p = subprocess.run([sys.executable, "-m", "mlops_desktop.serving.router", "--config", str(good), "--check"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout)["arms"][1]["backends"] == ["http://127.0.0.1:9002"]
    assert ADMIN not in p.stdout
    env["MLOPS_ROUTER_CONFIG"] = json.dumps({"arms": [{"name": "a", "weight": 1, "backends": ["h:1"]}],
                                             "host": "0.0.0.0"})
    p = subprocess.run([sys.executable, "-m", "mlops_desktop.serving.router", "--check"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 2 and "without a token" in p.stderr
