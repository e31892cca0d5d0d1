"""Parse nvidia-smi CSV output (GPU list and compute processes), with or without header and units."""

from __future__ import annotations

import csv
import io
import re

from mlops_desktop.execution.models import Gpu, GpuProcess

# The exact fields we ask for; the parser maps columns by this order when there is no header.
GPU_FIELDS = ("index", "uuid", "name", "memory.total", "memory.used", "utilization.gpu", "temperature.gpu",
              "power.draw")
APP_FIELDS = ("gpu_uuid", "pid", "process_name", "used_memory")
GPU_QUERY = f"nvidia-smi --query-gpu={','.join(GPU_FIELDS)} --format=csv,noheader,nounits"
APP_QUERY = f"nvidia-smi --query-compute-apps={','.join(APP_FIELDS)} --format=csv,noheader,nounits"

# Header names (as nvidia-smi prints them, units stripped) that mean the same field.
_ALIASES = {"used_gpu_memory": "used_memory", "utilization.gpu": "utilization.gpu"}
_UNIT = re.compile(r"\s*\[[^\]]*\]\s*$")
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:[A-Za-z%]+)?\s*$")


class NvidiaSmiParseError(ValueError):
    """nvidia-smi printed something we do not understand (the message names the line)."""


def _number(value: str) -> float | None:
    """'143771', '143771 MiB', '0 %', '127.93 W' -> float; '[N/A]', 'N/A', '[Not Supported]' -> None."""
    value = value.strip()
    if not value or "N/A" in value or "Not Supported" in value or "Unknown" in value:
        return None
    match = _NUMBER.match(value)
    if not match:
        raise ValueError(f"not a number: {value!r}")
    return float(match.group(1))


def _rows(text: str, fields: tuple[str, ...], what: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    first = [c.strip() for c in next(csv.reader([lines[0]], skipinitialspace=True))]
    header_names = [_ALIASES.get(_UNIT.sub("", c), _UNIT.sub("", c)) for c in first]
    if set(header_names) & set(fields) and not any(c and c[0].isdigit() for c in first[:1]):
        names, body = header_names, lines[1:]
    else:
        names, body = list(fields), lines
    out = []
    for lineno, row in enumerate(csv.reader(io.StringIO("\n".join(body)), skipinitialspace=True), start=1):
        if len(row) == 1 and row[0].lower().startswith(("no devices", "no running")):
            continue
        if len(row) != len(names):
            raise NvidiaSmiParseError(f"nvidia-smi {what} line {lineno}: expected {len(names)} comma-separated "
                                      f"fields ({', '.join(names)}), got {len(row)}: {','.join(row)!r}")
        out.append({n: v.strip() for n, v in zip(names, row, strict=True)})
    return out


def parse_gpus(text: str) -> list[Gpu]:
    """Parse `nvidia-smi --query-gpu=<GPU_FIELDS> --format=csv[,noheader][,nounits]`."""
    gpus = []
    for lineno, row in enumerate(_rows(text, GPU_FIELDS, "--query-gpu"), start=1):
        try:
            gpus.append(Gpu(
                index=int(row["index"]), uuid=row.get("uuid", ""), name=row.get("name", ""),
                memory_total_mib=_number(row.get("memory.total", "")),
                memory_used_mib=_number(row.get("memory.used", "")),
                utilization_pct=_number(row.get("utilization.gpu", "")),
                temperature_c=_number(row.get("temperature.gpu", "")),
                power_w=_number(row.get("power.draw", ""))))
        except (KeyError, ValueError) as exc:
            raise NvidiaSmiParseError(f"nvidia-smi --query-gpu line {lineno}: {exc}") from None
    return gpus


def parse_compute_apps(text: str) -> list[GpuProcess]:
    """Parse `nvidia-smi --query-compute-apps=<APP_FIELDS> --format=csv[,noheader][,nounits]`."""
    procs = []
    for lineno, row in enumerate(_rows(text, APP_FIELDS, "--query-compute-apps"), start=1):
        try:
            procs.append(GpuProcess(gpu_uuid=row.get("gpu_uuid", ""), pid=int(row["pid"]),
                                    process_name=row.get("process_name", ""),
                                    used_memory_mib=_number(row.get("used_memory", ""))))
        except (KeyError, ValueError) as exc:
            raise NvidiaSmiParseError(f"nvidia-smi --query-compute-apps line {lineno}: {exc}") from None
    return procs
