"""nvidia-smi parsing on the real H200 outputs, and the inventory probe on this machine (and a named fake GPU)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mlops_desktop.execution.inventory import collect_local, parse_probe
from mlops_desktop.execution.nvidia import NvidiaSmiParseError, parse_compute_apps, parse_gpus

FIXTURES = Path(__file__).parent / "fixtures"


def test_parses_real_h200_noheader_nounits() -> None:
    [gpu] = parse_gpus((FIXTURES / "nvidia-smi-query-gpu-noheader-nounits.csv").read_text())
    assert gpu.index == 0
    assert gpu.uuid == "GPU-a05e227c-9245-8f05-33b8-2ce227c9f028"
    assert gpu.name == "NVIDIA H200"
    assert gpu.memory_total_mib == 143771
    assert gpu.memory_used_mib == 0
    assert gpu.utilization_pct == 0
    assert gpu.temperature_c == 38
    assert gpu.power_w == pytest.approx(126.96)
    assert gpu.memory_fraction == 0


def test_parses_real_h200_with_header_and_units() -> None:
    [gpu] = parse_gpus((FIXTURES / "nvidia-smi-query-gpu.csv").read_text())
    assert (gpu.index, gpu.name, gpu.memory_total_mib, gpu.power_w) == (0, "NVIDIA H200", 143771, 127.93)


def test_compute_apps_header_only_means_no_process() -> None:
    assert parse_compute_apps((FIXTURES / "nvidia-smi-compute-apps.csv").read_text()) == []


def test_compute_apps_rows_and_not_available_values() -> None:
    text = "GPU-a, 4242, python3 train.py, 1024\nGPU-b, 17, /usr/bin/x, [N/A]\n"
    procs = parse_compute_apps(text)
    assert [(p.gpu_uuid, p.pid, p.used_memory_mib) for p in procs] == [("GPU-a", 4242, 1024), ("GPU-b", 17, None)]


def test_malformed_line_names_the_line() -> None:
    good = (FIXTURES / "nvidia-smi-query-gpu-noheader-nounits.csv").read_text()
    with pytest.raises(NvidiaSmiParseError, match="line 2"):
        parse_gpus(good + "1, GPU-x, broken\n")
    with pytest.raises(NvidiaSmiParseError, match="not a number"):
        parse_gpus("0, GPU-x, NVIDIA H200, lots, 0, 0, 38, 126.96\n")


def test_probe_parse_keeps_nvidia_failure_as_gpu_error() -> None:
    text = "@@uname\nLinux 6.1\n@@cpus\n8\n@@gpus\nNVIDIA-SMI has failed because it couldn't communicate\n@@gpus_rc 9\n"
    inv = parse_probe(text)
    assert inv.cpus == 8 and inv.gpus == []
    assert "exit 9" in inv.gpu_error and "couldn't communicate" in inv.gpu_error


def test_local_inventory_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    if any(Path(d, "nvidia-smi").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("this machine has nvidia-smi in /usr/bin")
    inv = collect_local()
    assert inv.cpus == os.cpu_count()
    assert inv.memory_total_mib and inv.memory_total_mib > inv.memory_available_mib > 0
    assert inv.python.count(".") == 2
    assert inv.gpus == [] and "nvidia-smi not found" in inv.gpu_error


def _fake_nvidia_smi(bin_dir: Path, gpu_lines: str) -> None:
    """A FAKE nvidia-smi (no GPU here): prints the real H200 captures, as the real tool would for our queries."""
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gpus.csv").write_text(gpu_lines)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"""#!/bin/sh
case "$1" in
  --query-gpu=*) cat '{bin_dir}/gpus.csv' ;;
  --query-compute-apps=*) echo 'GPU-a05e227c-9245-8f05-33b8-2ce227c9f028, 999, python3, 2048' ;;
  *) exit 2 ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_local_inventory_with_fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = (FIXTURES / "nvidia-smi-query-gpu-noheader-nounits.csv").read_text()
    second = real.replace("0, GPU-a05e", "1, GPU-b05e")
    _fake_nvidia_smi(tmp_path / "bin", real + second)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    inv = collect_local()
    assert [g.index for g in inv.gpus] == [0, 1]
    assert inv.gpus[0].name == "NVIDIA H200" and inv.gpu_error == ""
    assert inv.gpu_processes[0].pid == 999 and inv.gpu_processes[0].used_memory_mib == 2048
