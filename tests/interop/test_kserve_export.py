"""`export kserve`: a registered version as an InferenceService manifest, checked field by field against KServe's
published schema as its SDK's generated models carry it (the kserve wheel from PyPI, loaded without its server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_desktop import registry
from mlops_desktop.cli.main import main
from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.interop import openapi_check
from mlops_desktop.interop.kserve_export import build_inference_service

KSERVE = "kserve==0.21.0"


def _wheel_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-desktop" / "wheels"
    base.mkdir(parents=True, exist_ok=True)
    return base


@pytest.fixture(scope="module")
def kserve_models(tmp_path_factory) -> Any:
    """KServe's SDK models (generated from the InferenceService CRD's OpenAPI schema), from its wheel; the package's
    __init__ (its model server, grpc, fastapi...) is never run."""
    import zipfile

    wheels = sorted(_wheel_dir().glob("kserve-0.21.0-*.whl"))
    if not wheels:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(_wheel_dir()),
                               KSERVE], capture_output=True, text=True, timeout=300)
        wheels = sorted(_wheel_dir().glob("kserve-0.21.0-*.whl"))
        if not wheels:
            message = f"could not download {KSERVE}: {proc.stderr.strip()[-300:]}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    root = tmp_path_factory.mktemp("kserve")
    with zipfile.ZipFile(wheels[-1]) as z:
        z.extractall(root, [n for n in z.namelist() if n.startswith("kserve/") and
                            (n.startswith("kserve/models/") or n == "kserve/configuration.py")])
    saved = {k: v for k, v in sys.modules.items() if k == "kserve" or k.startswith("kserve.")}
    package = types.ModuleType("kserve")
    package.__path__ = [str(root / "kserve")]
    sys.modules["kserve"] = package
    try:
        import kserve.models as models  # type: ignore[import-not-found]

        yield models
    finally:
        for key in [k for k in sys.modules if k == "kserve" or k.startswith("kserve.")]:
            del sys.modules[key]
        sys.modules.update(saved)


def _resolver(models: Any):
    import kubernetes.client.models as k8s

    return lambda name: getattr(models, name, None) or getattr(k8s, name, None)


@pytest.fixture
def version(ws, tmp_path) -> Any:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from mlops_desktop.recipes.common import write_model_extras
    from mlops_desktop.recipes.sklearn_recipe import build_pipeline

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"tenure": rng.normal(20, 8, 200), "spend": rng.normal(50, 15, 200)})
    y = np.where(x.tenure < 18, "yes", "no")
    model = build_pipeline(LogisticRegression(max_iter=300), x).fit(x, y)
    run = ws.tracking.create_run(ws.tracking.get_or_create_experiment("churn").id, name="fit")
    folder = tmp_path / "art" / "model"
    folder.mkdir(parents=True)
    sio.dump(model, folder / "model.skops")
    write_model_extras(folder, x, pd.Series(y), "classification", list(model.classes_), x.tail(20),
                       ["sklearn", "numpy", "scipy", "pandas", "skops"])
    (folder / "MLmodel.json").write_text(json.dumps({"flavor": "sklearn", "format": "skops"}))
    ws.tracking.log_artifact(run.uuid, folder)
    ws.tracking.set_terminated(run.uuid, "finished")
    registry.register(ws, run.uuid, "churn")
    registry.store(ws).set_alias("churn", "production", 1, reason="first release")
    return registry.resolve(ws, "churn@production")


IMAGE = "127.0.0.1:5000/mlops/churn@sha256:" + "ab" * 32


def test_the_manifest_matches_kserves_schema(ws, version, kserve_models):
    result = build_inference_service(ws, "churn@production", image=IMAGE, canary_percent=10, min_replicas=1,
                                     max_replicas=3, cpu="500m", memory="512Mi", gpus=1, pull_secret="regcred",
                                     env={"MLOPS_LOG_LEVEL": "info"}, namespace="models")
    m = result.manifest
    assert (m["apiVersion"], m["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = m["spec"]["predictor"]
    [container] = predictor["containers"]
    assert container["image"] == IMAGE and container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi", "nvidia.com/gpu": "1"}
    assert predictor["canaryTrafficPercent"] == 10 and predictor["imagePullSecrets"] == [{"name": "regcred"}]
    assert m["metadata"]["annotations"]["mlops-desktop/bundle-hash"] == version.bundle_hash
    assert openapi_check.check(m, "V1beta1InferenceService", _resolver(kserve_models)) == []


def test_the_schema_check_finds_what_kserve_would_refuse(ws, version, kserve_models):
    """The check can fail: a misspelt field, a field at the wrong level and a wrong type are each named by path."""
    m = build_inference_service(ws, "churn/1", image=IMAGE).manifest
    m["spec"]["predictor"]["canaryTrafficPercnt"] = 10
    m["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 8080
    m["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    m["spec"]["replicas"] = 2
    problems = openapi_check.check(m, "V1beta1InferenceService", _resolver(kserve_models))
    assert "$.spec.predictor.canaryTrafficPercnt: no such field in V1beta1PredictorSpec" in problems
    assert "$.spec.predictor.containers[0].ports[0].containerPort: expected int, got str" in problems
    assert "$.spec.replicas: no such field in V1beta1InferenceServiceSpec" in problems
    assert len(problems) == 3, problems


def test_cli_writes_the_yaml(ws, version, tmp_path, capsys, kserve_models):
    out = tmp_path / "out" / "isvc.yaml"
    assert main(["--home", str(ws.root), "export", "kserve", "churn@production", "-o", str(out),
                 "--image", IMAGE, "--canary-percent", "20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "churn" and doc["version"] == 1 and doc["output"] == str(out)
    manifest = yaml.safe_load(out.read_text())
    assert manifest == doc["manifest"] and manifest["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert openapi_check.check(manifest, "V1beta1InferenceService", _resolver(kserve_models)) == []


def test_bad_input_is_refused_in_words(ws, version, tmp_path, capsys):
    with pytest.raises(UsageError, match="invalid InferenceService name 'Churn_Model'"):
        build_inference_service(ws, "churn/1", image=IMAGE, name="Churn_Model")
    with pytest.raises(UsageError, match="--canary-percent 120"):
        build_inference_service(ws, "churn/1", image=IMAGE, canary_percent=120)
    with pytest.raises(UsageError, match="invalid --memory '1 GB'"):
        build_inference_service(ws, "churn/1", image=IMAGE, memory="1 GB")
    with pytest.raises(UsageError, match="invalid image reference"):
        build_inference_service(ws, "churn/1", image="img; rm -rf /")
    with pytest.raises(NotFoundError, match="no image of churn/1 is recorded") as info:
        build_inference_service(ws, "churn/1")
    assert "images build churn/1" in (info.value.hint or "")
    out = tmp_path / "x.yaml"
    assert main(["--home", str(ws.root), "export", "kserve", "churn@nope", "-o", str(out), "--image", IMAGE]) == 3
    assert not out.exists() and "Traceback" not in capsys.readouterr().err
