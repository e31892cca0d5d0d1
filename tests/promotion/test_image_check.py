"""The promotion gate's image check against the real containers API: no image, an unknown image."""

from __future__ import annotations

from mlops_desktop.promotion.checks.base import CheckContext
from mlops_desktop.promotion.checks.image import ImageCheck, smoke_test_fn
from tests.promotion.promo_helpers import champion_and_candidate


def test_the_containers_capability_is_found():
    from mlops_desktop import containers

    assert smoke_test_fn() is containers.smoke_test


def test_a_candidate_without_an_image_fails_and_says_how_to_build_one(ws, tmp_path):
    _, champ, cand = champion_and_candidate(ws, tmp_path)
    check = ImageCheck.from_config({"kind": "image", "latency_budget_ms": 50}, "mlops.toml")
    result = check.run(CheckContext(ws, 0, cand, champ, "champion", 0.0, tmp_path))
    assert not result.passed
    assert result.summary == (f"{cand.ref} has no container image to smoke-test: build one with "
                              f"`mlops-desktop images build {cand.ref}`")


def test_an_unknown_image_fails_in_words(ws, tmp_path):
    _, champ, cand = champion_and_candidate(ws, tmp_path)
    check = ImageCheck.from_config({"kind": "image", "image": "nowhere/churn:9"}, "mlops.toml")
    result = check.run(CheckContext(ws, 0, cand, champ, "champion", 0.0, tmp_path))
    assert not result.passed and result.summary.startswith("the smoke test of nowhere/churn:9 could not run: ")
    assert "Traceback" not in result.summary
