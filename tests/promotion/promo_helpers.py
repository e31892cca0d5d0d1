"""Promotion test helpers: real scikit-learn models registered from real runs, a pinned holdout dataset in the
lake, a project with a policy, and a real router with real model servers writing a real shadow log."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_desktop import registry
from tests.registry.conftest import churn_frame, fit_pipeline, log_sklearn_run

FEATURES = ["tenure", "spend", "plan", "calls"]


class Models:
    def __init__(self, ws: Any, tmp: Path) -> None:
        self.ws, self.tmp = ws, tmp
        self.train = churn_frame(600, seed=1)
        holdout = churn_frame(400, seed=5)
        holdout.to_csv(tmp / "holdout.csv", index=False)
        from mlops_desktop.data.ingest import ingest

        ingest(ws, [str(tmp / "holdout.csv")], "churn_holdout")
        self.holdout = holdout
        self.train.to_csv(tmp / "train.csv", index=False)
        ingest(ws, [str(tmp / "train.csv")], "churn_train")

    def register(self, model: Any, *, actor: str, frame: pd.DataFrame | None = None, name: str = "churn") -> Any:
        frame = self.train if frame is None else frame
        run = log_sklearn_run(self.ws, self.tmp, model, frame, inputs=[("churn_train", "1")])
        return registry.register(self.ws, run, name, fast_path=False, actor=actor).version

    def good(self, actor: str = "alice", seed: int = 2) -> Any:
        return self.register(fit_pipeline(churn_frame(600, seed=seed)), actor=actor)

    def bad(self, actor: str = "bob") -> Any:
        """A candidate that always answers the majority class: clearly worse than the champion."""
        from sklearn.dummy import DummyClassifier

        return self.register(fit_pipeline(self.train, DummyClassifier(strategy="constant", constant="yes")),
                             actor=actor)


def champion_and_candidate(ws: Any, tmp: Path, *, candidate_by: str = "bob") -> tuple[Models, Any, Any]:
    models = Models(ws, tmp)
    champ = models.good("alice", seed=1)
    registry.store(ws).set_alias("churn", "champion", champ.version, reason="first model", actor="alice")
    cand = models.good(candidate_by, seed=3)
    return models, champ, cand


def project(tmp: Path, body: str) -> Path:
    root = tmp / "project"
    root.mkdir(exist_ok=True)
    (root / "mlops.toml").write_text(textwrap.dedent(body), encoding="utf-8")
    return root


HOLDOUT_POLICY = """
[promotion.churn]
approvals = {approvals}
allow_self_approval = {self_ok}
expires = "{expires}"
[[promotion.churn.checks]]
kind = "contract"
dataset = "churn_holdout@1"
[[promotion.churn.checks]]
kind = "holdout"
dataset = "churn_holdout@1"
target = "churned"
require = ["accuracy >= champion - 0.05", "f1_macro >= 0.5"]
"""


def holdout_policy(tmp: Path, approvals: int = 1, self_ok: bool = False, expires: str = "72h") -> Path:
    return project(tmp, HOLDOUT_POLICY.format(approvals=approvals, self_ok=str(self_ok).lower(), expires=expires))


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame[FEATURES].to_dict(orient="records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in out]


@contextmanager
def shadow_traffic(ws: Any, tmp: Path, champion_ref: str, candidate_ref: str, n: int,
                   percent: float = 100) -> Iterator[dict[str, Path]]:
    """A real router (champion primary, candidate shadow) in front of two real servers of the registered
    versions, `n` single-row requests from the holdout rows; yields the comparison and prediction-log folders once
    everything is flushed (servers and router stopped)."""
    import requests

    from mlops_desktop.serving.app import ServedModel
    from mlops_desktop.serving.config import LogConfig, ServeConfig
    from tests.serving.router_helpers import config, running_router, wait_for
    from tests.serving.serving_helpers import running

    logs, state = tmp / "predlogs", tmp / "router-state"
    champ = registry.resolve(ws, champion_ref)
    cand = registry.resolve(ws, candidate_ref)

    def served(mv: Any) -> ServedModel:
        return ServedModel(mv.name, str(mv.version), registry.load_predictor(ws, mv, prefer_onnx=False))

    sample = churn_frame(max(n, 50), seed=11)
    with ExitStack() as stack:
        a = stack.enter_context(running(served(champ), ServeConfig(log=LogConfig(directory=logs / "a"))))
        b = stack.enter_context(running(served(cand), ServeConfig(log=LogConfig(directory=logs / "b"))))
        cfg = config([{"name": "champion", "weight": 1, "backends": [a.url]},
                      {"name": "candidate", "weight": 0, "backends": [b.url]}],
                     shadow={"arm": "candidate", "percent": percent}, state_dir=str(state))
        with running_router(cfg) as rr:
            rr.wait_ready()
            with requests.Session() as s:
                for i, row in enumerate(rows(sample.head(n))):
                    r = s.post(rr.url + "/invocations", json={"dataframe_records": [row]},
                               headers={"X-Request-Id": f"req-{i:04d}"}, timeout=30)
                    assert r.status_code == 200, r.text
            wait_for(lambda: rr.call(lambda: not rr.router.shadow.queue))
            wait_for(lambda: rr.call(lambda: rr.router.shadow.stats["mirrored"] + rr.router.shadow.stats["failed"]
                                     >= n * percent / 100 * 0.5))
    yield {"comparisons": state / "shadow", "logs": logs}
