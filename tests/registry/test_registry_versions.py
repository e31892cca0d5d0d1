"""Register, resolve, aliases, rollback and the audit events they write; names; lineage both ways."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mlops_desktop import audit, registry
from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.registry.names import check_alias, check_model_name, parse_ref, suggest_name
from tests.registry.conftest import fit_pipeline, log_sklearn_run


def test_register_resolve_and_predict_like_the_model(ws, churn_run, churn_model, churn):
    result = registry.register(ws, churn_run, "churn")
    mv = result.version
    assert result.created and mv.ref == "churn/1" and mv.flavor == "sklearn" and mv.run_uuid == churn_run
    assert mv.signature.input_names == ["tenure", "spend", "plan", "calls"] and mv.signature.classes == ("no", "yes")
    assert mv.metrics == {"val_accuracy": 0.9}
    assert registry.resolve(ws, "churn").ref == registry.resolve(ws, "churn/1").ref == "churn/1"
    x = churn.drop(columns=["churned"])
    out = registry.load_predictor(ws, "churn/1", prefer_onnx=False).predict({c: x[c].to_numpy() for c in x})
    np.testing.assert_array_equal(out["prediction"], churn_model.predict(x))
    example = registry.input_example(ws, "churn/1")
    assert list(example) == mv.signature.input_names and len(example["plan"]) == 5
    events = audit.events(ws.db, subject="model:churn")
    assert [e.kind for e in events] == ["model.created", "model.version.created"]
    assert events[1].to_value == "1" and events[1].details["bundle_hash"] == mv.bundle_hash


def test_registering_the_same_artifact_again_returns_the_version(ws, churn_run):
    first = registry.register(ws, churn_run, "churn")
    again = registry.register(ws, churn_run, "churn")
    assert not again.created and again.version.ref == first.version.ref
    assert len(registry.store(ws).list_versions("churn")) == 1
    assert len(audit.events(ws.db, kind="model.version.created")) == 1


def test_aliases_move_roll_back_and_every_change_is_an_event(ws, tmp_path, churn):
    store = registry.store(ws)
    for seed in range(3):
        frame = churn.sample(frac=0.8, random_state=seed)
        registry.register(ws, log_sklearn_run(ws, tmp_path, fit_pipeline(frame), frame), "churn")
    store.set_alias("churn", "challenger", 3)  # not protected: no reason needed
    with pytest.raises(UsageError, match="needs a reason"):
        store.set_alias("churn", "production", 1)
    store.set_alias("churn", "production", 1, reason="first release")
    store.set_alias("churn", "production", 2, reason="better recall")
    with pytest.raises(UsageError, match="needs a reason"):
        store.set_alias("churn", "production", 3)
    store.set_alias("churn", "production", 3, reason="retrained")
    assert registry.resolve(ws, "churn@production").version == 3
    back = store.rollback("churn", "production", reason="latency regression")
    assert (back.kind, back.from_version, back.to_version) == ("rollback", 3, 2)
    assert registry.resolve(ws, "churn@production").version == 2
    again = store.rollback("churn", "production", reason="v2 broke too")  # a second rollback goes further back
    assert (again.from_version, again.to_version) == (2, 1)
    with pytest.raises(UsageError, match="nothing to roll back to"):
        store.rollback("churn", "production", reason="no")
    with pytest.raises(UsageError, match="needs a reason"):
        store.rollback("churn", "production", reason=" ")
    history = store.alias_history("churn", "production")
    assert [(c.kind, c.from_version, c.to_version) for c in history] == [
        ("set", None, 1), ("moved", 1, 2), ("moved", 2, 3), ("rollback", 3, 2), ("rollback", 2, 1)]
    assert [c.reason for c in history][-1] == "v2 broke too" and all(c.actor for c in history)
    assert store.get_model("churn").aliases == {"challenger": 3, "production": 1}
    kinds = [e.kind for e in audit.events(ws.db, kind_prefix="model.alias.")]
    assert kinds.count("model.alias.rollback") == 2 and audit.verify(ws.db).ok


def test_which_version_an_alias_named_on_a_date(ws, tmp_path, churn):
    store = registry.store(ws)
    for seed in range(2):
        frame = churn.sample(frac=0.8, random_state=seed)
        registry.register(ws, log_sklearn_run(ws, tmp_path, fit_pipeline(frame), frame), "churn")
    day = 86_400.0
    t0 = time.time() - 10 * day
    store.set_alias("churn", "production", 1, reason="launch", ts=t0)
    store.set_alias("churn", "production", 2, reason="v2", ts=t0 + 3 * day)
    store.remove_alias("churn", "production", reason="retired")
    assert store.alias_at("churn", "production", t0 - 1) is None
    assert store.alias_at("churn", "production", t0 + day) == 1
    assert store.alias_at("churn", "production", t0 + 3 * day + 1) == 2
    assert store.alias_at("churn", "production", time.time() + 1) is None  # removed since
    assert store.alias_at("churn", "staging", t0 + day) is None


def test_unknown_model_version_and_alias_say_what_exists(ws, churn_run):
    registry.register(ws, churn_run, "churn")
    with pytest.raises(NotFoundError, match="no registered model named 'nope'"):
        registry.resolve(ws, "nope")
    with pytest.raises(NotFoundError, match="has no version 7") as exc:
        registry.resolve(ws, "churn/7")
    assert "versions: 1" in str(exc.value)
    with pytest.raises(NotFoundError, match="has no alias 'production'"):
        registry.resolve(ws, "churn@production")
    with pytest.raises(UsageError, match="invalid model version"):
        registry.resolve(ws, "churn/0")
    with pytest.raises(NotFoundError):
        registry.store(ws).set_alias("churn", "champion", 9, reason="x")


@pytest.mark.parametrize("name", ["Churn", "churn_model", "-churn", "churn-", "9lives", "a--b", "x" * 41, "",
                                  "churn;rm -rf /", "../etc", "churn model", "ünïcode", "churn\n"])
def test_hostile_or_invalid_model_names_are_refused(ws, churn_run, name):
    with pytest.raises(UsageError, match="invalid model name"):
        registry.register(ws, churn_run, name)
    assert registry.store(ws).list_models() == []


def test_name_rules_accept_dns_labels_and_aliases_that_are_not_versions():
    assert check_model_name("churn-v2") == "churn-v2" and check_model_name("a" * 40)
    assert check_alias("production") and check_alias("canary-eu1")
    for bad in ("latest", "v3", "Prod", "a_b", "x" * 21):
        with pytest.raises(UsageError, match="invalid alias"):
            check_alias(bad)
    assert suggest_name("Churn Model (v2)") == "churn-model-v2" and suggest_name("123") == ""
    assert str(parse_ref("churn@production")) == "churn@production" and parse_ref("churn/3").version == 3


def test_protected_aliases_come_from_the_settings(ws, churn_run):
    registry.register(ws, churn_run, "churn")
    ws.settings.extra["protected_aliases"] = ["gold"]
    store = registry.store(ws)
    store.set_alias("churn", "production", 1)  # no longer protected here
    with pytest.raises(UsageError, match="needs a reason"):
        store.set_alias("churn", "gold", 1)
    ws.settings.extra["protected_aliases"] = "gold"
    with pytest.raises(UsageError, match="protected_aliases must be a list"):
        registry.store(ws)


def test_lineage_both_ways_between_datasets_and_versions(ws, tmp_path, churn):
    from mlops_desktop.data.ingest import ingest
    from mlops_desktop.registry.lineage import models_trained_on, version_lineage

    csv = tmp_path / "churn.csv"
    churn.to_csv(csv, index=False)
    ingest(ws, [str(csv)], "churn_data")
    run = log_sklearn_run(ws, tmp_path, fit_pipeline(churn), churn, inputs=[("churn_data", "1")])
    mv = registry.register(ws, run, "churn").version
    assert mv.inputs == ({"dataset": "churn_data", "version": "1", "digest": "", "context": "training"},)
    trained = models_trained_on(ws, "churn_data")
    assert [t["model"] for t in trained] == ["churn/1"] and models_trained_on(ws, "churn_data", "2") == []
    back = version_lineage(ws, mv)
    assert back["run"]["uuid"] == run and back["datasets"][0]["in_lake"] and back["datasets"][0]["ref"] == \
        "churn_data@1"
