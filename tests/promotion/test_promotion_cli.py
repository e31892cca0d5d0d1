"""`promote` and `reviews` from the console: the same core calls, tables or --json, errors in words with exit codes."""

from __future__ import annotations

import json

import pytest

from mlops_desktop import audit
from mlops_desktop.cli.main import main
from mlops_desktop.promotion import samples
from tests.promotion.promo_helpers import champion_and_candidate, holdout_policy, project


def cli(capsys, ws, *argv):
    code = main(["--home", str(ws.root), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_start_review_show_label_approve_from_the_console(ws, tmp_path, capsys):
    _, champ, cand = champion_and_candidate(ws, tmp_path)
    root = holdout_policy(tmp_path)
    code, out, err = cli(capsys, ws, "promote", "start", cand.ref, "--project", str(root), "--json")
    assert code == 0, err
    req = json.loads(out)
    assert req["state"] == "review" and [c["state"] for c in req["checks"]] == ["passed", "passed"]
    rid = str(req["id"])
    code, out, _ = cli(capsys, ws, "reviews", "list")
    assert code == 0 and f"{rid}   churn/2" in out and "review" in out
    code, out, _ = cli(capsys, ws, "promote", "status", rid)
    assert code == 0 and "holdout" in out and "accuracy" in out
    # samples as a shadow check keeps them (the shadow path itself is tested in test_shadow_labels.py)
    samples.store(ws, int(rid), [samples.Sample(1, "r-1", 0, 0.0, {"tenure": 3.0, "spend": 1.0, "plan": "basic",
                                                                       "calls": 2}, "yes", "no", False)])
    code, out, err = cli(capsys, ws, "reviews", "label", rid, "1", "candidate")
    assert code == 0, err
    assert "labelled 'no' (candidate); labels in labels_churn@1" in out
    code, out, _ = cli(capsys, ws, "reviews", "show", rid, "--samples")
    assert code == 0
    for text in ("holdout metrics", "accuracy", "live samples: 1 (1 disagreements), 1 labelled", "r-1:0",
                 "promotion.labelled", "trained on churn_train@1"):
        assert text in out, text
    code, out, _ = cli(capsys, ws, "reviews", "show", rid, "--json")
    page = json.loads(out)
    assert page["metric_diff"][0]["metric"] == "accuracy" and page["samples"]["labelled"] == 1
    code, out, err = cli(capsys, ws, "reviews", "approve", rid, "--comment", "holdout and labels agree", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["state"] == "approved" and done["decisions"][0]["actor"] == audit.current_actor()
    code, out, _ = cli(capsys, ws, "models", "show", "churn@champion", "--json")
    assert json.loads(out)["version"] == cand.version
    code, out, _ = cli(capsys, ws, "audit", "log", "--subject", f"promotion:{rid}", "--json")
    assert [e["kind"] for e in json.loads(out)][-2:] == ["promotion.approval", "promotion.approved"]


def test_console_errors_are_sentences_with_exit_codes(ws, tmp_path, capsys, monkeypatch):
    models, _, _ = champion_and_candidate(ws, tmp_path)
    mine = models.good(audit.current_actor(), seed=4)  # registered by the person at the keyboard
    root = holdout_policy(tmp_path)
    code, _, err = cli(capsys, ws, "promote", "start", "churn/9", "--project", str(root))
    assert code == 3 and "model churn has no version 9" in err
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, ws, "promote", "start", mine.ref)
    assert code == 3 and "no mlops.toml in" in err
    bad = project(tmp_path / "..", "[promotion.churn]\napprovals = \"two\"\n")
    code, _, err = cli(capsys, ws, "promote", "start", mine.ref, "--project", str(bad))
    assert code == 2 and "[promotion.churn].approvals must be a whole number" in err and "Traceback" not in err
    code, out, _ = cli(capsys, ws, "promote", "start", mine.ref, "--project", str(root), "--json")
    rid = str(json.loads(out)["id"])
    code, _, err = cli(capsys, ws, "reviews", "approve", rid, "--comment", "looks good to me")
    assert code == 2 and "cannot approve it: policy 'churn' does not allow self-approval" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--home", str(ws.root), "reviews", "reject", rid])
    assert exit_info.value.code == 2 and "--comment" in capsys.readouterr().err
    code, _, err = cli(capsys, ws, "reviews", "label", rid, "1", "champion")
    assert code == 3 and "has no live samples to label" in err
    code, _, err = cli(capsys, ws, "reviews", "show", "77")
    assert code == 3 and "no promotion request 77" in err
    code, out, _ = cli(capsys, ws, "reviews", "reject", rid, "-m", "I should not review my own", "--json")
    assert code == 0 and json.loads(out)["state"] == "rejected"
    code, out, _ = cli(capsys, ws, "promote", "list", "--state", "rejected", "--json")
    assert [r["id"] for r in json.loads(out)] == [int(rid)]
    # tampering with the record is found
    with ws.db.transaction() as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("UPDATE audit_events SET actor = 'someone-else' WHERE kind = 'promotion.rejected'")
    code, out, err = cli(capsys, ws, "audit", "verify")
    assert code != 0 and "promotion.rejected" in out + err


def test_scan_resume_cancel_and_notices_from_the_console(ws, tmp_path, capsys):
    models, _, cand = champion_and_candidate(ws, tmp_path)
    root = project(tmp_path, """
        [promotion.churn]
        trigger = "new-version"
        [[promotion.churn.checks]]
        kind = "holdout"
        dataset = "churn_holdout@1"
        target = "churned"
        require = ["accuracy >= champion - 0.05"]
        """)
    code, out, err = cli(capsys, ws, "promote", "scan", "--project", str(root), "--no-run", "--json")
    assert code == 0, err
    [started] = json.loads(out)
    assert (started["version"], started["trigger"], started["state"]) == (cand.version, "new-version", "pending")
    code, out, _ = cli(capsys, ws, "promote", "scan", "--project", str(root), "--json")
    assert json.loads(out) == []  # once per version and policy
    code, out, err = cli(capsys, ws, "promote", "resume", str(started["id"]), "--json")
    assert code == 0 and json.loads(out)["state"] == "review", err
    bad = models.bad()
    code, out, _ = cli(capsys, ws, "promote", "scan", "--project", str(root), "--json")
    [failed] = json.loads(out)
    assert failed["version"] == bad.version and failed["state"] == "failed"
    code, out, _ = cli(capsys, ws, "promote", "notices")
    assert code == 0 and f"churn/{bad.version}: check holdout failed" in out
    code, out, _ = cli(capsys, ws, "promote", "notices", "--json")
    assert json.loads(out) == []  # read once
    code, _, err = cli(capsys, ws, "promote", "cancel", str(failed["id"]), "--reason", "x")
    assert code == 2 and "is failed; it cannot be cancelled" in err
    code, out, _ = cli(capsys, ws, "promote", "cancel", str(started["id"]), "--reason", "superseded", "--json")
    assert code == 0 and json.loads(out)["state"] == "cancelled"
    code, out, _ = cli(capsys, ws, "reviews", "list", "--json")
    assert json.loads(out) == []
