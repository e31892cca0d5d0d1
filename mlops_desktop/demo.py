"""Fill a workspace with real demo runs: scikit-learn models on its bundled datasets, a sweep, a short PyTorch run.

Everything goes through the tracking API (``mlops_desktop.tracking``), so the data is what a user's training code
would produce. Heavy libraries are imported inside the functions. Runs in well under a minute on two cores.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.progress import Progress


@dataclass
class DemoResult:
    home: str
    experiments: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    runs: int = 0
    failed: int = 0
    running: int = 0
    models: list[str] = field(default_factory=list)
    seconds: float = 0.0
    model_runs: list[tuple[str, str]] = field(default_factory=list)  # (model:run name, run uuid) to register

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "model_runs"}


class DemoFailure(RuntimeError):
    """Raised on purpose inside one demo run so the workspace has a real failed run."""


def _split(x: Any, y: Any, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y if len(set(y)) < 20 else None)


def _artifact_json(tmp: Path, name: str, payload: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(json.dumps(payload, indent=2, default=float), encoding="utf-8")
    return path


def _classifiers(home: Path, tmp: Path, result: DemoResult) -> None:
    """Iris: four model families, each with fold-by-fold cross-validation as steps."""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    import mlops_desktop.tracking as mt

    data = load_iris()
    x_train, x_test, y_train, y_test = _split(data.data, data.target)
    models: list[tuple[str, Any, dict[str, Any]]] = [
              ("logreg", LogisticRegression(C=1.0, max_iter=500), {"C": 1.0}),
              ("random-forest", RandomForestClassifier(n_estimators=60, max_depth=4, random_state=0),
               {"n_estimators": 60, "max_depth": 4}),
              ("svm-rbf", SVC(C=2.0, gamma="scale"), {"C": 2.0, "kernel": "rbf"}),
              ("knn-5", KNeighborsClassifier(n_neighbors=5), {"n_neighbors": 5})]
    for name, model, params in models:
        with mt.start_run(experiment="iris-classifiers", name=name, home=home, capture_git=False,
                          tags={"dataset": "iris", "family": type(model).__name__}) as run:
            run.log_params({"model": type(model).__name__, **params, "test_size": 0.25})
            run.log_input("sklearn/iris", "1", context="training")
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
            for step, (tr, va) in enumerate(folds.split(x_train, y_train)):
                model.fit(x_train[tr], y_train[tr])
                run.log_metric("cv_acc", float(accuracy_score(y_train[va], model.predict(x_train[va]))), step=step)
            # the final fit sees named columns and species names, as a served model would
            frame_train, frame_test = _iris_frame(data, x_train), _iris_frame(data, x_test)
            names_train, names_test = data.target_names[y_train], data.target_names[y_test]
            model.fit(frame_train, names_train)
            pred = model.predict(frame_test)
            run.log_metrics({"val_acc": float(accuracy_score(names_test, pred)),
                             "val_f1": float(f1_score(names_test, pred, average="macro")),
                             "train_acc": float(accuracy_score(names_train, model.predict(frame_train)))}, step=5)
            run.log_artifact(_artifact_json(tmp, "confusion_matrix.json",
                                            {"labels": list(map(str, data.target_names)),
                                             "matrix": np.asarray(confusion_matrix(names_test, pred,
                                                                                   labels=data.target_names)).tolist()}))
            _log_model(run, tmp, model, frame_train, names_train, frame_test, "classification")
            result.model_runs.append((f"iris-classifier:{name}", run.uuid))
        result.runs += 1


def _iris_frame(data: Any, x: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(x, columns=[n.replace(" (cm)", "").replace(" ", "_") for n in data.feature_names])


def _log_model(run: Any, tmp: Path, model: Any, x: Any, y: Any, holdout: Any, task: str) -> None:
    """The model as the sklearn recipe logs it (skops, signature, examples, environment), ready to register."""
    import shutil

    import pandas as pd

    from mlops_desktop.recipes.common import write_model_extras
    from mlops_desktop.registry.flavors.sklearn import skops_io

    sio = skops_io()

    folder = tmp / "model"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    sio.dump(model, folder / "model.skops")
    classes = [str(c) for c in model.classes_] if task == "classification" else None
    write_model_extras(folder, x, pd.Series(y, name="target"), task, classes, holdout,
                       ["sklearn", "numpy", "scipy", "pandas", "skops"])
    (folder / "MLmodel.json").write_text(json.dumps({"flavor": "sklearn", "format": "skops"}), encoding="utf-8")
    run.log_artifact(folder)


def _models(home: Path, result: DemoResult) -> None:
    """Register the iris and diabetes models, with aliases that moved and one rollback, all in the audit log."""
    from mlops_desktop import registry
    from mlops_desktop.workspace import Workspace

    with Workspace.open(home) as ws:
        for key, run_uuid in result.model_runs:
            name = key.split(":", 1)[0]
            registry.register(ws, run_uuid, name)
            if name not in result.models:
                result.models.append(name)
        store = registry.store(ws)
        store.set_alias("iris-classifier", "production", 1, reason="first release: logistic regression baseline")
        store.set_alias("iris-classifier", "production", 2, reason="random forest: better macro F1 on the holdout")
        store.set_alias("iris-classifier", "challenger", 3, reason="SVM under evaluation")
        store.set_alias("iris-classifier", "production", 4, reason="kNN matched the forest at a tenth of the size")
        store.rollback("iris-classifier", "production", reason="kNN latency spiked under load; back to the forest")
        store.set_alias("iris-classifier", "champion", 2, reason="best validated model")
        if "diabetes-regressor" in result.models:
            versions = store.list_versions("diabetes-regressor")
            store.set_alias("diabetes-regressor", "production", versions[0].version, reason="ridge baseline")
            store.set_alias("diabetes-regressor", "challenger", versions[-1].version, reason="boosting candidate")


def _lake(home: Path, tmp: Path, result: DemoResult) -> None:
    """Wine as a lake dataset: a CSV export with a few bad rows, ingested under a contract (rejects kept aside)."""
    import csv

    from sklearn.datasets import load_wine

    from mlops_desktop.data.contract import contract_from_dict
    from mlops_desktop.data.ingest import ingest
    from mlops_desktop.workspace import Workspace

    data = load_wine()
    names = [n.replace("/", "_") for n in data.feature_names]
    path = tmp / "wine.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample_id", *names, "cultivar"])
        for i, (row, label) in enumerate(zip(data.data, data.target, strict=True)):
            values = [f"{v:.4g}" for v in row]
            if i in (17, 101):
                values[0] = "-1"  # an impossible alcohol level
            if i == 150:
                values[2] = "n/a"  # a cell that is not a number
            writer.writerow([i, *values, f"class_{label}"])
    contract = contract_from_dict({
        "columns": {"sample_id": {"type": "int64", "nullable": False, "unique": True},
                    "alcohol": {"type": "float64", "min": 0},
                    "ash": {"type": "float64", "min": 0},
                    "cultivar": {"allowed": ["class_0", "class_1", "class_2"]}},
    }, "demo wine contract")
    ws = Workspace.open(home)
    try:
        ingest(ws, [str(path)], "wine", contract=contract)
    finally:
        ws.close()
    result.datasets.append("wine")


def _sweep(home: Path, tmp: Path, result: DemoResult) -> None:
    """Wine: a gradient-boosting sweep (parent run + one child per grid point) with per-iteration learning curves."""
    import itertools

    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import log_loss

    import mlops_desktop.tracking as mt

    data = load_wine()
    x_train, x_test, y_train, y_test = _split(data.data, data.target, seed=1)
    grid = list(itertools.product([0.03, 0.1, 0.3], [2, 3]))
    with mt.start_run(experiment="wine-gbm-sweep", name="sweep lr x depth", home=home, capture_git=False,
                      tags={"sweep": "grid", "dataset": "wine"}) as parent:
        parent.log_params({"grid.learning_rate": "0.03,0.1,0.3", "grid.max_depth": "2,3"})
        best = 0.0
        for i, (lr, depth) in enumerate(grid):
            with mt.start_run(experiment="wine-gbm-sweep", name=f"lr={lr} depth={depth}", home=home,
                              parent_run_id=parent.uuid, capture_git=False, tags={"dataset": "wine"}) as run:
                run.log_params({"learning_rate": lr, "max_depth": depth, "n_estimators": 80, "subsample": 0.8})
                run.log_input("wine", "1")  # the lake dataset of _lake: lineage both ways
                model = GradientBoostingClassifier(learning_rate=lr, max_depth=depth, n_estimators=80,
                                                   subsample=0.8, random_state=0)
                model.fit(x_train, y_train)
                for step, (proba_tr, proba_te) in enumerate(zip(model.staged_predict_proba(x_train),
                                                                model.staged_predict_proba(x_test), strict=True)):
                    run.log_metrics({
                        "train_loss": float(log_loss(y_train, proba_tr, labels=[0, 1, 2])),
                        "val_loss": float(log_loss(y_test, proba_te, labels=[0, 1, 2])),
                        "val_acc": float(np.mean(np.argmax(proba_te, axis=1) == y_test)),
                    }, step=step)
                acc = float(np.mean(model.predict(x_test) == y_test))
                best = max(best, acc)
                parent.log_metric("best_val_acc", best, step=i)
            result.runs += 1
    result.runs += 1


def _sgd(home: Path, tmp: Path, result: DemoResult) -> None:
    """Breast cancer: SGD epochs with partial_fit (loss curves), and one run that fails on purpose."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    import mlops_desktop.tracking as mt

    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = _split(data.data, data.target, seed=2)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    rng = np.random.default_rng(0)
    for alpha in (1e-4, 1e-3, 1e-2):
        with mt.start_run(experiment="breast-cancer-sgd", name=f"sgd alpha={alpha:g}", home=home,
                          capture_git=False, tags={"dataset": "breast_cancer"}) as run:
            run.log_params({"alpha": alpha, "loss": "log_loss", "epochs": 40, "batch_size": 32})
            model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0)
            step = 0
            for epoch in range(40):
                order = rng.permutation(len(x_train))
                for start in range(0, len(order), 32):
                    batch = order[start:start + 32]
                    model.partial_fit(x_train[batch], y_train[batch], classes=[0, 1])
                    step += 1
                run.log_metrics({"train_loss": float(log_loss(y_train, model.predict_proba(x_train))),
                                 "val_loss": float(log_loss(y_test, model.predict_proba(x_test))),
                                 "val_acc": float(model.score(x_test, y_test))}, step=epoch)
        result.runs += 1
    try:
        with mt.start_run(experiment="breast-cancer-sgd", name="sgd diverged", home=home, capture_git=False,
                          tags={"dataset": "breast_cancer"}) as run:
            run.log_params({"alpha": 1e-6, "learning_rate": "constant", "eta0": 50.0, "epochs": 40})
            model = SGDClassifier(loss="log_loss", alpha=1e-6, learning_rate="constant", eta0=50.0, random_state=0)
            for epoch in range(6):
                model.partial_fit(x_train, y_train, classes=[0, 1])
                loss = float(np.mean(np.abs(model.coef_))) * (epoch + 1) ** 2
                run.log_metric("train_loss", loss, step=epoch)
            raise DemoFailure("training diverged: train_loss exploded (learning rate too high)")
    except DemoFailure:
        result.failed += 1
    result.runs += 1


