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
