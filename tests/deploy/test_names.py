"""Hostile and malformed names, references and values are refused in words before anything reaches an engine."""

from __future__ import annotations

import pytest

from mlops_desktop.deploy import names
from mlops_desktop.errors import UsageError


@pytest.mark.parametrize("bad, words", [
    ("", "empty"),
    ("Churn", "'C'"),
    ("churn_api", "'_'"),
    ("churn;rm -rf /", "';'"),
    ("$(reboot)", "'$'"),
    ("../etc", "'.'"),
    ("-churn", "start with a letter"),
    ("9churn", "start with a letter"),
    ("churn-", "end with a letter or digit"),
    ("xn--churn", "'--'"),
    ("a" * 41, "41 characters"),
    ("churn\n", "'\\n'"),
    ("chürn", "'ü'"),
])
def test_bad_deployment_names_are_refused_in_words(bad, words):
    with pytest.raises(UsageError) as err:
        names.check_deployment_name(bad)
    assert words in str(err.value) and "deployment name" in str(err.value)


def test_a_valid_name_and_a_suggestion():
    assert names.check_deployment_name("churn-api-2") == "churn-api-2"
    assert names.check_deployment_name("a" * 40) == "a" * 40
    with pytest.raises(UsageError) as err:
        names.check_deployment_name("Churn API v2")
    assert "'churn-api-v2'" in str(err.value)
    with pytest.raises(UsageError):
        names.check_deployment_name(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", ["churn/0", "churn/x", "Churn/1", "churn@Prod", "churn@latest", "churn /1",
                                 "churn/1;ls", "churn@v2", "", "churn\t/1", "../x/1"])
def test_bad_model_references_are_refused(ref):
    with pytest.raises(UsageError):
        names.check_model_ref(ref)


def test_model_references_parse():
    assert str(names.check_model_ref("churn/3")) == "churn/3"
    assert names.check_model_ref("churn@production").alias == "production"


def test_env_and_resources():
    assert names.check_env({"A_B": "x y"}) == {"A_B": "x y"}
    for bad in ({"1A": "x"}, {"A-B": "x"}, {"MLOPS_TOKEN": "x"}, {"A": "x\x00"}):
        with pytest.raises(UsageError):
            names.check_env(bad)
    assert names.parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        names.parse_env(["A"])
    assert names.check_memory("512Mi") == 512 * 1024**2
    assert names.check_memory("1g") == 10**9
    assert names.check_memory(None) is None
    for bad in ("lots", "1k", "-5Mi", True):
        with pytest.raises(UsageError):
            names.check_memory(bad)
    assert names.check_cpu("0.5") == 0.5
    for bad in ("x", 0, 5000):
        with pytest.raises(UsageError):
            names.check_cpu(bad)
    for bad in (-1, 1.5, True, 1001):
        with pytest.raises(UsageError):
            names.check_replicas(bad)
    with pytest.raises(UsageError):
        names.check_port(0)
    assert names.check_header("X-User-Id") == "x-user-id"
    with pytest.raises(UsageError):
        names.check_header("x user")
    with pytest.raises(UsageError):
        names.check_namespace("Kube_System")
    with pytest.raises(UsageError):
        names.check_context("ctx; rm")
