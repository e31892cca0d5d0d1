"""Disk usage as `df` reports it: size, used, available and use% (used / (used + available), reserved blocks apart).

The host inventory keeps a disk's size and the space available to users; "used" is not "size - available" on most
file systems, which keep blocks reserved for root (5 % on ext4): that sum over-states the use by the reserve. This
module reads `df -Pk` itself, here or over an open SSH session, so the Hosts area can show the numbers a user sees
in a terminal.
"""

from __future__ import annotations

import math
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from mlops_desktop.execution.errors import SshError


@dataclass(frozen=True)
class DiskUsage:
    total_mib: float
    used_mib: float
    available_mib: float
    mount: str = ""
    collected_at: float = 0.0

    @property
    def use_fraction(self) -> float:
        """df's Use%: used / (used + available), rounded up to a whole percent as df does."""
        room = self.used_mib + self.available_mib
        return 0.0 if room <= 0 else math.ceil(self.used_mib * 100 / room) / 100


def df_command(path: str) -> str:
    """A POSIX shell line printing df's data line for ``path`` (the current folder if ``path`` is not there)."""
    return f"(df -Pk {shlex.quote(path)} 2>/dev/null || df -Pk . 2>/dev/null) | tail -n 1"


def parse_df(line: str) -> DiskUsage | None:
    """One `df -Pk` data line ("/dev/sda1 1024-blocks Used Available Capacity Mounted-on") -> DiskUsage."""
    parts = line.split()
    # a long device name may push the numbers right; they are the four fields before the mount point
    for start in range(1, max(1, len(parts) - 4)):
        fields = parts[start:start + 4]
        if len(fields) == 4 and all(f.isdigit() for f in fields[:3]) and fields[3].rstrip("%").isdigit():
            total, used, available = (int(f) / 1024 for f in fields[:3])
            mount = " ".join(parts[start + 4:])
            return DiskUsage(total, used, available, mount, time.time())
    return None


def measure_local(path: str) -> DiskUsage | None:
    try:
        proc = subprocess.run(["/bin/sh", "-c", df_command(path)], capture_output=True, text=True, timeout=15,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_df(proc.stdout.strip())


def measure(executor: Any, host_name: str) -> DiskUsage | None:
    """The disk of a host's work folder (this machine: the workspace) as df reports it; None when df is missing.
    ``executor`` is an ``Executor``: its open SSH session is reused, as by the inventory probe."""
    host = executor.hosts.get(host_name)
    if host.is_local:
        return measure_local(str(executor.ws.root))
    try:
        session = executor.remote.session(host)
        outcome = session.run(df_command(host.work_dir or session.home), timeout=30)
    except SshError:
        executor.remote.drop(host.name)
        raise
    return parse_df(outcome.stdout.strip()) if outcome.ok else None
