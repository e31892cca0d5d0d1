"""The engine plugin's rules: markers follow the fixtures; under CI=true a skipped engine test is a failure."""

from __future__ import annotations

import pytest

INNER = '''
import pytest

@pytest.mark.docker
def test_engine_marked():
    pytest.skip("no engine here")

def test_plain():
    pytest.skip("an ordinary skip")

def test_uses_prometheus(prometheus):
    pass
'''


@pytest.fixture
def inner(pytester, monkeypatch):
    pytester.makeconftest('pytest_plugins = ["engines.plugin"]\n')
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("MLOPS_TEST_PROMETHEUS", str(pytester.path / "no-such-prometheus"))
    monkeypatch.setenv("PATH", "/nonexistent")  # no promtool/prometheus found on PATH either
    return pytester


def test_skips_outside_ci(inner, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = inner.runpytest_inprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*Prometheus is not installed*"])


def test_engine_skips_fail_under_ci(inner, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = inner.runpytest_inprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(failed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(["*CI=true: this docker test must run, but it was skipped: *no engine here*",
                                 "*CI=true but an engine test cannot run: Prometheus is not installed*"])


def test_fixtures_add_their_markers(inner, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = inner.runpytest_inprocess("-p", "no:cacheprovider", "-m", "prometheus", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_uses_prometheus*"])
    assert "test_plain" not in result.stdout.str()
