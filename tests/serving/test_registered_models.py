"""The server over real registered versions: a recipe registers a model, `serve MODEL@ALIAS --detach` serves its
verified bundle, the answers equal the registry's predictor, /version names version, hash and serving path, a
restart moves to another version, and a bundle changed on disk is refused before it serves anything."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import requests

from mlops_desktop import registry
from mlops_desktop.cli.main import main
from mlops_desktop.errors import MlopsError
from mlops_desktop.serving import manager


def _train(home, csv, estimator: str) -> None:
    env = dict(os.environ, MLOPS_DESKTOP_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop.recipes", "sklearn",
                           "--param", f"estimator={estimator}", "--param", f"data={csv}",
                           "--param", "target=churned", "--param", "register=churn"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def registered(ws, tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"tenure": rng.normal(20, 8, n), "spend": rng.normal(50, 15, n),
                          "plan": rng.choice(["basic", "plus", "pro"], n), "calls": rng.integers(0, 6, n)})
    frame["churned"] = np.where((frame.tenure < 15) | (frame.plan == "basic"), "yes", "no")
    csv = tmp_path / "churn.csv"
    frame.to_csv(csv, index=False)
    _train(ws.root, csv, "sklearn.linear_model.LogisticRegression")
    _train(ws.root, csv, "sklearn.ensemble.RandomForestClassifier")
    registry.store(ws).set_alias("churn", "production", 1, reason="first release")
    yield frame
    for server in manager.list_servers(ws):
        if server.state in ("running", "starting"):
            manager.stop(ws, server.name, timeout=20)


def _rows(frame, n=25):
    return frame.drop(columns=["churned"]).head(n)


def test_a_registered_version_is_served_with_the_registrys_answers(ws, registered):
    server = manager.start(ws, "churn@production", port=0)
    assert server.state == "running"
    info = requests.get(server.url + "/version", timeout=5).json()
    version = registry.resolve(ws, "churn@production")
    assert info["model"] == "churn" and info["version"] == "1" and info["bundle_hash"] == version.bundle_hash
    assert info["serving_path"] == version.serving_path  # onnxruntime where the fast path was verified
    rows = _rows(registered)
    answer = requests.post(server.url + "/invocations", json={"dataframe_split": {
        "columns": list(rows.columns), "data": rows.to_numpy().tolist()}}, timeout=10)
    assert answer.status_code == 200, answer.text
    expected = registry.load_predictor(ws, "churn@production").predict({c: rows[c].to_numpy() for c in rows})
    assert answer.json()["predictions"] == expected["prediction"].tolist()
    # the input example registered with the version is accepted as it is
    example = registry.input_example(ws, "churn@production")
    assert example is not None
    records = pd.DataFrame(example).to_dict(orient="records")
    assert requests.post(server.url + "/invocations", json={"dataframe_records": records}, timeout=10).ok
    # a column the signature does not have is named
    bad = requests.post(server.url + "/invocations", json={"dataframe_records": [{"tenure": 1}]}, timeout=10)
    assert bad.status_code in (400, 422) and "spend" in bad.text

    restarted = manager.restart(ws, server.name, "churn/2")
    deadline = time.monotonic() + 30
    while requests.get(restarted.url + "/version", timeout=5).json()["version"] != "2":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_bundle_changed_on_disk_is_refused_before_serving(ws, registered):
    version = registry.resolve(ws, "churn/1")
    folder = registry.bundle_dir(ws, version)
    victim = folder / "files" / "signature.json" if (folder / "files" / "signature.json").exists() else \
        next(p for p in folder.rglob("*") if p.is_file() and p.name != "bundle.json")
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes() + b" ")
    with pytest.raises(MlopsError) as info:
        manager.start(ws, "churn/1", port=0)
    assert "changed" in str(info.value) or "hash" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_serve_cli_refuses_an_unknown_alias_in_words(ws, registered, capsys):
    assert main(["--home", str(ws.root), "serve", "churn@canary", "--detach"]) == 3
    assert "canary" in capsys.readouterr().err
