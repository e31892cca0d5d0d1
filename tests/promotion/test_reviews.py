"""The review queue: N approvals, self-approval refused unless allowed, expiry, approval moves the alias and
redeploys what serves it (a real managed server), rejection changes nothing but its record; all audited, and
`audit verify` catches an edited or deleted promotion event."""

from __future__ import annotations

import time

import pytest
import requests as http

from mlops_desktop import audit, registry
from mlops_desktop.errors import UsageError
from mlops_desktop.promotion import pipeline, requests, reviews
from mlops_desktop.promotion.policy import find_policy
from tests.promotion.promo_helpers import champion_and_candidate, project, rows
from tests.registry.conftest import churn_frame

POLICY = """
[promotion.churn]
approvals = {approvals}
allow_self_approval = {self_ok}
expires = "{expires}"
[promotion.churn-other]
model = "churn"
"""


def in_review(ws, tmp_path, *, approvals=1, self_ok=False, expires="72h", candidate_by="bob"):
    _, champ, cand = champion_and_candidate(ws, tmp_path, candidate_by=candidate_by)
    root = project(tmp_path, POLICY.format(approvals=approvals, self_ok=str(self_ok).lower(), expires=expires))
    req = pipeline.run(ws, pipeline.start(ws, cand.ref, find_policy(root, "churn", "churn"), actor="carol").id)
    assert req.state == "review"
    return champ, cand, req


def test_two_approvals_from_two_people_move_the_alias(ws, tmp_path):
    champ, cand, req = in_review(ws, tmp_path, approvals=2)
    with pytest.raises(UsageError, match="needs a comment"):
        reviews.decide(ws, req.id, "approve", "  ", actor="dave")
    first = reviews.decide(ws, req.id, "approve", "metrics hold up", actor="dave", name="Dave D")
    assert first.state == "review" and first.message == "1 of 2 approvals"
    assert registry.resolve(ws, "churn@champion").version == champ.version
    with pytest.raises(UsageError, match="dave already approved"):
        reviews.decide(ws, req.id, "approve", "again", actor="dave")
    done = reviews.decide(ws, req.id, "approve", "shadow looks fine", actor="erin")
    alias = done.outcome["alias"]
    assert done.state == "approved" and (alias["alias"], alias["from"], alias["to"]) == \
        ("champion", champ.version, cand.version)
    assert registry.resolve(ws, "churn@champion").version == cand.version
    change = registry.store(ws).alias_history("churn", "champion")[-1]
    assert change.actor == "erin" and f"promotion {req.id} approved by dave, erin" in change.reason
    assert [(d.actor, d.display_name, d.decision) for d in done.decisions] == \
        [("dave", "Dave D", "approve"), ("erin", "", "approve")]
    kinds = [e.kind for e in audit.events(ws.db, subject=requests.subject(req.id))]
    assert kinds[-3:] == ["promotion.approval", "promotion.approval", "promotion.approved"]
    with pytest.raises(UsageError, match="is approved, not in review"):
        reviews.decide(ws, req.id, "reject", "too late", actor="frank")


def test_self_approval_is_refused_unless_the_policy_allows_it(ws, tmp_path):
    _, cand, req = in_review(ws, tmp_path)
    with pytest.raises(UsageError, match="bob registered churn/2 and cannot approve it"):
        reviews.decide(ws, req.id, "approve", "mine is great", actor="bob")
    assert requests.get(ws, req.id).decisions == []
    # rejecting your own candidate is allowed
    assert reviews.decide(ws, req.id, "reject", "withdrawn", actor="bob").state == "rejected"


def test_self_approval_when_allowed(ws, tmp_path):
    _, cand, req = in_review(ws, tmp_path, self_ok=True)
    assert reviews.decide(ws, req.id, "approve", "ok by policy", actor="bob").state == "approved"


def test_an_undecided_review_expires_and_cannot_be_approved(ws, tmp_path):
    champ, _, req = in_review(ws, tmp_path, expires="2s")
    assert [r.id for r in reviews.queue(ws)] == [req.id]
    assert reviews.expire_due(ws, now=req.expires_at - 1) == []
    time.sleep(max(0.0, req.expires_at - time.time()) + 0.1)
    with pytest.raises(UsageError, match=f"promotion request {req.id} expired at"):
        reviews.decide(ws, req.id, "approve", "sorry I was away", actor="dave")
    assert requests.get(ws, req.id).state == "expired" and reviews.queue(ws) == []
    assert registry.resolve(ws, "churn@champion").version == champ.version
    events = audit.events(ws.db, subject=requests.subject(req.id))
    assert [e.kind for e in events].count("promotion.expired") == 1
    assert any(n.level == "warning" and "expired" in n.message for n in requests.unread_notices(ws))


def _answer(url, row):
    r = http.post(url + "/invocations", json={"dataframe_records": [row]}, timeout=30)
    assert r.status_code == 200
    return http.get(url + "/version", timeout=10).json()


def test_approval_redeploys_the_server_serving_the_alias_and_rejection_does_not(ws, tmp_path):
    from mlops_desktop.serving import manager

    champ, cand, req = in_review(ws, tmp_path)
    server = manager.start(ws, "churn@champion", name="churn-prod", port=0)
    try:
        row = rows(churn_frame(3))[0]
        assert str(_answer(server.url, row).get("version")) == str(champ.version)
        # a rejection of another candidate leaves the server as it is
        other = pipeline.run(ws, pipeline.start(ws, cand.ref, find_policy(tmp_path / "project", "churn",
                                                                          "churn-other")).id)
        rejected = reviews.decide(ws, other.id, "reject", "holdout too small", actor="dave")
        assert rejected.state == "rejected" and rejected.outcome == {}
        assert manager.get(ws, "churn-prod").version == str(champ.version)
        assert registry.resolve(ws, "churn@champion").version == champ.version
        done = reviews.decide(ws, req.id, "approve", "ship it", actor="dave")
        assert done.state == "approved", done.message
        [deployed] = done.outcome["deployments"]
        assert deployed["kind"] == "server" and deployed["ok"] and deployed["to"] == str(cand.version)
        after = manager.get(ws, "churn-prod")
        assert after.version == str(cand.version) and after.port == server.port
        assert str(_answer(after.url, row).get("version")) == str(cand.version)
        kinds = [e.kind for e in audit.events(ws.db, subject=requests.subject(req.id))]
        assert kinds[-2:] == ["promotion.approved", "promotion.deployed"]
    finally:
        manager.stop(ws, "churn-prod")


def test_audit_verify_catches_an_edited_and_a_deleted_promotion_event(ws, tmp_path):
    _, _, req = in_review(ws, tmp_path)
    reviews.decide(ws, req.id, "reject", "not convinced", actor="dave")
    assert audit.verify(ws.db).ok
    events = audit.events(ws.db, subject=requests.subject(req.id))
    rejected = next(e for e in events if e.kind == "promotion.rejected")
    with ws.db.transaction() as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("DROP TRIGGER audit_events_no_delete")
        conn.execute("UPDATE audit_events SET reason = 'looks great' WHERE id = ?", (rejected.id,))
    report = audit.verify(ws.db)
    assert any(f"event {rejected.id} (promotion.rejected" in p and "changed after it was written" in p
               for p in report.problems)
    opened = next(e for e in events if e.kind == "promotion.review.opened")
    with ws.db.transaction() as conn:
        conn.execute("DELETE FROM audit_events WHERE id = ?", (opened.id,))
    assert any(f"event(s) {opened.id} are missing" in p for p in audit.verify(ws.db).problems)
