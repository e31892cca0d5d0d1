"""Shadow evidence from a real router in front of two real servers of the registered versions: the check waits for
N requests, then judges agreement, errors and latency; the compared rows become the review's samples
(disagreements first), which a reviewer labels; the labels land in the lake as a reusable dataset."""

from __future__ import annotations

import polars as pl
import pytest

from mlops_desktop import audit
from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.promotion import labels, pipeline, requests, reviews, samples
from mlops_desktop.promotion.policy import find_policy
from tests.promotion.promo_helpers import champion_and_candidate, project, shadow_traffic

SHADOW = """
[promotion.churn]
[[promotion.churn.checks]]
kind = "shadow"
log_dir = "{comparisons}"
prediction_logs = ["{logs}"]
arm = "candidate"
requests = {requests}
require = [{require}]
"""


def policy(tmp_path, folders, requests=40, require='"agreement >= 0.5", "error_rate <= 0.01"'):
    root = project(tmp_path, SHADOW.format(comparisons=folders["comparisons"], logs=folders["logs"],
                                           requests=requests, require=require))
    return find_policy(root, "churn")


def test_the_shadow_check_waits_for_traffic_then_passes_with_samples_and_labels_land_in_the_lake(ws, tmp_path):
    models, champ, cand = champion_and_candidate(ws, tmp_path)
    folders = {"comparisons": tmp_path / "router-state" / "shadow", "logs": tmp_path / "predlogs"}
    req = pipeline.start(ws, cand.ref, policy(tmp_path, folders))
    waiting = pipeline.run(ws, req.id)
    assert waiting.state == "waiting" and waiting.checks[0].state == "waiting"
    assert "0 request(s) compared so far" in waiting.checks[0].summary
    with shadow_traffic(ws, tmp_path, champ.ref, cand.ref, 60) as got:
        assert got == folders
    done = pipeline.run(ws, req.id)
    assert done.state == "review", done.message
    ev = done.checks[0].evidence
    assert ev["requests"] == 60 and done.checks[0].attempts == 2
    frame = pl.concat([pl.read_parquet(f) for f in sorted(folders["comparisons"].glob("*.parquet"))])
    assert ev["candidate"]["agreement"] == pytest.approx(frame["agreed_rows"].sum() / frame["rows"].sum())
    assert ev["candidate"]["error_rate"] == 0 and ev["candidate"]["p95_latency_ms"] > 0
    assert ev["disagreed_requests"] == int((~frame["agree"]).sum())
    assert ev["drift"]["reference"] == "churn_train@1" and ev["drift"]["current_rows"] == ev["samples"]
    kept = samples.load(ws, req.id)
    assert len(kept) == ev["samples"] == 60
    flags = [s.agree for s in kept]
    assert flags == sorted(flags), "disagreements come first"
    assert sum(not f for f in flags) == ev["disagreed_requests"]
    first = kept[0]
    assert set(first.inputs) == {"tenure", "spend", "plan", "calls"} and first.champion in ("yes", "no")
    # label from the keyboard's three choices: champion, candidate, a typed answer
    a = labels.label(ws, req.id, 1, "champion", actor="dave")
    b = labels.label(ws, req.id, kept[1].key, "candidate", actor="dave")
    c = labels.label(ws, req.id, 3, "yes", actor="erin")
    assert (a.label, a.picked) == (kept[0].champion, "champion")
    assert (b.label, b.picked) == (kept[1].candidate, "candidate")
    assert (c.label, c.picked, c.labelled_by) == ("yes", "typed", "erin")
    again = labels.label(ws, req.id, 1, "candidate", actor="dave")  # a second thought replaces the first
    assert again.label == kept[0].candidate
    with pytest.raises(NotFoundError, match="has no sample '999'"):
        labels.label(ws, req.id, 999, "champion")
    version = labels.export(ws, "churn")
    assert version is not None and version.name == "labels_churn"
    from mlops_desktop.data.lake import open_dataset

    lake = open_dataset(ws, "labels_churn").sort("row")
    assert lake.height == 3 and set(lake["label"].to_list()) <= {"yes", "no"}
    assert {"tenure", "spend", "plan", "calls", "label", "champion_prediction", "candidate_prediction",
            "labelled_by", "review", "request_id"} <= set(lake.columns)
    assert labels.export(ws, "churn").version == version.version  # unchanged labels: no new version
    assert [e.kind for e in audit.events(ws.db, subject=requests.subject(req.id))].count("promotion.labelled") == 4
    page = reviews.page(ws, req.id)
    assert page["samples"] == {"total": 60, "disagreements": ev["disagreed_requests"], "labelled": 3}
    assert page["shadow"]["requests"] == 60 and page["candidate"]["inputs"][0]["dataset"] == "churn_train"
    # a decision writes the labels once more, and the review keeps them
    reviews.decide(ws, req.id, "reject", "disagrees too often on basic plans", actor="dave")
    with pytest.raises(UsageError, match="is rejected; its samples can no longer be labelled"):
        labels.label(ws, req.id, 4, "champion")


