"""The Hosts and Jobs areas, offscreen with real widgets: inspect, GPU bars, live log tail, cancel, unknown keys."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")

from mlops_desktop.execution import Executor, HostRegistry, JobRequest  # noqa: E402
from mlops_desktop.execution.nvidia import parse_gpus  # noqa: E402

pytestmark = pytest.mark.gui
FIXTURES = Path(__file__).parent / "fixtures"



@pytest.fixture
def hosts_view(ctx, qtbot):
    from mlops_desktop.gui.views.hosts_view import HostsView

    view = HostsView(ctx)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    qtbot.waitUntil(lambda: view.model.rowCount() >= 1, timeout=5000)
    return view


@pytest.fixture
def jobs_view(ctx, qtbot):
    from mlops_desktop.gui.views.jobs_view import JobsView

    view = JobsView(ctx)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    yield view
    view.timer.stop()


def test_hosts_view_inspects_this_machine(hosts_view, qtbot) -> None:
    view = hosts_view
    assert view.selected_host().name == "local" and not view.remove_button.isEnabled()
    view.inspect_selected()
    qtbot.waitUntil(lambda: view.selected_host() is not None and view.selected_host().inventory is not None,
                    timeout=15000)
    inv = view.selected_host().inventory
    used = (inv.memory_total_mib - inv.memory_available_mib) / inv.memory_total_mib
    assert view.detail.memory.fraction == pytest.approx(used, abs=0.002)
    assert f"{inv.cpus} CPUs" in view.detail.facts.text()
    assert view.model.data(view.model.index(0, 3)) == str(inv.cpus)


def test_hosts_view_shows_a_bar_pair_per_gpu(hosts_view, ws, qtbot, tmp_path: Path) -> None:
    from mlops_desktop.execution.models import Inventory

    text = (FIXTURES / "nvidia-smi-query-gpu-noheader-nounits.csv").read_text()
    gpus = parse_gpus(text + text.replace("0, GPU-a05e", "1, GPU-b05e").replace(", 0, 0, 38,", ", 71885, 50, 61,"))
    HostRegistry(ws).save_inventory("local", Inventory(cpus=16, memory_total_mib=131072, memory_available_mib=65536,
                                                       gpus=gpus, collected_at=time.time()))
    hosts_view.refresh()
    qtbot.waitUntil(lambda: len(hosts_view.detail.gpu_bars) == 2, timeout=5000)
    (util0, mem0), (util1, mem1) = hosts_view.detail.gpu_bars
    assert util0.fraction == 0 and mem0.fraction == 0
    assert util1.fraction == pytest.approx(0.5) and mem1.fraction == pytest.approx(71885 / 143771, abs=0.001)
    assert "NVIDIA H200" in hosts_view.detail.gpu_note.text()
    assert hosts_view.model.data(hosts_view.model.index(0, 5)) == "2 × NVIDIA H200"
    hosts_view.grab().save(str(tmp_path / "hosts.png"))


@pytest.mark.ssh
def test_hosts_view_asks_before_trusting_an_unknown_key(hosts_view, ws, sshd, qtbot) -> None:
    HostRegistry(ws).add("box", hostname="127.0.0.1", port=sshd.port, user=sshd.user,
                         identity_file=str(sshd.client_key), python=sys.executable)
    hosts_view.refresh()
    qtbot.waitUntil(lambda: hosts_view.model.rowCount() == 2, timeout=5000)
    hosts_view.table.selectRow(1)
    asked: list[str] = []
    hosts_view.confirm = lambda title, text: asked.append(text) or True
    hosts_view.inspect_selected()
    qtbot.waitUntil(lambda: hosts_view.selected_host().inventory is not None, timeout=20000)
    assert asked and "SHA256:" in asked[0]
    assert HostRegistry(ws).known_hosts.read_text().startswith(f"[127.0.0.1]:{sshd.port} ")


def test_jobs_view_runs_the_queue_tails_the_log_and_cancels(jobs_view, ws, qtbot, tmp_path: Path) -> None:
    code = "import time\nfor i in range(400):\n    print('tick', i, flush=True)\n    time.sleep(0.05)\n"
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=[sys.executable, "-c", code], project_dir=str(tmp_path), name="ticker"))
    # the view's background tick starts the queued job (no other process runs the queue)
    qtbot.waitUntil(lambda: any(j.id == job.id and j.state == "running" for j in jobs_view.model.jobs), timeout=10000)
    jobs_view.select_job(job.id)
    qtbot.waitUntil(lambda: "tick 3\n" in jobs_view.log.toPlainText(), timeout=10000)
    text = jobs_view.log.toPlainText()
    assert text.startswith("tick 0\ntick 1\n")
    assert jobs_view.cancel_button.isEnabled()
    jobs_view.grab().save(str(tmp_path / "jobs.png"))
    jobs_view.cancel_selected(ask=False)
    qtbot.waitUntil(lambda: jobs_view.selected_job() is not None and jobs_view.selected_job().state == "cancelled",
                    timeout=15000)
    assert not jobs_view.cancel_button.isEnabled()
    lines = jobs_view.log.toPlainText().splitlines()
    if lines[-1] == "Terminated":  # the job's shell reports the signal that ended it
        lines.pop()
    assert lines == [f"tick {i}" for i in range(len(lines))]  # nothing lost or doubled in the tail


# ---------------------------------------------------------------------------------------------- issue 14: Hosts
def test_add_host_button_opens_the_dialog_and_adds_the_host(hosts_view, ws, qtbot) -> None:
    from PySide6.QtCore import Qt

    qtbot.mouseClick(hosts_view.add_button, Qt.MouseButton.LeftButton)  # clicked(bool) used to reach add_host
    dialog = hosts_view.add_dialog
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "Add SSH host"
    assert not dialog.ok_button.isEnabled()  # nothing typed yet
    dialog.name.setText("bad name!")
    dialog.hostname.setText("gpu1.lan")
    assert "is not valid" in dialog.error.text() and not dialog.ok_button.isEnabled()
    dialog.name.setText("local")
    assert "reserved" in dialog.error.text()
    dialog.name.setText("gpu1")
    dialog.user.setText("ml")
    assert dialog.error.text() == "" and dialog.ok_button.isEnabled()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: hosts_view.add_dialog is None, timeout=5000)  # accepted, closed and deleted
    host = HostRegistry(ws).get("gpu1")
    assert (host.hostname, host.user, host.port) == ("gpu1.lan", "ml", 22)
    qtbot.waitUntil(lambda: hosts_view.selected_host() is not None and hosts_view.selected_host().name == "gpu1",
                    timeout=5000)
    # the same name again: the core refuses, the dialog stays open and says why
    again = hosts_view.open_add_dialog()
    again.name.setText("gpu1")
    again.hostname.setText("other.lan")
    again.submit()
    qtbot.waitUntil(lambda: "already exists" in again.error.text(), timeout=5000)
    assert again.isVisible() and again.ok_button.isEnabled()
    again.reject()
    qtbot.waitUntil(lambda: not hosts_view.ctx.tasks.running(), timeout=5000)


def test_host_snapshot_time_df_disk_and_level_colours(hosts_view, ws, qtbot) -> None:
    import subprocess

    from mlops_desktop.execution.models import Inventory

    # a snapshot taken 40 s ago, memory nearly full, CPU idle
    taken = time.time() - 40
    HostRegistry(ws).save_inventory("local", Inventory(cpus=8, cpu_busy_pct=10.0, memory_total_mib=1000,
                                                       memory_available_mib=40, disk_total_mib=1000,
                                                       disk_free_mib=500, collected_at=taken))
    detail = hosts_view.detail
    hosts_view.disk.pop("local", None)
    hosts_view.refresh()
    stamp = time.strftime("%H:%M:%S", time.localtime(taken))
    qtbot.waitUntil(lambda: stamp in detail.snapshot.text(), timeout=5000)
    assert "s ago" in detail.snapshot.text()
    assert detail.memory.level == "high" and detail.cpu.level == "ok"
    assert detail.memory.bar.styleSheet() != detail.cpu.bar.styleSheet()  # coloured by level
    # Inspect reads the disk as df reports it (Used and Use%, reserved blocks apart)
    hosts_view.inspect_selected()
    qtbot.waitUntil(lambda: "local" in hosts_view.disk and "used" in detail.disk.text.text(), timeout=20000)
    fields = subprocess.run(["df", "-Pk", str(ws.root)], capture_output=True, text=True,
                            check=True).stdout.splitlines()[-1].split()
    used_gib, percent = int(fields[2]) / 1024 / 1024, int(fields[4].rstrip("%"))
    text = detail.disk.text.text()
    shown_used = float(text.split(" GiB used")[0])
    assert shown_used == pytest.approx(used_gib, abs=0.2), text
    assert f"({percent}%)" in text.replace(" %", "%") or f"({percent - 1}%)" in text or f"({percent + 1}%)" in text
    assert detail.disk.fraction == pytest.approx(percent / 100, abs=0.011)
    fresh = time.strftime("%H:%M", time.localtime())
    assert fresh in detail.snapshot.text()
    hosts_view.detail.update_age()
    assert detail.snapshot.text().endswith("s ago")


# ---------------------------------------------------------------------------------------------- issue 14: Jobs
def _new_job_dialog(jobs_view, qtbot, button=None):  # noqa: ANN001, ANN202
    from PySide6.QtCore import Qt

    qtbot.mouseClick(button or jobs_view.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: jobs_view.new_job_dialog is not None and jobs_view.new_job_dialog.isVisible(),
                    timeout=5000)
    return jobs_view.new_job_dialog


def test_jobs_empty_state_points_to_the_new_job_dialog(jobs_view, qtbot) -> None:
    qtbot.waitUntil(lambda: jobs_view.pages.currentWidget() is jobs_view.empty, timeout=5000)
    assert jobs_view.empty_button.isVisible()
    dialog = _new_job_dialog(jobs_view, qtbot, jobs_view.empty_button)
    assert dialog.windowTitle() == "New job"
    dialog.reject()


def test_new_job_dialog_validates_and_submits_a_sweep(jobs_view, ws, qtbot, tmp_path: Path) -> None:
    dialog = _new_job_dialog(jobs_view, qtbot)
    assert dialog.kind() == "recipe" and not dialog.ok_button.isEnabled()
    assert "needs data" in dialog.error.text()  # a recipe without a dataset
    dialog.set_kind("command")
    assert "type the command" in dialog.error.text()
    dialog.command.setText(f"{sys.executable} -c \"print('lr is {{lr}}')\"")
    dialog.params.setPlainText("not a pair")
    assert "key=value" in dialog.error.text() and not dialog.ok_button.isEnabled()
    dialog.params.setPlainText("epochs=2")
    dialog.sweep.setText("grid:lr=")
    assert "sweep" in dialog.error.text().lower() and not dialog.ok_button.isEnabled()
    dialog.sweep.setText("grid:lr=0.1,0.01")
    dialog.gpus.setValue(1)
    assert "GPU" in dialog.error.text()  # this machine has no GPU known
    dialog.gpus.setValue(0)
    dialog.experiment.setCurrentText("gui-sweep")
    assert dialog.error.text() == "" and dialog.ok_button.isEnabled()
    assert dialog.sweep_info.text().startswith("2 jobs")
    dialog.submit()
    qtbot.waitUntil(lambda: len(jobs_view.model.jobs) == 2, timeout=10000)
    qtbot.waitUntil(lambda: all(j.state == "succeeded" for j in jobs_view.model.jobs), timeout=20000)
    jobs = jobs_view.model.jobs
    assert {j.params["lr"] for j in jobs} == {"0.1", "0.01"} and {j.experiment for j in jobs} == {"gui-sweep"}
    assert len({j.parent_run_uuid for j in jobs}) == 1 and jobs[0].parent_run_uuid
    assert jobs_view.pages.currentWidget() is jobs_view.split
    qtbot.waitUntil(lambda: "lr is 0." in jobs_view.log.toPlainText(), timeout=10000)


def test_new_job_dialog_recipe_on_a_dataset_and_a_refused_submit(jobs_view, ws, qtbot, tmp_path: Path) -> None:
    from mlops_desktop.data.ingest import ingest

    csv = tmp_path / "wine.csv"
    csv.write_text("alcohol,acid,label\n13.2,1.7,a\n12.1,2.2,b\n")
    ingest(ws, [str(csv)], "wine")
    HostRegistry(ws).add("box", hostname="127.0.0.1", port=9)
    dialog = _new_job_dialog(jobs_view, qtbot)
    dialog.dataset.setCurrentText("wine")
    assert dialog.target.currentText() == "label"  # guessed from the dataset's columns
    dialog.params.setPlainText("n_estimators=10")
    req = dialog.validate()
    assert req is not None and req.recipe == "sklearn"
    assert req.params == {"n_estimators": "10", "data": "lake:wine", "target": "label",
                          "estimator": "sklearn.ensemble.RandomForestClassifier"}
    # the core refuses (the host went away after the dialog opened): the dialog stays open and says why
    dialog.host.setCurrentIndex(dialog.host.findData("box"))
    HostRegistry(ws).remove("box")
    dialog.submit()
    qtbot.waitUntil(lambda: "box" in dialog.error.text(), timeout=10000)
    assert dialog.isVisible() and dialog.ok_button.isEnabled() and not jobs_view.model.jobs
    dialog.reject()


def test_jobs_table_columns_state_colours_and_run_link(jobs_view, ws, qtbot, tmp_path: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from mlops_desktop.gui import theme
    from mlops_desktop.gui.views import jobs_view as jv

    with Executor(ws) as ex:
        [ok] = ex.submit(JobRequest(command=[sys.executable, "-c", "print(1)"], project_dir="", experiment="exp-a",
                                    name="fine"))
        [bad] = ex.submit(JobRequest(command=[sys.executable, "-c", "raise SystemExit(3)"], project_dir="",
                                     experiment="exp-b", name="broken"))
    qtbot.waitUntil(lambda: {j.state for j in jobs_view.model.jobs} == {"succeeded", "failed"}, timeout=20000)
    model = jobs_view.model
    assert list(model.columns) == ["ID", "State", "Experiment", "Name", "Command", "Host", "GPUs", "Started",
                                   "Duration", "Exit", "Run"]
    row = {j.name: r for r, j in enumerate(model.jobs)}

    def cell(name, col, role=Qt.ItemDataRole.DisplayRole):  # noqa: ANN001, ANN202
        return model.data(model.index(row[name], col), role)

    assert cell("fine", jv.C_EXPERIMENT) == "exp-a" and cell("broken", jv.C_EXIT) == "3"
    assert cell("fine", jv.C_COMMAND) == "python -c 'print(1)'"
    assert cell("fine", jv.C_STARTED) == time.strftime("%H:%M:%S", time.localtime(model.jobs[row["fine"]].started_at))
    assert cell("fine", jv.C_STATE, Qt.ItemDataRole.ForegroundRole) != cell("broken", jv.C_STATE,
                                                                            Qt.ItemDataRole.ForegroundRole)
    light = cell("broken", jv.C_STATE, Qt.ItemDataRole.ForegroundRole).name()
    theme.apply(QApplication.instance(), "dark")
    try:
        assert cell("broken", jv.C_STATE, Qt.ItemDataRole.ForegroundRole).name() != light  # follows the theme
    finally:
        theme.apply(QApplication.instance(), "light")
    right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    assert cell("fine", jv.C_ID, Qt.ItemDataRole.TextAlignmentRole) == right
    assert cell("fine", jv.C_DURATION, Qt.ItemDataRole.TextAlignmentRole) == right
    assert cell("fine", jv.C_NAME, Qt.ItemDataRole.TextAlignmentRole) != right
    # the Run cell is a link: one click opens the job's run in Experiments
    opened: list[dict] = []
    jobs_view.ctx.navigate = lambda area, **kw: opened.append({"area": area, **kw})
    run_uuid = model.jobs[row["broken"]].run_uuid
    assert cell("broken", jv.C_RUN) == run_uuid[:8]
    rect = jobs_view.table.visualRect(model.index(row["broken"], jv.C_RUN))
    qtbot.mouseClick(jobs_view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [{"area": "experiments", "run_uuid": run_uuid}]
