"""The build-log pane: lines stream in while the work runs (off the GUI thread), Cancel stops it, failures and
results are shown in words; on the real engine it shows a real image build."""

from __future__ import annotations

import threading
import time

import pytest

from mlops_desktop.containers import BuildCancelled
from mlops_desktop.errors import UsageError
from tests.containers.conftest import deps_repository  # noqa: F401 - the session's package image, shared

pytestmark = pytest.mark.gui


def _pane(qtbot, ctx):
    from mlops_desktop.gui.views.build_log import BuildLogPane

    pane = BuildLogPane(ctx)
    qtbot.addWidget(pane)
    pane.resize(900, 400)
    pane.show()
    return pane


def _streaming(on_log, cancel, lines=5, until_cancel=True):
    for i in range(lines):
        on_log(f"Step {i + 1}/{lines} : COPY something")
        time.sleep(0.01)
    if until_cancel:
        if not cancel.wait(20):
            raise AssertionError("never cancelled")
        raise BuildCancelled("the build was cancelled; nothing was tagged")
    return "done"


def test_lines_stream_live_and_cancel_stops_the_work(qtbot, ctx):
    pane = _pane(qtbot, ctx)
    seen_thread: list[threading.Thread] = []

    def work(on_log, cancel):
        seen_thread.append(threading.current_thread())
        return _streaming(on_log, cancel)

    pane.start(work, title="Build image of churn/1")
    assert pane.running and pane.cancel_button.isEnabled() and pane.state_label.text() == "Running"
    qtbot.waitUntil(lambda: "Step 5/5" in pane.log.toPlainText(), timeout=5000)
    assert seen_thread[0] is not threading.main_thread()
    with qtbot.waitSignal(pane.cancelled, timeout=10000):
        pane.cancel_button.click()
    assert pane.state == "cancelled" and "nothing was tagged" in pane.result_label.text()
    assert not pane.cancel_button.isEnabled()


def test_a_failure_is_shown_in_words_and_a_result_summarised(qtbot, ctx):
    pane = _pane(qtbot, ctx)

    def bad(on_log, cancel):
        on_log("Step 1/10 : FROM nowhere")
        raise UsageError("the base image nowhere:1 cannot be pulled")

    with qtbot.waitSignal(pane.failed, timeout=10000):
        pane.start(bad, title="Build image of churn/1")
    assert pane.state == "failed" and "nowhere:1 cannot be pulled" in pane.result_label.text()
    with qtbot.waitSignal(pane.finished, timeout=10000) as done:
        pane.start(lambda on_log, cancel: _streaming(on_log, cancel, until_cancel=False), title="again")
    assert done.args == ["done"] and pane.state == "succeeded" and pane.log.toPlainText().count("Step") == 5


@pytest.mark.docker
def test_a_real_build_streams_into_the_pane(qtbot, ctx, tmp_path, docker_engine, docker_scope,
                                            deps_repository):  # noqa: F811
    from tests.containers.conftest import register_churn

    mv = register_churn(ctx.workspace, tmp_path)
    pane = _pane(qtbot, ctx)
    with qtbot.waitSignal(pane.finished, timeout=600_000) as done:
        pane.start_build(mv.ref, docker_host=docker_engine.host, base=docker_engine.base_image,
                         tag=f"{docker_scope.name('gui')}:1", deps_repository=deps_repository,
                         labels=docker_scope.labels)
    text = pane.log.toPlainText()
    assert "Step 1/" in text and "Successfully built" in text
    assert done.args[0].tag in pane.result_label.text() and pane.state == "succeeded"
