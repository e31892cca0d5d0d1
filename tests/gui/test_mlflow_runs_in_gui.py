"""A run that the real mlflow package logged (autolog, through our tracking-store plugin) shows in the
Experiments view with its params and metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from gui_helpers import wait_idle

from mlops_desktop.textfmt import fmt_number

SCRIPT = """
import mlflow
import numpy as np
from sklearn.linear_model import Ridge

mlflow.set_experiment("mlflow-autolog")
mlflow.sklearn.autolog(log_models=False)
X = np.array([[1, 1], [1, 2], [2, 2], [2, 3], [3, 5]], dtype=float)
y = np.dot(X, np.array([1.0, 2.0])) + 3
Ridge(alpha=0.5).fit(X, y)
print(mlflow.last_active_run().info.run_id)
"""


def test_experiments_view_lists_an_mlflow_autolog_run(ctx, qtbot):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_"))}
    env["MLFLOW_TRACKING_URI"] = f"mlops-desktop://{ctx.workspace.root}"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[-1]

    from mlops_desktop.gui.app import make_window

    win = make_window(ctx)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    view = win.area("experiments")
    win.navigate("experiments")
    items = lambda: [view.experiments.item(i).text() for i in range(view.experiments.count())]  # noqa: E731
    qtbot.waitUntil(lambda: any(t.startswith("mlflow-autolog  (1)") for t in items()), timeout=20_000)
    row = next(i for i, t in enumerate(items()) if t.startswith("mlflow-autolog"))
    view.experiments.setCurrentRow(row)
    qtbot.waitUntil(lambda: view.model.rowCount() == 1 and view.model.runs[0].uuid == run_id, timeout=20_000)
    model = view.model
    qtbot.waitUntil(lambda: any(c.kind == "metric" for c in model.columns), timeout=20_000)
    headers = {c.key: i for i, c in enumerate(model.columns)}
    metric_cols = [c.key for c in model.columns if c.kind == "metric"]
    assert set(metric_cols) <= {"training_score", "training_r2_score", "training_mean_squared_error",
                                "training_mean_absolute_error", "training_root_mean_squared_error"}
    # as many metric columns as fit beside the params (3 or 4 at 1280 px, by the fonts)
    assert len(metric_cols) >= 3 and [c.key for c in model.columns if c.kind == "param"], "params shown too"
    run = model.runs[0]
    assert run.status == "finished" and run.params["alpha"] == "0.5"
    score = model.data(model.index(0, headers[metric_cols[0]]))
    assert score == fmt_number(run.metrics[metric_cols[0]].last) and score not in ("", "nan")
    assert model.data(model.index(0, 1)) == run.name and run.name, "MLflow's run name is the row's name"
    wait_idle(qtbot, ctx, timeout=60_000)  # the selected run's charts and details load in workers
    win.close()
