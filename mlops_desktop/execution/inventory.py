"""Host inventory: one POSIX shell probe (OS, CPUs, memory, disk, Python, nvidia-smi) run locally or over SSH."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from typing import Any

from mlops_desktop.execution.models import Host, Inventory
from mlops_desktop.execution.nvidia import APP_QUERY, GPU_QUERY, NvidiaSmiParseError, parse_compute_apps, parse_gpus


def probe_script(python: str, disk_path: str) -> str:
    """The shell probe; every section starts with a '@@name' line so that a failing tool cannot confuse the parse."""
    py = shlex.quote(python)
    disk = shlex.quote(disk_path)
    return "\n".join([
        "echo @@uname; uname -sr 2>/dev/null",
        "echo @@os; (. /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\") || uname -s",
        "echo @@cpus; getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null",
        "echo @@stat1; head -n 1 /proc/stat 2>/dev/null",
        "echo @@meminfo; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null",
        "echo @@loadavg; cat /proc/loadavg 2>/dev/null",
        f"echo @@df; (df -Pk {disk} 2>/dev/null || df -Pk . 2>/dev/null) | tail -n 1",
        f"echo @@python; {py} -c 'import sys; print(sys.version.split()[0])' 2>&1 || echo '!missing'",
        "echo @@gpus",
        f"if command -v nvidia-smi >/dev/null 2>&1; then {GPU_QUERY} 2>&1; echo \"@@gpus_rc $?\"; "
        f"echo @@apps; {APP_QUERY} 2>&1; echo \"@@apps_rc $?\"; else echo '@@gpus_rc absent'; fi",
        "sleep 0.2; echo @@stat2; head -n 1 /proc/stat 2>/dev/null",
        "echo @@end",
    ])


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@"):
            name, _, rest = line[2:].partition(" ")
            current = name
            sections[name] = [rest] if rest else []
            if name.endswith("_rc"):
                current = None
            continue
        if current is not None:
            sections[current].append(line)
    return sections


def _cpu_busy(stat1: list[str], stat2: list[str]) -> float | None:
    try:
        a = [int(x) for x in stat1[0].split()[1:]]
        b = [int(x) for x in stat2[0].split()[1:]]
    except (IndexError, ValueError):
        return None
    total = sum(b) - sum(a)
    idle = (b[3] + (b[4] if len(b) > 4 else 0)) - (a[3] + (a[4] if len(a) > 4 else 0))
    return None if total <= 0 else round(100.0 * (total - idle) / total, 1)


def parse_probe(text: str) -> Inventory:
    """Turn the probe's output into an Inventory; missing pieces stay empty, nvidia-smi errors go to gpu_error."""
    s = _sections(text)

    def first(name: str) -> str:
        lines = [ln for ln in s.get(name, []) if ln.strip()]
        return lines[0].strip() if lines else ""

    inv = Inventory(collected_at=time.time())
    inv.kernel = first("uname")
    inv.os = first("os")
    cpus = first("cpus")
    inv.cpus = int(cpus) if cpus.isdigit() else 0
    for line in s.get("meminfo", []):
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            mib = int(parts[0]) / 1024
            if key == "MemTotal":
                inv.memory_total_mib = mib
            elif key == "MemAvailable":
                inv.memory_available_mib = mib
    load = first("loadavg").split()
    if load:
        try:
            inv.load1 = float(load[0])
        except ValueError:
            pass
    df = first("df").split()
    if len(df) >= 4 and df[1].isdigit() and df[3].isdigit():
        inv.disk_total_mib = int(df[1]) / 1024
        inv.disk_free_mib = int(df[3]) / 1024
    python = first("python")
    inv.python = "" if python.startswith("!missing") or not python[:1].isdigit() else python
    inv.cpu_busy_pct = _cpu_busy(s.get("stat1", []), s.get("stat2", []))
    gpus_rc = first("gpus_rc")
    if gpus_rc == "absent" or not gpus_rc:
        inv.gpu_error = "nvidia-smi not found (no NVIDIA driver)" if gpus_rc == "absent" else ""
        return inv
    gpu_text = "\n".join(s.get("gpus", []))
    if gpus_rc != "0":
        inv.gpu_error = f"nvidia-smi failed (exit {gpus_rc}): {gpu_text.strip()[:300]}"
        return inv
    try:
        inv.gpus = parse_gpus(gpu_text)
        if first("apps_rc") == "0":
            inv.gpu_processes = parse_compute_apps("\n".join(s.get("apps", [])))
    except NvidiaSmiParseError as exc:
        inv.gpu_error = str(exc)
    return inv


def collect_local(host: Host | None = None, disk_path: str = ".") -> Inventory:
    """Probe this machine (same script as for SSH hosts, run by /bin/sh)."""
    python = (host.python if host and host.python else "") or sys.executable
    try:
        proc = subprocess.run(["/bin/sh", "-c", probe_script(python, disk_path)], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        from mlops_desktop.execution.errors import SshError

        raise SshError(f"probing this machine failed: {exc}") from None
    return parse_probe(proc.stdout)


def collect_remote(session: Any, disk_path: str | None = None) -> Inventory:
    """Probe an SSH host through an open SshSession."""
    from mlops_desktop.execution.errors import SshError

    host = session.host
    outcome = session.run(probe_script(host.python or "python3", disk_path or host.work_dir or session.home),
                          timeout=60)
    if "@@end" not in outcome.stdout:
        raise SshError(f"the inventory probe on host {host.name} did not complete (exit {outcome.exit_code}): "
                       f"{outcome.stderr.strip()[:300]}")
    return parse_probe(outcome.stdout)
