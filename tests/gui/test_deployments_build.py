"""The Deployments area's build log pane on the real Docker engine: `images build` streams its log into the pane as
it is written, the record is shown when it ends, and Cancel stops a build with no image tagged."""

from __future__ import annotations

import pytest
from gui_helpers import wait_idle

from tests.containers.conftest import churn_version, deps_repository  # noqa: F401 - fixtures used by name

pytestmark = pytest.mark.docker


@pytest.fixture
def pane(ctx, qtbot):
    from mlops_desktop.gui.views.deploy_logs import BuildLogPane

    widget = BuildLogPane(ctx)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    yield widget
    widget.cancel()
    wait_idle(qtbot, ctx, 60_000)


def _tags(docker_engine) -> list[str]:
    return [t for image in docker_engine.client().images.list() for t in image.tags]


def test_build_log_streams_live_and_shows_the_image(pane, ctx, qtbot, churn_version, docker_engine,  # noqa: F811
                                                     docker_scope, deps_repository):  # noqa: F811
    tag = f"{docker_scope.name('gui-build')}:1"
    seen_while_building: list[int] = []
    pane.timer.timeout.connect(lambda: seen_while_building.append(pane.view.blockCount()) if pane.building else None)
    pane.start(churn_version.ref, docker_engine.base_image, docker_engine.host, tag=tag,
               labels=docker_scope.labels, deps_repository=deps_repository)
    assert pane.building and pane.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not pane.building, timeout=400_000)
    assert pane.record is not None, pane.state.text()
    assert pane.record.tag == tag and pane.state.text().startswith(f"built {tag} · ")
    assert "Step 1/" in pane.view.toPlainText()
    assert max(seen_while_building, default=0) > 3, "no log lines arrived before the build ended"
    assert not pane.cancel_button.isEnabled()
    assert tag in _tags(docker_engine)


def test_cancel_stops_the_build_and_nothing_is_tagged(pane, ctx, qtbot, churn_version, docker_engine,  # noqa: F811
                                                      docker_scope, deps_repository):  # noqa: F811
    tag = f"{docker_scope.name('gui-cancelled')}:1"
    pane.start(churn_version.ref, docker_engine.base_image, docker_engine.host, tag=tag,
               labels=docker_scope.labels, deps_repository=deps_repository)
    qtbot.waitUntil(lambda: "Step 2/" in pane.view.toPlainText(), timeout=300_000)
    pane.cancel_button.click()
    qtbot.waitUntil(lambda: not pane.building, timeout=120_000)
    assert pane.state.text() == "cancelled: no image was tagged"
    assert pane.record is None
    assert tag not in _tags(docker_engine)
