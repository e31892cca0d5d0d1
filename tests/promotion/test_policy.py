"""Policies from mlops.toml: a full one parses; every mistake is refused naming its key; rules evaluate as written."""

from __future__ import annotations

import pytest

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.promotion import rules
from mlops_desktop.promotion.policy import find_policy, from_dict, load_policies
from tests.promotion.promo_helpers import project

FULL = """
[promotion.churn]
trigger = "alias:challenger"
champion_alias = "champion"
approvals = 2
allow_self_approval = true
expires = "36h"
deployments = ["churn-prod"]
[[promotion.churn.checks]]
kind = "holdout"
dataset = "churn_holdout@3"
target = "churned"
require = ["accuracy >= champion - 0.01", "f1_macro > 0.6"]
[[promotion.churn.checks]]
kind = "contract"
dataset = "churn_holdout@3"
[[promotion.churn.checks]]
kind = "backtest"
dataset = "events@2"
time_col = "ts"
test_window = "7d"
require = ["accuracy >= champion - 0.02"]
[[promotion.churn.checks]]
kind = "image"
latency_budget_ms = 50
[[promotion.churn.checks]]
kind = "shadow"
router = "churn-ab"
arm = "v4"
requests = 500
minutes = 30
require = ["agreement >= 0.95", "p95_latency_ms <= champion * 1.5"]

[promotion.churn-fast]
model = "churn"
"""


def test_a_full_policy_parses_and_round_trips(tmp_path):
    policies = load_policies(project(tmp_path, FULL))
    p = policies["churn"]
    assert (p.model, p.trigger, p.trigger_alias, p.approvals, p.allow_self_approval) == \
        ("churn", "alias:challenger", "challenger", 2, True)
    assert p.expires_s == 36 * 3600 and p.deployments == ("churn-prod",)
    assert [c.kind for c in p.checks] == ["holdout", "contract", "backtest", "image", "shadow"]
    assert p.checks[0].rules[0].relative and p.checks[0].rules[0].value == 0.01
    again = from_dict(p.to_dict())
    assert again.to_dict() == p.to_dict()
    assert policies["churn-fast"].model == "churn" and policies["churn-fast"].checks == []


def test_find_policy_by_model_or_name(tmp_path):
    root = project(tmp_path, FULL)
    with pytest.raises(UsageError, match="several policies are for model 'churn'"):
        find_policy(root, "churn")
    assert find_policy(root, "churn", "churn-fast").name == "churn-fast"
    with pytest.raises(NotFoundError, match="no promotion policy for model 'other'"):
        find_policy(root, "other")
    with pytest.raises(NotFoundError, match=r"no policy \[promotion.nope\]"):
        find_policy(root, "churn", "nope")


@pytest.mark.parametrize(("body", "message"), [
    ("[promotion.churn]\napprovel = 1\n", r"\[promotion.churn\]: unknown key\(s\) approvel"),
    ("[promotion.churn]\ntrigger = \"nightly\"\n", r"\[promotion.churn\].trigger = 'nightly'"),
    ("[promotion.churn]\napprovals = 0\n", r"\[promotion.churn\].approvals must be a whole number"),
    ("[promotion.churn]\nexpires = \"soon\"\n", r"\[promotion.churn\].expires = 'soon' is not a duration"),
    ("[promotion.churn]\nallow_self_approval = \"yes\"\n", r"allow_self_approval must be true or false"),
    ("[promotion.churn]\nmodel = \"Bad Name\"\n", r"\[promotion.churn\].model"),
    ("[[promotion.churn.checks]]\nkind = \"vibes\"\n", r"checks\[0\].kind: unknown check kind 'vibes'"),
    ("[[promotion.churn.checks]]\nkind = \"holdout\"\ndataset = \"h\"\ntarget = \"y\"\nrequire = [\"accuracy > 0\"]\n",
     r"checks\[0\].dataset = 'h' is not pinned to a version"),
    ("[[promotion.churn.checks]]\nkind = \"holdout\"\ndataset = \"h@1\"\ntarget = \"y\"\nrequire = [\"accuracy ~ 1\"]\n",
     r"checks\[0\].require\[0\]: cannot read the rule 'accuracy ~ 1'"),
    ("[[promotion.churn.checks]]\nkind = \"holdout\"\ndataset = \"h@1\"\ntarget = \"y\"\nrequire = [\"acc >= 1\"]\n",
     r"checks\[0\].require\[0\]: unknown metric 'acc'"),
    ("[[promotion.churn.checks]]\nkind = \"holdout\"\ndataset = \"h@1\"\nrequire = [\"accuracy >= 1\"]\n",
     r"checks\[0\]: target is required"),
    ("[[promotion.churn.checks]]\nkind = \"shadow\"\nrouter = \"r\"\narm = \"a\"\n",
     r"checks\[0\]: say how much shadow traffic"),
    ("[[promotion.churn.checks]]\nkind = \"shadow\"\nrouter = \"r\"\narm = \"a\"\nrequests = 10\ncolour = 1\n",
     r"checks\[0\]: unknown key\(s\) colour"),
    ("[[promotion.churn.checks]]\nkind = \"shadow\"\nrouter = \"../../etc\"\narm = \"a\"\nrequests = 1\n",
     r"checks\[0\].router = '../../etc' is not a managed router's name"),
    ("[[promotion.churn.checks]]\nkind = \"image\"\nlatency_budget_ms = \"fast\"\n",
     r"checks\[0\].latency_budget_ms must be a number"),
    ("[[promotion.churn.checks]]\nkind = \"contract\"\ndataset = \"h@1\"\n[[promotion.churn.checks]]\n"
     "kind = \"contract\"\ndataset = \"h@2\"\n", r"the name\(s\) contract are used twice"),
    ("[promotion.churn\n", r"is not valid TOML"),
])
def test_mistakes_are_refused_naming_the_key(tmp_path, body, message):
    with pytest.raises(UsageError, match=message) as info:
        load_policies(project(tmp_path, body))
    assert "mlops.toml" in str(info.value)


def test_rules_against_numbers_and_the_champion():
    rule = rules.parse_rule("accuracy >= champion - 0.01", "x")
    assert rules.evaluate(rule, {"accuracy": 0.80}, {"accuracy": 0.805}).passed
    failed = rules.evaluate(rule, {"accuracy": 0.79}, {"accuracy": 0.805})
    assert not failed.passed and failed.reference == pytest.approx(0.795) and "0.79 >= 0.795: no" in failed.detail
    no_champ = rules.evaluate(rule, {"accuracy": 0.99}, None)
    assert not no_champ.passed and "there is no champion" in no_champ.detail
    assert not rules.evaluate(rule, {}, {"accuracy": 0.5}).passed  # the candidate lacks the figure: never a pass
    factor = rules.parse_rule("p95_latency_ms <= champion * 1.5", "x")
    assert rules.evaluate(factor, {"p95_latency_ms": 14.0}, {"p95_latency_ms": 10.0}).passed
    assert not rules.evaluate(factor, {"p95_latency_ms": 16.0}, {"p95_latency_ms": 10.0}).passed
    absolute = rules.parse_rule("error_rate <= 0.01", "x")
    assert rules.evaluate(absolute, {"error_rate": 0.0}, None).passed
    assert not rules.evaluate(absolute, {"error_rate": float("nan")}, None).passed
