"""Helpers for the tracking tests (a module of its own: `conftest` names collide across test folders)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run_python(code: str, home: Path, *, env: dict[str, str] | None = None, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, MLOPS_DESKTOP_HOME=str(home), PYTHONUNBUFFERED="1")
    full_env.pop("MLOPS_RUN_ID", None)
    full_env.pop("MLOPS_SPOOL", None)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
