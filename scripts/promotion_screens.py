"""Fill a workspace with a real candidate going through shadow and review, for the Approvals screenshots.

Two managed model servers (champion and challenger of a scikit-learn model registered from real runs), a managed
router mirroring every request to the challenger, live traffic through it, then the policy's checks (contract,
holdout, shadow from the router's comparison log), a few labels, and a second candidate that fails its holdout.

    PYTHONPATH=$PWD .venv/bin/python scripts/promotion_screens.py /tmp/promo-ws
    PYTHONPATH=$PWD .venv/bin/python -m mlops_desktop --home /tmp/promo-ws --screenshot /tmp/a.png \
        --view approvals --size 1600x1000 --theme dark
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import requests

from mlops_desktop import registry
from mlops_desktop.promotion import labels, pipeline, samples
from mlops_desktop.promotion.policy import find_policy
from mlops_desktop.serving import manager, router_manager
from mlops_desktop.workspace import Workspace
from tests.promotion.promo_helpers import Models, rows
from tests.registry.conftest import churn_frame, fit_pipeline


def main(home: str) -> None:
    root = Path(home)
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / "scratch"
    scratch.mkdir(exist_ok=True)
    ws = Workspace.open(root / "ws")
    print("workspace:", ws.root)
    models = Models(ws, scratch)
    champ = models.good("alice", seed=1)
    registry.store(ws).set_alias("churn", "champion", champ.version, reason="first model in production",
                                 actor="alice")
    from sklearn.linear_model import LogisticRegression

    chal = models.register(fit_pipeline(churn_frame(600, seed=3), LogisticRegression(C=0.05, max_iter=500)),
                           actor="bob")
    registry.store(ws).set_alias("churn", "challenger", chal.version, actor="bob")
    servers = [manager.start(ws, "churn@champion", name="churn-champion", port=0),
               manager.start(ws, "churn@challenger", name="churn-challenger", port=0)]
    config = scratch / "churn-ab.toml"
    config.write_text(textwrap.dedent(f"""
        name = "churn-ab"
        stable = "champion"
        [[arms]]
        name = "champion"
        weight = 100
        backends = ["127.0.0.1:{servers[0].port}"]
        [[arms]]
        name = "challenger"
        weight = 0
        backends = ["127.0.0.1:{servers[1].port}"]
        [shadow]
        arm = "challenger"
        percent = 100
        """), encoding="utf-8")
    router = router_manager.start(ws, "churn-ab", config, port=0)
    started = time.time()
    project = scratch / "project"
    project.mkdir(exist_ok=True)
    (project / "mlops.toml").write_text(textwrap.dedent("""
        [promotion.churn]
        trigger = "alias:challenger"
        approvals = 2
        expires = "48h"
        [[promotion.churn.checks]]
        kind = "contract"
        dataset = "churn_holdout@1"
        [[promotion.churn.checks]]
        kind = "holdout"
        dataset = "churn_holdout@1"
        target = "churned"
        require = ["accuracy >= champion - 0.02", "f1_macro >= 0.6"]
        [[promotion.churn.checks]]
        kind = "shadow"
        router = "churn-ab"
        arm = "challenger"
        requests = 300
        require = ["agreement >= 0.8", "error_rate <= 0.01", "p95_latency_ms <= champion * 3"]
        """), encoding="utf-8")
    policy = find_policy(project, "churn")
    req = pipeline.start(ws, chal.ref, policy)
    print("request", req.id, pipeline.run(ws, req.id).state, "(no traffic yet)")
    live = churn_frame(400, seed=21)
    with requests.Session() as s:
        for i, row in enumerate(rows(live)):
            r = s.post(router.url + "/invocations", json={"dataframe_records": [row]},
                       headers={"X-Request-Id": f"live-{i:04d}"}, timeout=30)
            r.raise_for_status()
    time.sleep(2)
    router_manager.stop(ws, "churn-ab")  # closes the comparison segments
    for srv in servers:
        manager.stop(ws, srv.name)       # and the prediction-log segments
    done = pipeline.run(ws, req.id)
    print("request", req.id, done.state, done.message, f"({time.time() - started:.0f} s)")
    kept = samples.load(ws, req.id)
    for s_ in kept[:4]:
        labels.label(ws, req.id, s_.sample, "candidate" if s_.sample % 2 else "champion", actor="carol")
    labels.export(ws, "churn")
    from mlops_desktop.promotion import reviews

    if done.state == "review":
        reviews.decide(ws, req.id, "approve", "holdout +, disagreements on short-tenure basic plans favour it",
                       actor="carol", name="Carol Reviewer")
    bad = models.bad()
    other = pipeline.start(ws, bad.ref, find_policy(project, "churn"))
    print("request", other.id, pipeline.run(ws, other.id).state)
    ws.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/promo-screens")
