"""The models/audit commands: output, JSON, and bad inputs with clear messages and the right exit codes."""

from __future__ import annotations

import json

import pytest

from mlops_desktop.cli.main import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def home(ws, churn_run, capsys):
    code, out, _ = _run(capsys, "models", "register", churn_run[:8], "--name", "churn", "--home", str(ws.root))
    assert code == 0 and "registered churn/1" in out
    return str(ws.root)


def test_register_list_show_alias_rollback_history(capsys, home, ws, tmp_path, churn):
    from tests.registry.conftest import fit_pipeline, log_sklearn_run

    run2 = log_sklearn_run(ws, tmp_path, fit_pipeline(churn.head(300)), churn.head(300), metrics={"val_accuracy": 0.95})
    assert _run(capsys, "models", "register", run2, "--name", "churn", "--home", home)[0] == 0
    code, out, _ = _run(capsys, "models", "list", "--home", home, "--json")
    assert code == 0 and json.loads(out)[0]["versions"] == 2
    assert _run(capsys, "models", "alias", "set", "churn", "production", "1", "--reason", "launch", "--home", home)[0] == 0
    code, out, _ = _run(capsys, "models", "alias", "set", "churn", "production", "v2", "--reason", "better",
                        "--home", home)
    assert code == 0 and "v1 -> v2 (moved" in out
    code, out, _ = _run(capsys, "models", "rollback", "churn", "production", "--reason", "alerts", "--home", home)
    assert code == 0 and "v2 -> v1 (rollback" in out and "because alerts" in out
    code, out, _ = _run(capsys, "models", "alias", "history", "churn", "--home", home, "--json")
    assert [(c["kind"], c["to_version"]) for c in json.loads(out)] == [("set", 1), ("moved", 2), ("rollback", 1)]
    code, out, _ = _run(capsys, "models", "alias", "history", "churn", "--at", "2000-01-01", "--home", home, "--json")
    assert json.loads(out)["aliases"] == {"production": None}
    code, out, _ = _run(capsys, "models", "show", "churn@production", "--home", home)
    assert code == 0 and "churn/1" in out and "(verified)" in out and "tenure" in out
    code, out, _ = _run(capsys, "models", "compare", "churn/1", "churn/2", "--home", home, "--json")
    rows = {r["field"]: r for r in json.loads(out)["rows"]}
    assert rows["metric val_accuracy"]["differs"] and rows["metric val_accuracy"]["b"] == 0.95
    code, out, _ = _run(capsys, "audit", "log", "--kind", "model.alias.", "--home", home, "--json")
    assert [e["kind"] for e in json.loads(out)] == ["model.alias.set", "model.alias.moved", "model.alias.rollback"]
    code, out, _ = _run(capsys, "audit", "verify", "--home", home)
    assert code == 0 and "audit log intact" in out


@pytest.mark.parametrize("argv, exit_code, message", [
    (["models", "show", "nope"], 3, "no registered model named 'nope'"),
    (["models", "show", "churn/9"], 3, "model churn has no version 9"),
    (["models", "show", "churn@production"], 3, "has no alias 'production'"),
    (["models", "show", "Churn!"], 2, "invalid model name"),
    (["models", "alias", "set", "churn", "production", "1"], 2, "needs a reason"),
    (["models", "alias", "set", "churn", "v2", "1"], 2, "reads like a version"),
    (["models", "rollback", "churn", "champion", "--reason", "x"], 3, "no alias 'champion' to roll back"),
    (["models", "predict", "churn/1", "--input", "/nonexistent.parquet"], 2, "does not exist"),
    (["audit", "log", "--since", "yesterday"], 2, "cannot read the date"),
])
def test_bad_input_gets_a_clear_error_and_exit_code(capsys, home, argv, exit_code, message):
    code, _, err = _run(capsys, *argv, "--home", home)
    assert code == exit_code and message in err and "Traceback" not in err


def test_register_errors_name_the_problem(capsys, home, churn_run):
    code, _, err = _run(capsys, "models", "register", churn_run, "--name", "churn", "--flavor", "onnx",
                        "--artifact", "model/model.skops", "--home", home)
    assert code == 2 and "model.skops is not an .onnx file" in err
    code, _, err = _run(capsys, "models", "register", "ffffffff", "--name", "churn", "--home", home)
    assert code == 3 and "no run 'ffffffff'" in err
    code, _, err = _run(capsys, "models", "register", churn_run, "--name", "churn_model", "--home", home)
    assert code == 2 and "invalid model name 'churn_model'" in err and "churn-model" in err
    code, out, _ = _run(capsys, "models", "register", churn_run, "--name", "churn", "--home", home)
    assert code == 0 and "already registered as churn/1" in out


def test_audit_verify_fails_with_exit_1_on_a_damaged_log(capsys, home, ws):
    with ws.db.transaction() as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 1")
    code, _, err = _run(capsys, "audit", "verify", "--home", home)
    assert code == 1 and "event 1 (model.created model:churn) was changed" in err
