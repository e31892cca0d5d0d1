"""The pipeline as a resumable job over real models and a real lake dataset: checks pass and fail with evidence,
a failed check stops it and notifies, a pass enters the review queue; resuming skips what passed."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_desktop import audit, registry
from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.progress import Progress
from mlops_desktop.promotion import pipeline, requests, reviews
from mlops_desktop.promotion.checks import NOT_AVAILABLE
from mlops_desktop.promotion.policy import find_policy
from tests.promotion.promo_helpers import champion_and_candidate, holdout_policy, project


def test_a_good_candidate_passes_into_review_with_evidence(ws, tmp_path):
    from sklearn.metrics import accuracy_score

    models, champ, cand = champion_and_candidate(ws, tmp_path)
    policy = find_policy(holdout_policy(tmp_path), "churn")
    req = pipeline.start(ws, cand.ref, policy)
    assert (req.state, req.champion_version, req.candidate_by) == ("pending", champ.version, "bob")
    seen: list[float] = []
    req = pipeline.run(ws, req.id, progress=Progress(lambda f, m: seen.append(f)))
    assert req.state == "review", req.message
    assert [c.state for c in req.checks] == ["passed", "passed"] and seen[-1] == 1.0
    holdout = req.checks[1].evidence
    x, y = models.holdout.drop(columns=["churned"]), models.holdout["churned"]
    expected = accuracy_score(y, registry.load_predictor(ws, cand, prefer_onnx=False).predict(
        {c: x[c].to_numpy() for c in x.columns})["prediction"])
    assert holdout["candidate"]["accuracy"] == pytest.approx(expected)
    assert holdout["dataset"] == "churn_holdout@1" and holdout["rows"] == 400
    assert holdout["diff"]["accuracy"] == pytest.approx(holdout["candidate"]["accuracy"]
                                                        - holdout["champion"]["accuracy"])
    assert req.expires_at == pytest.approx(req.review_at + 72 * 3600)
    assert [r.id for r in reviews.queue(ws)] == [req.id]
    kinds = [e.kind for e in audit.events(ws.db, subject=requests.subject(req.id))]
    assert kinds == ["promotion.started", "promotion.check.passed", "promotion.check.passed",
                     "promotion.review.opened"]
    with pytest.raises(UsageError, match="already has an open promotion request"):
        pipeline.start(ws, cand.ref, policy)


def test_a_worse_candidate_fails_the_holdout_stops_and_notifies(ws, tmp_path):
    models, champ, _ = champion_and_candidate(ws, tmp_path)
    bad = models.bad()
    policy = find_policy(holdout_policy(tmp_path), "churn")
    req = pipeline.run(ws, pipeline.start(ws, bad.ref, policy).id)
    assert req.state == "failed" and [c.state for c in req.checks] == ["passed", "failed"]
    assert "accuracy >= champion - 0.05 failed" in req.checks[1].summary
    assert req.checks[1].evidence["candidate"]["accuracy"] < req.checks[1].evidence["champion"]["accuracy"] - 0.05
    notices = requests.unread_notices(ws, mark_read=True)
    assert len(notices) == 1 and notices[0].level == "error" and "check holdout failed" in notices[0].message
    assert requests.unread_notices(ws) == []
    assert reviews.queue(ws) == []
    assert audit.events(ws.db, subject=requests.subject(req.id))[-1].kind == "promotion.failed"
    assert registry.resolve(ws, "churn@champion").version == champ.version


def test_the_input_contract_fails_on_a_column_the_dataset_and_the_champion_lack(ws, tmp_path):
    models, _, _ = champion_and_candidate(ws, tmp_path)
    wider = models.train.assign(region=np.where(models.train.tenure > 20, "north", "south"))
    from tests.registry.conftest import fit_pipeline

    extra = models.register(fit_pipeline(wider), actor="bob", frame=wider)
    req = pipeline.run(ws, pipeline.start(ws, extra.ref, find_policy(holdout_policy(tmp_path), "churn")).id)
    assert req.state == "failed" and req.checks[0].state == "failed" and req.checks[1].state == "pending"
    summary = req.checks[0].summary
    assert "region: the model needs it, churn_holdout@1 has no such column" in summary
    assert "needs input(s) region that churn/1 does not take" in summary
    assert req.checks[0].evidence["new_inputs"] == ["region"]


def test_checks_whose_capability_is_missing_fail_never_pass(ws, tmp_path):
    from mlops_desktop.promotion.checks.backtest import backtest_api
    from mlops_desktop.promotion.checks.image import smoke_test_fn

    _, _, cand = champion_and_candidate(ws, tmp_path)
    root = project(tmp_path, """
        [promotion.churn]
        [[promotion.churn.checks]]
        kind = "image"
        latency_budget_ms = 100
        [[promotion.churn.checks]]
        kind = "backtest"
        dataset = "churn_holdout@1"
        time_col = "tenure"
        test_window = "10"
        require = ["accuracy >= champion - 0.02"]
        """)
    policy = find_policy(root, "churn")
    if smoke_test_fn() is None:
        req = pipeline.run(ws, pipeline.start(ws, cand.ref, policy).id)
        assert req.state == "failed" and req.checks[0].state == "failed"
        assert req.checks[0].summary == f"the image smoke test is {NOT_AVAILABLE}"
    if backtest_api() is None:
        from mlops_desktop.promotion.checks.backtest import BacktestCheck

        check = policy.checks[1]
        assert isinstance(check, BacktestCheck)
        from mlops_desktop.promotion.checks.base import CheckContext

        result = check.run(CheckContext(ws, 0, cand, None, "champion", 0.0, tmp_path))
        assert not result.passed and result.summary == f"back-testing is {NOT_AVAILABLE}"


def test_a_cancelled_run_resumes_at_the_check_it_stopped_in(ws, tmp_path):
    _, _, cand = champion_and_candidate(ws, tmp_path)
    req = pipeline.start(ws, cand.ref, find_policy(holdout_policy(tmp_path), "churn"))
    progress = Progress()
    calls: list[str] = []

    def cb(fraction: float, message: str) -> None:
        calls.append(message)
        if message.startswith("holdout"):
            progress.cancel()

    progress = Progress(cb)
    with pytest.raises(Cancelled):
        pipeline.run(ws, req.id, progress=progress)
    stopped = requests.get(ws, req.id)
    assert stopped.state == "pending" and "cancelled during holdout" in stopped.message
    assert [c.state for c in stopped.checks] == ["passed", "pending"]
    done = pipeline.run(ws, req.id)
    assert done.state == "review" and [c.attempts for c in done.checks] == [1, 2]


def test_a_dead_runner_is_taken_over_and_a_live_one_is_not(ws, tmp_path):
    import subprocess

    _, _, cand = champion_and_candidate(ws, tmp_path)
    req = pipeline.start(ws, cand.ref, find_policy(holdout_policy(tmp_path), "churn"))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        ws.db.write(lambda c: requests.set_state(c, req.id, "running", "x", runner_pid=sleeper.pid))
        with pytest.raises(UsageError, match=f"being run by process {sleeper.pid}"):
            pipeline.run(ws, req.id)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert pipeline.run(ws, req.id).state == "review"


def test_triggers_start_a_request_once_for_a_new_version_or_an_alias(ws, tmp_path):
    from mlops_desktop.promotion.policy import load_policies

    models, _, cand = champion_and_candidate(ws, tmp_path)
    root = project(tmp_path, """
        [promotion.churn]
        trigger = "alias:challenger"
        [promotion.churn-latest]
        model = "churn"
        trigger = "new-version"
        """)
    policies = load_policies(root)
    started = pipeline.trigger(ws, policies)
    assert [(r.policy, r.version, r.trigger) for r in started] == [("churn-latest", cand.version, "new-version")]
    registry.store(ws).set_alias("churn", "challenger", cand.version, actor="bob")
    again = pipeline.trigger(ws, policies)
    assert [(r.policy, r.version, r.trigger) for r in again] == [("churn", cand.version, "alias:challenger")]
    assert pipeline.trigger(ws, policies) == []
    # a request with no checks goes straight to review
    assert pipeline.run(ws, again[0].id).state == "review"
