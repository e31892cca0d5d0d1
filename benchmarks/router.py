"""What the A/B router adds: latency (p50/p99) and throughput through the router against calling a replica directly,
measured in the same run with Debian's wrk.

Backends:
  model     our model server (`python -m mlops_desktop.serving`) with the scikit-learn pipeline of
            benchmarks/serving.py (20 features, 3 classes, adaptive batching, prediction log off)
  constant  a raw-ASGI app on the same stack answering a constant: the HTTP limit, where the router's own cost
            is the largest share
Router: `python -m mlops_desktop.serving.router` (uvloop), one arm with that backend, health checks on.

Core layout. The machine this runs on has 2 cores shared by the server, the router and wrk, so the router must
share a core with somebody. The backend is pinned to the first core and wrk to the last (as in serving.py); the
router is measured in each placement:
  with_wrk     the router on wrk's core   (the backend keeps its core to itself)
  with_server  the router on the backend's core
  unpinned     the scheduler decides
Each shape is measured in `--rounds` rounds of [direct, router in each placement], interleaved so that a change in
the machine's load hits both sides; every figure is the median over the rounds (the rounds are kept in the JSON).
Goals (issue 10): the router adds <= 1 ms at p50 and keeps >= 0.8 of the direct throughput.
Last line: one JSON object.

    .venv/bin/python benchmarks/router.py [--duration 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import serving as sv  # noqa: E402 - the serving benchmark's model, wrk driver and helpers


def start_backend(kind: str, port: int, env: dict[str, str], core: str) -> subprocess.Popen[bytes]:
    py = sys.executable
    pin = ["taskset", "-c", core]
    if kind == "model":
        cmd = [*pin, py, "-m", "mlops_desktop.serving", "--factory", "serving:bench_predictor", "--name", "bench",
               "--version", "1", "--port", str(port), "--no-log"]
    else:
        cmd = [*pin, py, "-m", "uvicorn", "--factory", "serving:constant_app", "--port", str(port), "--loop",
               "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning", "--backlog", "2048"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def start_router(backend_port: int, port: int, env: dict[str, str], core: str | None, tmp: Path,
                 health: str) -> subprocess.Popen[bytes]:
    cfg = tmp / f"router-{port}.json"
    cfg.write_text(json.dumps({"name": "bench", "arms": [{"name": "v1", "weight": 1,
                                                         "backends": [f"127.0.0.1:{backend_port}"]}],
                               "health": {"path": health, "interval_s": 1.0}}))
    pin = ["taskset", "-c", core] if core is not None else []
    cmd = [*pin, sys.executable, "-m", "mlops_desktop.serving.router", "--config", str(cfg), "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per shape (default 3)")
    ap.add_argument("--quick", action="store_true", help="the model backend at c64 only, router beside wrk")
    args = ap.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("benchmarks/router.py: needs Debian's wrk and taskset (scripts/setup.sh test installs wrk)",
              file=sys.stderr)
        return 2
    cores = sorted(os.sched_getaffinity(0))
    server_core, wrk_core = str(cores[0]), str(cores[-1])
    layouts: dict[str, str | None] = {"with_wrk": wrk_core, "with_server": server_core, "unpinned": None}
    backends = ["model", "constant"]
    conns = [1, 64]
    if args.quick:
        layouts, backends, conns = {"with_wrk": wrk_core}, ["model"], [64]
    tmp = Path(tempfile.mkdtemp(prefix="bench-router-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        model_file = prepare_model(tmp)
        env = dict(os.environ, BENCH_MODEL=str(model_file), PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        (tmp / "body1.json").write_text(sv.body(1))
        lua = tmp / "body1.lua"
        lua.write_text(sv.LUA.replace("{body}", str(tmp / "body1.json")))
        for kind in backends:
            bport = sv.free_port()
            backend = start_backend(kind, bport, env, server_core)
            procs.append(backend)
            if kind == "model":
                sv.wait_ready(f"http://127.0.0.1:{bport}/health", backend)
            else:
                sv.wait_port(bport, backend)
            health = "/v2/health/ready" if kind == "model" else "/"
            routers = {}
            for name, core in layouts.items():
                rport = sv.free_port()
                proc = start_router(bport, rport, env, core, tmp, health)
                procs.append(proc)
                sv.wait_ready(f"http://127.0.0.1:{rport}/v2/health/ready", proc)
                routers[name] = (proc, rport)
            direct = f"http://127.0.0.1:{bport}/invocations"
            sv.run_wrk(direct, lua, 8, 2.0, wrk_core)  # warm-up
            for _, rport in routers.values():
                sv.run_wrk(f"http://127.0.0.1:{rport}/invocations", lua, 8, 1.0, wrk_core)
            for c in conns:
                key = f"{kind}_c{c}"
                rounds: dict[str, list[dict[str, Any]]] = {}
                for _ in range(max(1, args.rounds)):
                    rounds.setdefault("direct", []).append(sv.run_wrk(direct, lua, c, args.duration, wrk_core))
                    for name, (_, rport) in routers.items():
                        rounds.setdefault(f"router_{name}", []).append(
                            sv.run_wrk(f"http://127.0.0.1:{rport}/invocations", lua, c, args.duration, wrk_core))
                res: dict[str, Any] = {label: median(runs) for label, runs in rounds.items()}
                res["rounds"] = rounds
                results[key] = res
                for label, runs in rounds.items():
                    print(f"{key:14s} {label:20s} median {res[label]}  runs {[r['rps'] for r in runs]}",
                          file=sys.stderr, flush=True)
            for proc, _ in routers.values():
                sv.stop(proc)
            sv.stop(backend)
        out = {"benchmark": "router", "duration_s": args.duration, "rounds": args.rounds, "backend_core": server_core,
               "wrk_core": wrk_core, "router_layouts": {k: v or "any" for k, v in layouts.items()},
               "shared_machine": True, "load_at_end": round(os.getloadavg()[0], 2), "results": results,
               "ratios": ratios(results)}
        print(json.dumps(out))
    finally:
        for p in procs:
            sv.stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    import statistics

    return {k: round(statistics.median(r[k] for r in runs), 3) for k in ("rps", "p50_ms", "p99_ms")} | \
        {"errors": sum(r["errors"] for r in runs)}


def prepare_model(tmp: Path) -> Path:
    """The serving benchmark's pipeline, fitted and saved with joblib (no MLflow copy: only our server runs)."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(5000, sv.N_FEATURES)), columns=[f"x{i}" for i in range(sv.N_FEATURES)])
    y = (x["x0"] > 0.5).astype(int) + (x["x1"] > 0).astype(int)
    path = tmp / "model.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y), path)
    return path


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    goals: dict[str, bool] = {}
    for key, res in results.items():
        base = res["direct"]
        for label, fig in res.items():
            if not label.startswith("router_"):
                continue
            layout = label.removeprefix("router_")
            out[f"{key}_{layout}_throughput_ratio"] = round(fig["rps"] / base["rps"], 3) if base["rps"] else None
            out[f"{key}_{layout}_added_p50_ms"] = round(fig["p50_ms"] - base["p50_ms"], 3)
            out[f"{key}_{layout}_added_p99_ms"] = round(fig["p99_ms"] - base["p99_ms"], 3)
            if key.startswith("model_"):
                if key.endswith("_c1"):
                    goals[f"{key}_{layout}_adds_le_1ms_p50"] = fig["p50_ms"] - base["p50_ms"] <= 1.0
                else:
                    goals[f"{key}_{layout}_keeps_ge_0.8_throughput"] = bool(base["rps"]) and \
                        fig["rps"] / base["rps"] >= 0.8
    out["goals"] = goals
    return out


if __name__ == "__main__":
    raise SystemExit(main())
