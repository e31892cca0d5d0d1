"""Kubeflow Pipelines export: YAML compiled by the real kfp SDK, re-loaded by kfp, and its commands run here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_desktop.cli.main import main
from mlops_desktop.errors import UsageError
from mlops_desktop.interop.kfp_export import export_kfp

kfp = pytest.importorskip("kfp")
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample_data"
TRAINING = """
[training]
recipe = "sklearn"
params = { estimator = "sklearn.linear_model.Ridge", target = "revenue", features = "trips,avg_fare" }
"""


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "taxi project"
    shutil.copytree(SAMPLE, root)
    with (root / "mlops.toml").open("a") as fh:
        fh.write(TRAINING)
    return root


def executors(yaml_path):
    from kfp.components import load_component_from_file

    component = load_component_from_file(str(yaml_path))  # kfp's own loader: the YAML is a valid pipeline spec
    from google.protobuf.json_format import MessageToDict

    spec = component.pipeline_spec
    out = {}
    for name, executor in MessageToDict(spec.deployment_spec)["executors"].items():
        container = executor["container"]
        out[name.removeprefix("exec-")] = (list(container["command"]) + list(container.get("args", [])),
                                           container["image"], {e["name"]: e["value"] for e in container["env"]})
    deps = {name: list(task.dependent_tasks) for name, task in spec.root.dag.tasks.items()}
    return component, out, deps


def test_compiled_yaml_reloads_with_the_step_commands(project, tmp_path):
    out = tmp_path / "pipeline.yaml"
    result = export_kfp("daily", out, project_dir=project, image="registry.local:5000/taxi:1.0")
    component, execs, deps = executors(out)
    assert component.name == "taxi-project-daily"
    assert [s.display for s in result.steps] == ["daily.clean", "daily.features", "daily.by_zone", "train"]
    for step in result.steps:
        argv, image, env = execs[step.name.replace("_", "-")]
        assert argv == step.argv and image == "registry.local:5000/taxi:1.0"
        assert env == {"MLOPS_DESKTOP_HOME": "/workspace"}
    assert execs["daily-clean"][0] == ["mlops-desktop", "data", "run", "daily.clean", "--project", "/project"]
    train = execs["train"][0]
    assert train[:5] == ["python", "-u", "-m", "mlops_desktop.recipes", "sklearn"]
    assert "data=lake:zone_summary" in train and "target=revenue" in train
    assert deps["daily-features"] == ["daily-clean"] and deps["daily-by-zone"] == ["daily-features"]
    assert deps["train"] == ["daily-by-zone"]


def test_the_yaml_commands_are_what_runs_here(project, tmp_path):
    """Run every container command of the YAML on this machine, in DAG order: it builds the lake and trains."""
    home = tmp_path / "ws"
    env = dict(os.environ, MLOPS_DESKTOP_HOME=str(home))
    cli = str(Path(sys.executable).with_name("mlops-desktop"))
    ingest = subprocess.run([cli, "data", "ingest", str(project / "trips.csv"), "-d", "trips", "--project",
                             str(project)], env=env, capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    out = tmp_path / "pipeline.yaml"
    export_kfp("daily", out, project_dir=project, image_project_dir=str(project))
    _, execs, deps = executors(out)
    done: list[str] = []
    while len(done) < len(execs):
        ready = [n for n in execs if n not in done and all(d in done for d in deps[n])]
        assert ready, "the DAG has a cycle"
        for name in ready:
            argv = list(execs[name][0])
            argv[0] = {"mlops-desktop": cli, "python": sys.executable}[argv[0]]
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, cwd=project)
            assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            done.append(name)
    listing = subprocess.run([cli, "data", "list", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert {d["name"] for d in json.loads(listing.stdout)} >= {"trips", "trips_clean", "trip_features",
                                                                "zone_summary"}
    runs = subprocess.run([cli, "runs", "list", "--json"], env=env, capture_output=True, text=True, timeout=120)
    trained = json.loads(runs.stdout)["runs"]
    assert len(trained) == 1 and trained[0]["status"] == "finished"


def test_bad_input_is_refused_in_words(project, tmp_path):
    with pytest.raises(UsageError, match="has no pipeline 'nightly'"):
        export_kfp("nightly", tmp_path / "p.yaml", project_dir=project)
    with pytest.raises(UsageError, match="not a valid image reference"):
        export_kfp("daily", tmp_path / "p.yaml", project_dir=project, image="Bad Image!")
    with pytest.raises(UsageError, match="unknown training recipe 'xgb'"):
        export_kfp("daily", tmp_path / "p.yaml", project_dir=project, recipe="xgb")
    assert not (tmp_path / "p.yaml").exists()


def test_cli_export_kfp(project, tmp_path, capsys):
    out = tmp_path / "p.yaml"
    code = main(["export", "kfp", "daily", "-o", str(out), "--project", str(project), "--no-training", "--json",
                 "--home", str(tmp_path / "ws")])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["image"] == "local/taxi-project:latest" and [s["display"] for s in result["steps"]][-1] == \
        "daily.by_zone"
    assert out.exists()
    assert main(["export", "kfp", "nope", "-o", str(out), "--project", str(project)]) == 2
    assert "has no pipeline 'nope'" in capsys.readouterr().err
