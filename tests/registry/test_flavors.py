"""The ONNX fast path (verified, or refused with the reason when it does not reproduce the model), PyTorch with
weights_only loading, and the python flavor with its code copied into the bundle."""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_desktop import registry
from mlops_desktop.errors import UsageError
from mlops_desktop.registry.bundle import load_predictor_from_dir
from tests.registry.conftest import log_sklearn_run


def test_onnx_fast_path_is_verified_and_serves(ws, churn_run, churn, churn_model):
    mv = registry.register(ws, churn_run, "churn").version
    assert mv.serving_path == "onnxruntime"
    fast = registry.open_version_bundle(ws, mv).fast_path
    assert fast["status"] == "verified" and {c["sample"] for c in fast["checks"]} == {"input example",
                                                                                        "held-out sample"}
    assert all(c["labels_differing"] == 0 and c["max_abs_diff"] <= 1e-4 for c in fast["checks"])
    x = churn.drop(columns=["churned"])
    cols = {c: x[c].to_numpy() for c in x}
    onnx = registry.load_predictor(ws, mv)
    plain = registry.load_predictor(ws, mv, prefer_onnx=False)
    assert (onnx.serving_path, plain.serving_path) == ("onnxruntime", "sklearn")
    np.testing.assert_array_equal(onnx.predict(cols)["prediction"], churn_model.predict(x))
    np.testing.assert_allclose(onnx.predict(cols)["probabilities"], churn_model.predict_proba(x), atol=1e-4)


def test_a_conversion_that_mismatches_falls_back_to_sklearn(ws, tmp_path):
    """Inputs near 1e8 that differ by less than float32 resolves: ONNX (float32) rounds them, sklearn does not."""
    from sklearn.linear_model import LinearRegression

    from tests.registry.conftest import fit_pipeline

    rng = np.random.default_rng(0)
    x = 1e8 + rng.uniform(0, 100, 300)
    frame = pd.DataFrame({"x": x, "y": x - 1e8})
    model = fit_pipeline(frame.rename(columns={"y": "churned"}), LinearRegression())
    run = log_sklearn_run(ws, tmp_path, model, frame.rename(columns={"y": "churned"}))
    result = registry.register(ws, run, "big-numbers")
    mv = result.version
    fast = registry.open_version_bundle(ws, mv).fast_path
    assert fast["status"] == "mismatch" and "differ by more than the tolerance" in fast["reason"]
    assert "file" not in fast and not (registry.bundle_dir(ws, mv) / "fast" / "model.onnx").exists()
    assert mv.serving_path == "sklearn" and registry.load_predictor(ws, mv).serving_path == "sklearn"
    assert any("no ONNX fast path (mismatch)" in w for w in result.warnings)
    out = registry.load_predictor(ws, mv).predict({"x": x})
    np.testing.assert_allclose(out["prediction"], model.predict(frame[["x"]]))


def _torch_mlp_run(ws, tmp_path: Path, task: str) -> tuple[str, pd.DataFrame]:
    import mlops_desktop.tracking as mt
    from mlops_desktop.recipes import torch_mlp

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300),
                          "kind": rng.choice(["x", "y"], 300)})
    frame["label"] = np.where(frame.a + (frame.kind == "x") > 0.4, "up", "down") if task == "classification" \
        else 3 * frame.a - frame.b
    csv = tmp_path / "t.csv"
    frame.to_csv(csv, index=False)
    mt_home = str(ws.root)
    import os

    old = os.environ.get("MLOPS_DESKTOP_HOME")
    os.environ["MLOPS_DESKTOP_HOME"] = mt_home
    try:
        torch_mlp.run({"data": str(csv), "target": "label", "epochs": "3", "hidden": "8", "task": task,
                       "checkpoint_dir": str(tmp_path / "ckpt"), "register": f"mlp-{task[:5]}"})
    finally:
        if old is None:
            os.environ.pop("MLOPS_DESKTOP_HOME")
        else:
            os.environ["MLOPS_DESKTOP_HOME"] = old
    assert mt.active_run() is None
    return registry.resolve(ws, f"mlp-{task[:5]}").run_uuid or "", frame


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_torch_mlp_recipe_registers_and_the_bundle_reproduces_the_network(ws, tmp_path, task):
    import torch

    from mlops_desktop.recipes.torch_mlp import build_model, encode

    run, frame = _torch_mlp_run(ws, tmp_path, task)
    mv = registry.resolve(ws, f"mlp-{task[:5]}")
    assert mv.flavor == "pytorch" and mv.serving_path == "torch" and mv.run_uuid == run
    bundle = registry.open_version_bundle(ws, mv)
    config = bundle.flavor_config
    assert config["factory"] == "mlops_desktop.recipes.torch_mlp:build_model" and config["code"] is None
    # the same network, rebuilt by hand from the run's own artifact
    saved = torch.load(ws.tracking.artifact_file(run, "model/model.pt"), weights_only=True)
    meta = json.loads(ws.tracking.artifact_file(run, "model/MLmodel.json").read_text())
    net = build_model(len(meta["columns"]), meta["hidden"], meta["n_out"], meta["dropout"])
    net.load_state_dict(saved["model"])
    x = frame.drop(columns=["label"])
    with torch.no_grad():
        logits = net.eval()((torch.from_numpy(encode(x, meta["columns"]).to_numpy("float32")) - saved["mean"])
                            / saved["std"])
    out = load_predictor_from_dir(bundle.path).predict({c: x[c].to_numpy() for c in x})
    if task == "classification":
        np.testing.assert_array_equal(out["prediction"], np.array(["down", "up"])[logits.argmax(1).numpy()])
    else:
        np.testing.assert_allclose(out["prediction"], logits[:, 0].numpy() * saved["y_std"] + saved["y_mean"],
                                   rtol=1e-5)


