"""Bundles are verified on every load (edited, missing, added file; edited manifest) and load from the directory
alone; unsafe formats (untrusted skops types, pickles, non-tensor torch files) are refused in words."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlops_desktop import registry
from mlops_desktop.errors import UsageError
from mlops_desktop.registry.bundle import MANIFEST, BundleError, load_predictor_from_dir
from tests.registry.conftest import log_sklearn_run


def _writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


@pytest.fixture
def version(ws, churn_run):
    return registry.register(ws, churn_run, "churn").version


def test_bundle_layout_and_manifest_cover_every_file(ws, version):
    root = registry.bundle_dir(ws, version)
    assert root.name == version.bundle_hash
    manifest = json.loads((root / MANIFEST).read_text())
    assert set(manifest["files"]) == {p.relative_to(root).as_posix() for p in root.rglob("*")
                                      if p.is_file() and p.name != MANIFEST}
    assert manifest["environment"]["packages"]["scikit-learn"] and manifest["environment"]["python"]
    assert "recorded" not in manifest["environment"]  # read from the training environment, not at registration
    assert manifest["source"]["run"] == version.run_uuid


@pytest.mark.parametrize("damage, message", [
    ("edit", "file model/model.skops no longer matches its recorded sha256"),
    ("delete", "file input_example.json is missing"),
    ("add", "file model/extra.py was added"),
    ("manifest", "its manifest bundle.json was edited"),
])
def test_a_tampered_bundle_is_refused_in_words(ws, version, damage, message):
    root = registry.bundle_dir(ws, version)
    if damage == "edit":
        with _writable(root / "model" / "model.skops").open("r+b") as fh:
            fh.seek(200)
            byte = fh.read(1)
            fh.seek(200)
            fh.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "delete":
        (root / "input_example.json").unlink()
    elif damage == "add":
        (root / "model" / "extra.py").write_text("import os\n")
    else:  # a consistent-looking edit: change the signature, keep valid canonical JSON
        manifest = json.loads((root / MANIFEST).read_text())
        manifest["signature"]["classes"] = ["yes", "no"]
        _writable(root / MANIFEST).write_bytes(json.dumps(manifest, sort_keys=True, separators=(",", ":"))
                                               .encode())
    with pytest.raises(BundleError, match=message):
        registry.load_predictor(ws, "churn/1")
    with pytest.raises(BundleError, match=message):
        load_predictor_from_dir(root)  # the directory's name is the expected hash


def test_loads_from_the_bundle_directory_alone_in_another_process(ws, version, tmp_path, churn, churn_model):
    copy = tmp_path / "container" / "model"
    shutil.copytree(registry.bundle_dir(ws, version), copy)
    x = churn.drop(columns=["churned"]).head(20)
    x.to_parquet(tmp_path / "rows.parquet")
    script = (
        "import sys, pandas as pd, numpy as np\n"
        "from mlops_desktop.registry.bundle import load_predictor_from_dir\n"
        f"p = load_predictor_from_dir({str(copy)!r}, {version.bundle_hash!r})\n"
        f"x = pd.read_parquet({str(tmp_path / 'rows.parquet')!r})\n"
        "out = p.predict({c: x[c].to_numpy() for c in x.columns})\n"
        "print(p.serving_path, ','.join(map(str, out['prediction'])))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")} | {"HOME": str(tmp_path / "nohome")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    path, labels = done.stdout.split()
    assert path in ("onnxruntime", "sklearn") and labels.split(",") == list(churn_model.predict(x))
    assert not list(tmp_path.glob("nohome/.local/share/mlops-desktop*"))  # no workspace was opened or made
    with pytest.raises(BundleError, match="manifest bundle.json was edited"):
        load_predictor_from_dir(copy, "0" * 64)


class NotTrusted:
    """A class skops does not know: loading it would run project code."""


def test_skops_file_with_untrusted_types_is_refused(ws, tmp_path, churn):
    from sklearn.preprocessing import FunctionTransformer

    from tests.registry.conftest import fit_pipeline

    model = fit_pipeline(churn)
    model.steps.insert(0, ("hook", FunctionTransformer(func=_identity)))
    run = log_sklearn_run(ws, tmp_path, model, churn)
    with pytest.raises(UsageError, match=r"contains types that are not trusted: .*_identity"):
        registry.register(ws, run, "churn")
    assert registry.store(ws).list_models() == []
    assert not list(Path(ws.paths.models).glob("[0-9a-f]*"))  # no bundle left behind


def _identity(x):
    return x


def test_pickles_are_never_loaded(ws, tmp_path, churn_model):
    import pickle

    store = ws.tracking
    run = store.create_run(store.get_or_create_experiment("x").id)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(churn_model))
    store.log_artifact(run.uuid, path)
    store.set_terminated(run.uuid, "finished")
    with pytest.raises(UsageError, match="model.pkl is a pickle; pickled scikit-learn models are never loaded"):
        registry.register(ws, run.uuid, "churn", artifact="model.pkl")


def test_wrong_flavor_for_an_artifact_is_refused(ws, churn_run):
    with pytest.raises(UsageError, match="is a sklearn model .* not pytorch"):
        registry.register(ws, churn_run, "churn", flavor="pytorch")
    with pytest.raises(UsageError, match="not an .onnx file"):
        registry.register(ws, churn_run, "churn", artifact="model/model.skops", flavor="onnx")
    with pytest.raises(UsageError, match="not a PyTorch weights file"):
        registry.register(ws, churn_run, "churn", artifact="model/model.skops", flavor="pytorch",
                          factory="torch.nn:Identity")
    with pytest.raises(UsageError, match="not a skops file"):
        registry.register(ws, churn_run, "churn", artifact="model/signature.json", flavor="sklearn")


def test_a_running_run_and_a_missing_artifact_are_refused(ws, churn_run):
    store = ws.tracking
    live = store.create_run(store.get_or_create_experiment("x").id)
    with pytest.raises(UsageError, match="still running"):
        registry.register(ws, live.uuid, "churn")
    from mlops_desktop.errors import NotFoundError

    with pytest.raises(NotFoundError, match="has no artifact 'model/nope.skops'"):
        registry.register(ws, churn_run, "churn", artifact="model/nope.skops")
    store.set_terminated(live.uuid, "finished")
    with pytest.raises(UsageError, match="has no model artifact"):
        registry.register(ws, live.uuid, "churn")


def test_input_example_and_signature_in_the_bundle(ws, version, churn):
    example = registry.input_example(ws, version)
    assert example["tenure"].dtype == np.float64 and example["calls"].dtype == np.int64
    assert list(example["plan"]) == list(churn["plan"].head(5))


def test_loading_a_scikit_learn_bundle_does_not_import_torch(tmp_path):
    """skops lists sklearn's estimators at import, which imported torch through sklearn's array-API shim: seconds of
    start-up for every server. A fresh process loads and uses a skops model without torch."""
    import subprocess
    import sys

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "m.skops"
    sio.dump(LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]), path)
    code = ("import sys\nfrom mlops_desktop.registry.flavors.sklearn import load_skops\n"
            f"model = load_skops({str(path)!r})\nassert list(model.predict([[0.1], [2.9]])) == [0, 1]\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
