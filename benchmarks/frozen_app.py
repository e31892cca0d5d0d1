"""The frozen app (PyInstaller bundle) against the unfrozen one, same machine, same run: size and start-up.

    bash packaging/build.sh && python benchmarks/frozen_app.py [--repeat 5]

Start-up = process start to a rendered window written as a PNG and exit (`--screenshot`, offscreen Qt), on one
workspace with a few runs; also `--version` (interpreter start). Medians of interleaved runs; ends with ONE JSON line.
The machine may be shared: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FROZEN = ROOT / "dist" / "mlops-desktop" / "mlops-desktop"
UNFROZEN = Path(sys.executable).with_name("mlops-desktop")


def du(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not FROZEN.exists():
        raise SystemExit("no bundle: run bash packaging/build.sh first")
    with tempfile.TemporaryDirectory(prefix="bench-frozen-") as tmp:
        home = Path(tmp) / "ws"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MLOPS_DESKTOP_HOME=str(home))
        seed = ("import mlops_desktop.tracking as mt\n"
                "for i in range(20):\n"
                "    with mt.start_run(experiment='bench', name=f'run {i}', params={'lr': 0.01 * (i + 1)}) as r:\n"
                "        [r.log_metric('loss', 1 / (s + 1 + i), step=s) for s in range(500)]\n")
        subprocess.run([sys.executable, "-c", seed], env=env, check=True, timeout=300)
        apps = (("frozen", FROZEN), ("unfrozen", UNFROZEN))
        for _name, exe in apps:
            timed([str(exe), "--version"], env)  # warm the page cache for both alike
        versions: dict[str, list[float]] = {name: [] for name, _ in apps}
        shots: dict[str, list[float]] = {name: [] for name, _ in apps}
        for _ in range(args.repeat):  # interleaved, so a change of the machine's load hits both alike
            for name, exe in apps:
                versions[name].append(timed([str(exe), "--version"], env))
                shots[name].append(timed([str(exe), "--screenshot", str(Path(tmp) / f"{name}.png"), "--view",
                                          "experiments"], env))
        out = {name: {"version_s": statistics.median(versions[name]), "window_s": statistics.median(shots[name])}
               for name, _ in apps}
        load = os.getloadavg()[0]
    bundle_bytes, bundle_files = du(FROZEN.parent)
    site = Path(sys.executable).parents[1] / "lib"
    venv_bytes, venv_files = du(site)
    result = {"benchmark": "frozen_app", "repeat": args.repeat,
              "frozen_window_s": round(out["frozen"]["window_s"], 3),
              "unfrozen_window_s": round(out["unfrozen"]["window_s"], 3),
              "window_ratio_frozen_over_unfrozen": round(out["frozen"]["window_s"] / out["unfrozen"]["window_s"], 3),
              "frozen_version_s": round(out["frozen"]["version_s"], 3),
              "unfrozen_version_s": round(out["unfrozen"]["version_s"], 3),
              "bundle_mb": round(bundle_bytes / 2**20, 1), "bundle_files": bundle_files,
              "venv_lib_mb": round(venv_bytes / 2**20, 1), "venv_lib_files": venv_files,
              "load_average_1m": round(load, 2), "machine": "shared, 2 cores"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
