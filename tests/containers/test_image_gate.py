"""The promotion gate's image check on a real image: the newest image of the candidate is smoke-tested on the real
engine; a latency budget the container cannot meet fails the check with the figure."""

from __future__ import annotations

import pytest

from mlops_desktop.promotion.checks.base import CheckContext
from mlops_desktop.promotion.checks.image import ImageCheck

pytestmark = pytest.mark.docker


def test_the_gate_smoke_tests_the_candidates_newest_image(ws, tmp_path, churn_version, build, docker_engine):
    record = build(churn_version.ref)
    ctx = CheckContext(ws, 0, churn_version, None, "champion", 0.0, tmp_path)
    check = ImageCheck.from_config({"kind": "image", "latency_budget_ms": 5000, "docker_host": docker_engine.host},
                                   "mlops.toml")
    result = check.run(ctx)
    assert result.passed, result.summary
    assert result.evidence["image"] == record.tag and result.evidence["image_id"] == record.image_id
    assert result.evidence["result"]["mismatches"] == 0 and result.evidence["result"]["rows"] > 0
    assert 0 < result.evidence["latency_ms"] <= 5000
    assert result.summary.startswith(f"{record.tag} passed its smoke test on ")

    tight = ImageCheck.from_config({"kind": "image", "image": record.tag, "latency_budget_ms": 0.001,
                                    "docker_host": docker_engine.host}, "mlops.toml")
    result = tight.run(ctx)
    assert not result.passed and "over the budget of 0.001 ms" in result.summary