def _regression(home: Path, tmp: Path, result: DemoResult) -> None:
    """Diabetes: linear models and gradient boosting, RMSE and R², with a boosting learning curve."""
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Lasso, Ridge
    from sklearn.metrics import r2_score

    import mlops_desktop.tracking as mt

    data = load_diabetes()
    x_train, x_test, y_train, y_test = _split(data.data, data.target, seed=3)
    for name, model, params in (("ridge", Ridge(alpha=1.0), {"alpha": 1.0}),
                                ("lasso", Lasso(alpha=0.1), {"alpha": 0.1}),
                                ("gbr", GradientBoostingRegressor(n_estimators=120, learning_rate=0.05,
                                                                  max_depth=3, random_state=0),
                                 {"n_estimators": 120, "learning_rate": 0.05, "max_depth": 3})):
        with mt.start_run(experiment="diabetes-regression", name=name, home=home, capture_git=False,
                          tags={"dataset": "diabetes", "task": "regression"}) as run:
            run.log_params({"model": type(model).__name__, **params})
            run.log_input("sklearn/diabetes", "1")
            model.fit(x_train, y_train)
            if hasattr(model, "staged_predict"):
                for step, pred in enumerate(model.staged_predict(x_test)):
                    run.log_metric("val_rmse", float(np.sqrt(np.mean((pred - y_test) ** 2))), step=step)
            pred = model.predict(x_test)
            run.log_metrics({"rmse": float(np.sqrt(np.mean((pred - y_test) ** 2))),
                             "r2": float(r2_score(y_test, pred))})
            if name in ("ridge", "gbr"):
                import pandas as pd

                names = [str(n) for n in data.feature_names]
                frame_train, frame_test = pd.DataFrame(x_train, columns=names), pd.DataFrame(x_test, columns=names)
                model.fit(frame_train, y_train)
                _log_model(run, tmp, model, frame_train, y_train, frame_test, "regression")
                result.model_runs.append((f"diabetes-regressor:{name}", run.uuid))
            coefs = getattr(model, "coef_", getattr(model, "feature_importances_", None))
            run.log_artifact(_artifact_json(tmp, "model_summary.json",
                                            {"features": list(data.feature_names),
                                             "weights": [] if coefs is None else
                                             [float(c) for c in np.ravel(coefs)]}))
        result.runs += 1