def test_the_shadow_check_fails_on_too_little_agreement(ws, tmp_path):
    models, champ, _ = champion_and_candidate(ws, tmp_path)
    bad = models.bad()
    folders = {"comparisons": tmp_path / "router-state" / "shadow", "logs": tmp_path / "predlogs"}
    req = pipeline.start(ws, bad.ref, policy(tmp_path, folders, requests=30,
                                             require='"agreement >= 0.95", "p95_latency_ms <= champion * 50"'))
    with shadow_traffic(ws, tmp_path, champ.ref, bad.ref, 30):
        pass
    done = pipeline.run(ws, req.id)
    assert done.state == "failed"
    assert "agreement >= 0.95 failed" in done.checks[0].summary
    assert done.checks[0].evidence["candidate"]["agreement"] < 0.95
    assert any("check shadow failed" in n.message for n in requests.unread_notices(ws))


def test_the_shadow_log_of_a_running_router_is_read_over_http(ws, tmp_path):
    """A router in a container or on another host: its closed comparison segments come over GET
    /router/shadow/segments, only the new ones on each run."""
    import requests as http

    from mlops_desktop import registry
    from mlops_desktop.promotion.checks.shadow import fetch_segments
    from mlops_desktop.serving.app import ServedModel
    from tests.promotion.promo_helpers import rows
    from tests.registry.conftest import churn_frame
    from tests.serving.router_helpers import config, running_router, wait_for
    from tests.serving.serving_helpers import running

    _, champ, cand = champion_and_candidate(ws, tmp_path)

    def served(mv):
        return ServedModel(mv.name, str(mv.version), registry.load_predictor(ws, mv, prefer_onnx=False))

    root = project(tmp_path, """
        [promotion.churn]
        [[promotion.churn.checks]]
        kind = "shadow"
        router_url = "{url}"
        arm = "candidate"
        requests = 30
        samples = 0
        require = ["agreement >= 0.5", "error_rate <= 0.01"]
        """.replace("{url}", "http://127.0.0.1:1"))
    with running(served(champ)) as a, running(served(cand)) as b:
        cfg = config([{"name": "champion", "weight": 1, "backends": [a.url]},
                      {"name": "candidate", "weight": 0, "backends": [b.url]}],
                     shadow={"arm": "candidate", "percent": 100}, state_dir=str(tmp_path / "state"))
        with running_router(cfg) as rr:
            rr.wait_ready()
            refused = pipeline.run(ws, pipeline.start(ws, cand.ref, find_policy(root, "churn")).id)
            assert refused.state == "failed" and "cannot read the shadow log of the router at http://127.0.0.1:1" \
                in refused.checks[0].summary
            (root / "mlops.toml").write_text((root / "mlops.toml").read_text().replace("http://127.0.0.1:1", rr.url))
            req = pipeline.start(ws, cand.ref, find_policy(root, "churn"))
            with http.Session() as s:
                for i, row in enumerate(rows(churn_frame(20, seed=8))):
                    assert s.post(rr.url + "/invocations", json={"dataframe_records": [row]},
                                  headers={"X-Request-Id": f"a-{i}"}, timeout=30).status_code == 200
            wait_for(lambda: rr.call(lambda: rr.router.shadow.stats["mirrored"] >= 20))
            assert rr.router.shadow.log.flush()
            first = pipeline.run(ws, req.id)
            assert first.state == "waiting" and "20 request(s) compared so far" in first.checks[0].summary
            with http.Session() as s:
                for i, row in enumerate(rows(churn_frame(15, seed=9))):
                    s.post(rr.url + "/invocations", json={"dataframe_records": [row]},
                           headers={"X-Request-Id": f"b-{i}"}, timeout=30)
            wait_for(lambda: rr.call(lambda: rr.router.shadow.stats["mirrored"] >= 35))
            assert rr.router.shadow.log.flush()
            folder = ws.root / "promotion" / str(req.id) / "comparisons-shadow"
            assert len(list(folder.glob("*.parquet"))) == 1
            done = pipeline.run(ws, req.id)
            assert done.state == "review", done.message
            assert done.checks[0].evidence["requests"] == 35 and len(list(folder.glob("*.parquet"))) == 2
            assert fetch_segments(rr.url, folder) == 0  # nothing new
