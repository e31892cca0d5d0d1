"""Monitoring tests reuse the serving tests' real servers and routers (their helpers are importable from here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SERVING = Path(__file__).resolve().parents[1] / "serving"
if str(SERVING) not in sys.path:
    sys.path.insert(0, str(SERVING))


@pytest.fixture
def deployment(ws, tmp_path, monkeypatch):
    """A managed router "churn" (a real detached process) over two real model servers: v1 stable, v2 breakable."""
    from router_factories import ThresholdClassifier
    from serving_helpers import running

    from mlops_desktop.serving import router_manager
    from mlops_desktop.serving.app import ServedModel

    class Breakable(ThresholdClassifier):
        broken = False

        def predict(self, columns):
            if self.broken:
                raise RuntimeError("planted failure")
            return super().predict(columns)

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    bad = Breakable()
    with running(ServedModel("churn", "1", ThresholdClassifier())) as a, running(ServedModel("churn", "2", bad)) as b:
        cfg = tmp_path / "churn.toml"
        cfg.write_text(f'name = "churn"\nport = 0\nstable = "v1"\n[health]\ninterval_s = 0.2\n'
                       f'[[arms]]\nname = "v1"\nweight = 50\nversion = "1"\nbackends = ["{a.url}"]\n'
                       f'[[arms]]\nname = "v2"\nweight = 50\nversion = "2"\nbackends = ["{b.url}"]\n')
        router = router_manager.start(ws, "churn", cfg)
        try:
            yield router, bad
        finally:
            router_manager.stop(ws, "churn", timeout=10)
