"""The trigger watcher: a new version or an alias move starts (and runs) its policy's request by itself, once; a
broken policy file is said in words and the last good policies stay; `promote watch` runs until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mlops_desktop import registry
from mlops_desktop.promotion import requests
from mlops_desktop.promotion.policy import load_policies
from mlops_desktop.promotion.watcher import TriggerWatcher
from tests.promotion.promo_helpers import champion_and_candidate, project

ROOT = Path(__file__).resolve().parents[2]

POLICIES = """
    [promotion.churn]
    trigger = "alias:challenger"
    [promotion.churn-latest]
    model = "churn"
    trigger = "new-version"
    [[promotion.churn-latest.checks]]
    kind = "holdout"
    dataset = "churn_holdout@1"
    target = "churned"
    require = ["accuracy >= champion - 0.05"]
    [promotion.by-hand]
    model = "churn"
    """


def test_new_versions_and_alias_moves_start_their_policies_requests_once(ws, tmp_path):
    models, _champ, cand = champion_and_candidate(ws, tmp_path)
    root = project(tmp_path, POLICIES)
    watcher = TriggerWatcher(ws, lambda: load_policies(root))
    first = watcher.poll()  # a full scan: the candidate registered before the watcher started
    assert [(r.policy, r.version) for r in first.started] == [("churn-latest", cand.version)]
    assert requests.get(ws, first.started[0].id).state == "review"  # its holdout check ran and passed
    quiet = watcher.poll()
    assert quiet.started == [] and quiet.events == 0 and quiet.problem == ""
    bad = models.bad()  # a new version: the new-version policy starts, runs, and fails it
    polled = watcher.poll()
    assert polled.events == 1 and [(r.policy, r.version) for r in polled.started] == [("churn-latest", bad.version)]
    assert requests.get(ws, polled.started[0].id).state == "failed"
    registry.store(ws).set_alias("churn", "challenger", cand.version, actor="bob")
    moved = watcher.poll()
    assert [(r.policy, r.version, r.trigger) for r in moved.started] == [("churn", cand.version, "alias:challenger")]
    assert watcher.poll().started == []
    # the manual policy never started anything; each (version, policy) has one request
    listed = requests.list_requests(ws)
    assert sorted((r.policy, r.version) for r in listed) == sorted(
        [("churn-latest", cand.version), ("churn-latest", bad.version), ("churn", cand.version)])


def test_a_broken_policy_file_is_said_and_the_last_good_policies_stay(ws, tmp_path):
    models, _champ, cand = champion_and_candidate(ws, tmp_path)
    root = project(tmp_path, '[promotion.churn]\ntrigger = "every-tuesday"\n')
    watcher = TriggerWatcher(ws, lambda: load_policies(root), run=False)
    broken = watcher.poll()
    assert broken.started == [] and "every-tuesday" in broken.problem and "mlops.toml" in broken.problem
    project(tmp_path, '[promotion.churn]\ntrigger = "new-version"\n')
    fixed = watcher.poll()  # the cursor did not move past the unread events: the candidate is still found
    assert [r.version for r in fixed.started] == [cand.version] and fixed.started[0].state == "pending"
    project(tmp_path, "[promotion.churn\n")  # no longer TOML
    newer = models.good("carol", seed=7)
    kept = watcher.poll()
    assert "mlops.toml" in kept.problem and [r.version for r in kept.started] == [newer.version]


def test_watch_runs_in_a_thread_until_stopped(ws, tmp_path):
    models, _champ, _cand = champion_and_candidate(ws, tmp_path)
    root = project(tmp_path, '[promotion.churn]\ntrigger = "new-version"\n')
    stop = threading.Event()
    seen: list = []
    watcher = TriggerWatcher(ws, lambda: load_policies(root), run=False, on_started=seen.append)
    thread = threading.Thread(target=watcher.watch, args=(stop,), kwargs={"interval": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        newer = models.good("carol", seed=7)
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [r.version for r in seen][-1] == newer.version and len(seen) == 2


def test_promote_watch_prints_what_it_started_and_stops_on_sigterm(ws, tmp_path):
    models, _champ, cand = champion_and_candidate(ws, tmp_path)
    root = project(tmp_path, '[promotion.churn]\ntrigger = "new-version"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    once = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(ws.root), "promote", "watch",
                           "--project", str(root), "--once", "--no-run", "--json"],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert once.returncode == 0, once.stderr
    assert [json.loads(line)["version"] for line in once.stdout.splitlines()] == [cand.version]
    proc = subprocess.Popen([sys.executable, "-m", "mlops_desktop", "--home", str(ws.root), "promote", "watch",
                             "--project", str(root), "--interval", "0.2", "--no-run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(3)  # started and polling (the first poll finds nothing new: the candidate has its request)
        newer = models.good("carol", seed=7)
        line = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not line.startswith("started"):
            line = proc.stdout.readline() if proc.stdout else ""
        assert f"churn/{newer.version} under policy churn" in line, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    bad = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(ws.root), "promote", "watch",
                          "--project", str(root), "--interval", "0"], capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    assert bad.returncode != 0 and "--interval must be positive" in bad.stderr and "Traceback" not in bad.stderr
