"""The desktop entry installer writes a valid entry whose Exec runs this checkout's app."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_install_desktop_entry_points_exec_at_an_executable(tmp_path):
    if not (ROOT / ".venv" / "bin" / "mlops-desktop").exists() and shutil.which("mlops-desktop") is None:
        pytest.skip("mlops-desktop is not installed in .venv or on PATH")
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "share"))
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "install-desktop-entry.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    entry = tmp_path / "share" / "applications" / "mlops-desktop.desktop"
    fields = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    exe = shlex.split(fields["Exec"])[0]
    assert os.access(exe, os.X_OK)
    assert subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout.startswith(
        "mlops-desktop ")
    assert (tmp_path / "share" / "icons" / "hicolor" / "scalable" / "apps" / "mlops-desktop.svg").exists()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
