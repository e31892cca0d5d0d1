"""The back-test check through the back-test capability: candidate and champion replayed week by week over a pinned
time-ordered dataset; a worse candidate fails its rule, a good one passes with the windows as evidence."""

from __future__ import annotations

import pytest

from mlops_desktop.promotion import pipeline, reviews
from mlops_desktop.promotion.checks.backtest import backtest_api
from mlops_desktop.promotion.policy import find_policy
from tests.promotion.promo_helpers import champion_and_candidate, project

pytestmark = pytest.mark.skipif(backtest_api() is None, reason="this build has no back-test capability")

POLICY = """
[promotion.churn]
[[promotion.churn.checks]]
kind = "backtest"
dataset = "churn_events@1"
time_col = "ts"
test_window = "7d"
require = ["accuracy >= champion - 0.05"]
"""


def test_backtest_check_passes_a_good_candidate_and_fails_a_worse_one(ws, tmp_path):
    from tests.backtest.conftest import ingest_frame, timed_churn

    models, champ, cand = champion_and_candidate(ws, tmp_path)
    events = timed_churn(1400, seed=4, days=35)
    ingest_frame(ws, tmp_path, events, "churn_events")
    policy = find_policy(project(tmp_path, POLICY), "churn")
    good = pipeline.run(ws, pipeline.start(ws, cand.ref, policy).id)
    assert good.state == "review", good.message
    ev = good.checks[0].evidence
    assert ev["dataset"] == "churn_events@1" and len(ev["windows"]) == 5
    assert sum(w["rows"] for w in ev["windows"]) == len(events)
    assert {"accuracy", "f1"} <= set(ev["candidate"]) and ev["champion"]["accuracy"] > 0.6
    assert all(w["candidate"] and w["champion"] for w in ev["windows"])
    assert reviews.page(ws, good.id)["backtest_windows"][0]["index"] == ev["windows"][0]["index"]
    bad = models.bad()
    failed = pipeline.run(ws, pipeline.start(ws, bad.ref, policy).id)
    assert failed.state == "failed" and "accuracy >= champion - 0.05 failed" in failed.checks[0].summary
    assert failed.checks[0].evidence["candidate"]["accuracy"] < ev["champion"]["accuracy"] - 0.05