def _torch(home: Path, tmp: Path, result: DemoResult) -> None:
    """Digits: a small PyTorch MLP for a few epochs, loss logged per batch (tensors, no host sync in the loop)."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    import mlops_desktop.tracking as mt

    torch.manual_seed(0)
    torch.set_num_threads(2)
    data = load_digits()
    x_train, x_test, y_train, y_test = _split(data.data / 16.0, data.target, seed=4)
    xt, yt = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)
    xv, yv = torch.tensor(x_test, dtype=torch.float32), torch.tensor(y_test)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    with mt.start_run(experiment="digits-mlp", name="mlp 64 hidden", home=home, capture_git=False,
                      tags={"dataset": "digits", "framework": "pytorch"}) as run:
        run.log_params({"hidden": 64, "lr": 3e-3, "batch_size": 32, "epochs": 12, "optimizer": "adam"})
        run.log_input("sklearn/digits", "1")
        step = 0
        for _epoch in range(12):
            perm = torch.randperm(len(xt))
            for start in range(0, len(perm), 32):
                idx = perm[start:start + 32]
                opt.zero_grad()
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                run.log_metric("train_loss", loss.detach(), step=step)
                step += 1
            with torch.no_grad():
                logits = model(xv)
                run.log_metrics({"val_loss": loss_fn(logits, yv).detach(),
                                 "val_acc": float((logits.argmax(1) == yv).float().mean())}, step=step)
        weights = {k: np.asarray(v).shape for k, v in model.state_dict().items()}
        run.log_artifact(_artifact_json(tmp, "architecture.json", {"layers": str(model), "shapes": weights}))
    result.runs += 1


def _running_and_killed(home: Path, result: DemoResult) -> None:
    """A run that looks like it is still training (no local process to reap it) and one that was killed."""
    import numpy as np

    from mlops_desktop.workspace import Workspace

    with Workspace.open(home) as ws:
        store = ws.tracking
        exp = store.get_or_create_experiment("digits-mlp")
        now = time.time()
        for name, status, n in (("mlp 256 hidden (training)", "running", 700), ("mlp 512 hidden", "killed", 300)):
            run = store.create_run(exp.id, name=name, host="gpu-box-1", command="python train.py --hidden 256",
                                   params={"hidden": 256 if "256" in name else 512, "lr": 1e-3, "batch_size": 64,
                                           "epochs": 30, "optimizer": "adam"},
                                   tags={"dataset": "digits", "framework": "pytorch"}, start_time=now - n * 0.5)
            steps = np.arange(n, dtype=np.int64)
            ts = ((now - n * 0.5 + steps * 0.5) * 1000).astype(np.int64)
            rng = np.random.default_rng(n)
            loss = 2.3 * np.exp(-steps / 180) + 0.08 + rng.normal(0, 0.04, n)
            store.log_metric_arrays(run.uuid, "train_loss", steps, ts, loss)
            if status != "running":
                store.set_terminated(run.uuid, status, end_time=now - 60)
            else:
                result.running += 1
            result.runs += 1


def fill_demo(home: str | Path | None, *, progress: Progress | None = None, with_torch: bool = True) -> DemoResult:
    """Create the demo experiments in the workspace at ``home`` (created if needed)."""
    from mlops_desktop.paths import resolve_home

    progress = progress or Progress()
    root = resolve_home(home)
    started = time.perf_counter()
    result = DemoResult(home=str(root))
    steps = [("iris-classifiers", _classifiers), ("wine-gbm-sweep", _sweep), ("breast-cancer-sgd", _sgd),
             ("diabetes-regression", _regression)]
    if with_torch:
        steps.append(("digits-mlp", _torch))
    with tempfile.TemporaryDirectory(prefix="mlops-demo-") as tmp:
        progress.update(0.0, "wine dataset")
        _lake(root, Path(tmp), result)
        for i, (experiment, fn) in enumerate(steps):
            progress.update(i / (len(steps) + 1), experiment)
            fn(root, Path(tmp), result)
            result.experiments.append(experiment)
    progress.update(len(steps) / (len(steps) + 1), "running and killed runs")
    _running_and_killed(root, result)
    progress.update(len(steps) / (len(steps) + 1), "registered models")
    _models(root, result)
    if "digits-mlp" not in result.experiments:
        result.experiments.append("digits-mlp")
    progress.update(1.0, "done")
    result.seconds = round(time.perf_counter() - started, 2)
    return result
