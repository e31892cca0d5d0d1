"""The notebook helpers, the example notebook executed by nbclient against a demo workspace, and JupyterLab."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlops_desktop.errors import MlopsError, UsageError
from mlops_desktop.notebook import open as open_lab
from mlops_desktop.notebook.prefill import write_notebook

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "notebooks" / "getting-started.ipynb"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    from mlops_desktop.demo import fill_demo

    home = tmp_path_factory.mktemp("demo") / "ws"
    fill_demo(home, with_torch=False)
    return home


def run_notebook(path: Path, home: Path, timeout: int = 600):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(str(path), as_version=4)
    old = os.environ.get("MLOPS_DESKTOP_HOME")
    os.environ["MLOPS_DESKTOP_HOME"] = str(home)  # the kernel inherits it, as under `mlops-desktop notebook`
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("MLOPS_DESKTOP_HOME", None)
        else:
            os.environ["MLOPS_DESKTOP_HOME"] = old
    return nb


def outputs(nb, mime):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if mime in o.get("data", {})]


def test_example_notebook_runs_against_the_demo_workspace(demo_home):
    nb = run_notebook(EXAMPLE, demo_home)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert len(outputs(nb, "image/png")) == 2  # the dataset histogram and the runs' curves
    tables = "".join(o["data"]["text/plain"] for o in outputs(nb, "text/plain"))
    assert "wine" in tables and "class_0" in tables and "train_loss" in tables


def test_lab_frames(demo_home):
    with open_lab(demo_home) as lab:
        lazy = lab.dataset("wine")
        assert type(lazy).__name__ == "LazyFrame" and lazy.collect().height > 100
        frame = lab.dataset("wine@1", "pandas")
        assert type(frame).__name__ == "DataFrame" and "cultivar" in frame.columns
        runs = lab.runs("wine-gbm-sweep", "params.max_depth >= 2", order_by=["metrics.val_acc DESC"])
        assert len(runs) == 6 and runs["metrics.val_acc"].is_monotonic_decreasing
        assert runs["params.max_depth"].isin([2, 3]).all()  # numbers stay numbers
        series = lab.series(runs.iloc[0]["uuid"], "train_loss")
        assert list(series.columns) == ["step", "timestamp", "value"] and series["step"].tolist() == list(range(80))
        assert len(lab.series(runs.iloc[0]["uuid"], "train_loss", points=10)) < 80
        model = lab.model("iris-classifier@production")  # registered by the demo
        example = lab.model_example("iris-classifier@production")
        assert example and set(model.signature.input_names) <= set(example)
        out = model.predict(example)
        assert len(out["prediction"]) == len(next(iter(example.values())))
        with pytest.raises(MlopsError, match="wine"):
            lab.model("wine@production")  # no such model: the registry's own words


def test_prefilled_notebooks_run(demo_home, tmp_path):
    with open_lab(demo_home) as lab:
        run = lab.runs("wine-gbm-sweep", "params.max_depth >= 2").iloc[0]["uuid"]
    folder = tmp_path / "notebooks"
    ds = write_notebook(folder, "dataset", "wine@1")
    rn = write_notebook(folder, "run", run, metrics=["val_loss"])
    mv = write_notebook(folder, "model", "iris-classifier@production")
    assert ds.name == "dataset-wine_1.ipynb" and write_notebook(folder, "dataset", "wine@1").name == \
        "dataset-wine_1-2.ipynb"
    for path in (ds, rn, mv):
        nb = run_notebook(path, demo_home)
        assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert outputs(run_notebook(rn, demo_home), "image/png")
    with pytest.raises(UsageError):
        write_notebook(folder, "pipeline", "x")
    # a hostile ref stays a string literal, never code
    evil = write_notebook(folder, "dataset", 'x"); import os; os.system("touch pwned"); ("')
    assert not (folder / "pwned").exists()
    assert 'lab.dataset("x\\"); import os' in "".join(json.loads(evil.read_text())["cells"][2]["source"])


def test_jupyterlab_on_loopback_with_a_token(demo_home, tmp_path):
    pytest.importorskip("jupyterlab")
    from mlops_desktop.notebook.server import start_jupyterlab

    server = start_jupyterlab(demo_home, notebook_dir=tmp_path / "nb", log=tmp_path / "lab.log")
    try:
        assert (tmp_path / "nb" / "getting-started.ipynb").exists()  # the example is copied in once
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{server.base_url}/api/contents", timeout=10)  # noqa: S310
        assert denied.value.code == 403
        with urllib.request.urlopen(f"{server.base_url}/api/contents?token={server.token}",  # noqa: S310
                                    timeout=10) as ok:
            names = [item["name"] for item in json.loads(ok.read())["content"]]
        assert "getting-started.ipynb" in names
        port_hex = f"{server.port:04X}"
        listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if line.split()[1].endswith(":" + port_hex) and line.split()[3] == "0A"]
        assert listening == ["0100007F:" + port_hex]  # 127.0.0.1 only
        assert server.token not in " ".join(Path(f"/proc/{server.process.pid}/cmdline").read_text().split("\0"))
        assert server.url(tmp_path / "nb" / "getting-started.ipynb").startswith(
            f"http://127.0.0.1:{server.port}/lab/tree/getting-started.ipynb?token=")
    finally:
        server.stop()
    assert server.process.poll() is not None


def test_open_in_notebook_serves_the_prefilled_notebook(demo_home, monkeypatch):
    """What the GUI's "Open in notebook" calls: the notebook is written and a real JupyterLab serves it."""
    pytest.importorskip("jupyterlab")
    import signal
    import time

    from mlops_desktop.notebook.prefill import open_in_notebook

    monkeypatch.setenv("BROWSER", "true")  # webbrowser runs `true URL`: no browser in tests
    path, process = open_in_notebook(demo_home, "dataset", "wine")
    log = demo_home / "logs" / "jupyterlab.log"
    try:
        assert path.parent == demo_home / "notebooks" and path.exists()
        deadline = time.monotonic() + 180
        while "/lab/tree/dataset-wine.ipynb?token=" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "JupyterLab did not start"
            time.sleep(0.5)
        server_pid = int(next(line.split()[0] for line in os.popen("ps -o pid= -o ppid= -ax").read().splitlines()
                              if line.split()[1] == str(process.pid)))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{server_pid}").exists() and time.monotonic() < deadline:  # the CLI stops its server
        time.sleep(0.2)
    assert not Path(f"/proc/{server_pid}").exists()