class Evil:
    def __reduce__(self):
        return (print, ("this would have run on load",))


def test_torch_weights_only_refuses_pickled_objects(ws, tmp_path):
    import torch

    store = ws.tracking
    run = store.create_run(store.get_or_create_experiment("x").id)
    bad = tmp_path / "weights.pt"
    torch.save({"layer.weight": torch.zeros(2, 2), "hook": Evil()}, bad)
    good = tmp_path / "good.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), good)
    sig = tmp_path / "signature.json"
    sig.write_text(json.dumps({"inputs": [{"name": n, "dtype": "float64"} for n in "abc"], "task": "regression"}))
    for f in (bad, good, sig):
        store.log_artifact(run.uuid, f)
    store.set_terminated(run.uuid, "finished")
    with pytest.raises(UsageError, match="holds more than tensors, so it is not loaded"):
        registry.register(ws, run.uuid, "lin", artifact="weights.pt", flavor="pytorch", factory="torch.nn:Linear",
                          factory_kwargs={"in_features": 3, "out_features": 2})
    with pytest.raises(UsageError, match="needs its architecture"):
        registry.register(ws, run.uuid, "lin", artifact="good.pt", flavor="pytorch")
    with pytest.raises(UsageError, match="do not fit the architecture"):
        registry.register(ws, run.uuid, "lin", artifact="good.pt", factory="torch.nn:Linear",
                          factory_kwargs={"in_features": 4, "out_features": 2})
    mv = registry.register(ws, run.uuid, "lin", artifact="good.pt", factory="torch.nn:Linear",
                           factory_kwargs={"in_features": 3, "out_features": 2},
                           example={"a": [1.0], "b": [2.0], "c": [3.0]}).version
    out = registry.load_predictor(ws, mv).predict({"a": np.ones(4), "b": np.ones(4), "c": np.ones(4)})
    assert out["prediction"].shape == (4, 2)
    assert pickle.dumps  # the refused file was never unpickled: nothing printed, no object built


def test_python_flavor_copies_the_project_code_into_the_bundle(ws, tmp_path):
    project = tmp_path / "project"
    (project / "scoring").mkdir(parents=True)
    (project / "scoring" / "__init__.py").write_text("")
    (project / "scoring" / "rules.py").write_text(textwrap.dedent("""
        import numpy as np

        def predict(columns):
            return {"prediction": np.where(columns["amount"] > 100, "review", "ok")}
    """))
    store = ws.tracking
    run = store.create_run(store.get_or_create_experiment("x").id)
    store.set_terminated(run.uuid, "finished")
    from mlops_desktop.registry.signature import ColumnSpec, Signature

    mv = registry.register(ws, run.uuid, "fraud-rules", flavor="python", entrypoint="scoring.rules:predict",
                           project_dir=project, signature=Signature((ColumnSpec("amount", "float64"),)),
                           example={"amount": [5.0, 500.0]}).version
    root = registry.bundle_dir(ws, mv)
    assert (root / "code" / "scoring" / "rules.py").is_file()
    (project / "scoring" / "rules.py").write_text("raise SystemExit('the project changed')\n")  # the bundle keeps its own
    import subprocess
    import sys

    script = ("from mlops_desktop.registry.bundle import load_predictor_from_dir; import numpy as np\n"
              f"p = load_predictor_from_dir({str(root)!r})\n"
              "print(p.predict({'amount': np.array([1.0, 1000.0])})['prediction'].tolist())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['ok', 'review']"
    assert not list(root.rglob("__pycache__"))  # loading wrote no bytecode into the bundle
    with pytest.raises(UsageError, match="needs --entrypoint"):
        registry.register(ws, run.uuid, "fraud-rules", flavor="python")
