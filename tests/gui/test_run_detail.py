"""Run detail: attributes, metric summary, editable tags, notes, artifact export; switching workspaces."""

from __future__ import annotations

import numpy as np
from gui_helpers import make_runs, wait_idle

from mlops_desktop.gui.run_detail import RunDetail


def test_detail_shows_and_edits_a_run(ctx, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("detail")
    run = store.create_run(exp.id, name="resnet", command="python train.py --lr 0.1", host="gpu-1",
                           git_commit="abc1234", git_dirty=True, params={"lr": 0.1}, tags={"stage": "dev"})
    store.log_metric_arrays(run.uuid, "loss", np.arange(3, dtype=np.int64), np.arange(3, dtype=np.int64),
                            np.array([3.0, 1.0, 2.0]))
    model_file = tmp_path / "model.json"
    model_file.write_text('{"weights": [1, 2, 3]}')
    store.log_artifact(run.uuid, model_file)
    store.log_input(run.uuid, "sales", "v3")
    detail = RunDetail(ctx)
    qtbot.addWidget(detail)
    detail.show_run(run.uuid)
    qtbot.waitUntil(lambda: detail.run is not None, timeout=5000)
    assert detail.header.text() == "resnet"
    assert detail.fields["command"].text() == "python train.py --lr 0.1"
    assert detail.fields["git"].text() == "abc1234 (uncommitted changes)"
    assert detail.fields["inputs"].text() == "sales@v3"
    cells = [detail.metrics.item(0, c).text() for c in range(5)]
    assert cells == ["loss", "2", "1", "3", "3"]
    # edit a tag value in place
    detail.tags.item(0, 1).setText("prod")
    qtbot.waitUntil(lambda: store.get_run(run.uuid).tags == {"stage": "prod"}, timeout=5000)
    # notes
    detail.notes.setPlainText("best so far")
    detail.save_notes.click()
    qtbot.waitUntil(lambda: store.get_run(run.uuid).notes == "best so far", timeout=5000)
    # export the artifact
    target = tmp_path / "exported.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.waitUntil(lambda: detail.artifacts_table.rowCount() == 1, timeout=5000)
    detail.artifacts_table.selectRow(0)
    detail._export_artifact()
    qtbot.waitUntil(target.exists, timeout=5000)
    assert target.read_text() == '{"weights": [1, 2, 3]}'
    wait_idle(qtbot, ctx)


def test_switch_workspace(window, ctx, qtbot, tmp_path):
    make_runs(ctx.workspace.tracking, 3, experiment="first")
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    assert view.model.total == 3
    from mlops_desktop.workspace import Workspace

    with Workspace.open(tmp_path / "other") as other:
        make_runs(other.tracking, 5, experiment="second")
    window.switch_workspace(tmp_path / "other")
    wait_idle(qtbot, ctx)
    qtbot.waitUntil(lambda: view.model.total == 5, timeout=5000)
    names = [view.experiments.item(i).text() for i in range(view.experiments.count())]
    assert any(n.startswith("second") for n in names) and not any(n.startswith("first") for n in names)
    window.switch_workspace(tmp_path / "no-permission" / "\0bad")
    assert ctx.notifications.history[-1].level == "error"


def test_open_refuses_escaping_or_runnable_artifacts(tmp_path):
    import pytest

    from mlops_desktop.gui.run_detail import open_copy_path

    cache = tmp_path / "cache"
    assert open_copy_path(cache, "plots/loss.png") == (cache / "plots" / "loss.png").resolve()
    with pytest.raises(ValueError, match="outside"):
        open_copy_path(cache, "../../home/.bashrc")
    with pytest.raises(ValueError, match="could run as a program"):
        open_copy_path(cache, "launcher.desktop")
    with pytest.raises(ValueError, match="could run as a program"):
        open_copy_path(cache, "train.SH")


def test_names_from_training_code_are_never_rich_text(ctx, qtbot):
    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("html")
    run = store.create_run(exp.id, name='<img src="file:///etc/passwd">', host="<b>h</b>")
    detail = RunDetail(ctx)
    qtbot.addWidget(detail)
    detail.show_run(run.uuid)
    qtbot.waitUntil(lambda: detail.run is not None, timeout=5000)
    assert detail.header.textFormat() == detail.header.textFormat().PlainText
    assert detail.header.text() == '<img src="file:///etc/passwd">'
    assert detail.fields["host"].textFormat() == detail.header.textFormat().PlainText


def test_a_failed_run_says_why(ctx, qtbot):
    """Issue 14: the exception, its message and the last lines of its output on the run page (mlops.error.*)."""
    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("fails")
    failed = store.create_run(exp.id, name="diverged", tags={
        "mlops.error": "ValueError: loss is NaN at step 120",
        "mlops.error.type": "ValueError",
        "mlops.error.message": "loss is NaN at step 120",
        "mlops.error.traceback": 'File "train.py", line 88, in step\n    raise ValueError("loss is NaN")',
        "mlops.error.exit_code": "1",
        "mlops.error.output_tail": "epoch 3 loss=nan\nTraceback (most recent call last):",
    })
    store.set_terminated(failed.uuid, "failed")
    quiet = store.create_run(exp.id, name="old-failure")
    store.set_terminated(quiet.uuid, "failed")
    killed = store.create_run(exp.id, name="cancelled")
    store.set_terminated(killed.uuid, "killed")
    fine = store.create_run(exp.id, name="fine")
    store.set_terminated(fine.uuid, "finished")
    detail = RunDetail(ctx)
    qtbot.addWidget(detail)
    detail.show()

    def show(uuid):
        detail.show_run(uuid)
        qtbot.waitUntil(lambda: detail.run is not None and detail.run.uuid == uuid, timeout=5000)

    show(failed.uuid)
    box = detail.failure
    assert box.isVisible()
    assert box.headline.text() == "Failed: ValueError (exit code 1)"
    assert box.message.text() == "loss is NaN at step 120"
    text = box.details.toPlainText()
    assert 'File "train.py", line 88' in text and "epoch 3 loss=nan" in text
    show(quiet.uuid)
    assert box.isVisible() and "recorded no reason" in box.message.text()
    show(killed.uuid)
    assert box.headline.text().startswith("Stopped by a signal")
    show(fine.uuid)
    assert not box.isVisible()
