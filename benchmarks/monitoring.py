"""Monitoring benchmark (issue 11), three parts, each against its baseline in the same run:

    python benchmarks/monitoring.py --evidently-python /work/bench-venvs/evidently/bin/python
    python benchmarks/monitoring.py --parts overhead,revert          # without the drift part

- drift: ours (a scipy check against the stored sketch) vs Evidently's data-drift preset on the same data, whole
  processes, at 1M and 10M reference rows x 22 columns (benchmarks/drift.py's data and workers; Evidently capped at
  --evidently-max-rows, default 1M, and said so). Goals: >= 30x at 1M, the same features flagged, < 1 GiB at 10M.
- overhead: our model server (the serving benchmark's pipeline) with the prediction log on and the collector
  scraping /metrics every 2 s, against the same server with --no-log and nobody scraping; wrk c64. Goal: <= 5 %
  lost. Two designs (--design):
  - slices (default): both servers start once, pinned to the same core, and wrk drives them in turn, --slice
    seconds each (default 2), --rounds pairs (default 30) in the order off on, on off, ... The machine's speed
    swings (here +-25 % within a minute) then fall on both alike. Reported: the paired throughput loss (median
    and a 95 % bootstrap interval) and the CPU per request of each server over the whole run, its log thread's
    late writes and the scrapes included (the capacity lost: 1 - CPU off / CPU on, with its interval from the
    pairs).
  - restarts: a fresh server per run, --duration seconds (default 5), rounds interleaved, medians (the design
    before; the swings between runs are larger than the effect).
- revert: a local A/B router (a managed router process) over two managed model server processes; under load, v2
  starts failing (planted: a flag file makes its predictor raise); the monitor (2 s scrapes, rule
  `error_rate > 0.05`, action revert) turns the kill switch on. Measured: errors start -> alert firing -> kill
  switch on -> first clean second. Goal: back on the stable version <= 15 s. (A Swarm deployment once the deploy
  service can make one here; the local router is what exists on every machine.)
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import drift as dr  # noqa: E402 - the drift benchmark's data and workers
import serving as sv  # noqa: E402 - the serving benchmark's model, wrk driver and helpers


class Breakable:
    """The serving benchmark's predictor, failing while the file $BENCH_BREAK_FILE exists (the planted failure)."""

    def __init__(self) -> None:
        self.inner = sv.bench_predictor()
        self.signature = self.inner.signature
        self.flavor = self.inner.flavor
        self.serving_path = self.inner.serving_path
        self.flag = os.environ.get("BENCH_BREAK_FILE", "")

    def predict(self, columns: Any) -> Any:
        if self.flag and os.path.exists(self.flag):
            raise RuntimeError("planted failure")
        return self.inner.predict(columns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def breakable(name: str | None = None, version: str | None = None) -> Any:
    """--factory entry point."""
    return Breakable()


def prepare_model(tmp: Path) -> Path:
    """The serving benchmark's pipeline, fitted and saved with joblib (only our server runs here: no MLflow copy)."""
    path = tmp / "model.joblib"
    if path.exists():
        return path
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(5000, sv.N_FEATURES)), columns=[f"x{i}" for i in range(sv.N_FEATURES)])
    y = (x["x0"] > 0.5).astype(int) + (x["x1"] > 0).astype(int)
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y), path)
    return path


# ---------------------------------------------------------------------------------------------------------- drift
def part_drift(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    me = str(HERE / "drift.py")
    rows_out = []
    for ref_rows in [int(x) for x in args.ref_rows.split(",")]:
        ref, cur = dr.make_data(tmp, ref_rows, args.cur_rows)
        sketch = tmp / f"sketch-{ref_rows}.json"
        row: dict[str, Any] = {"reference_rows": ref_rows, "current_rows": args.cur_rows,
                               "columns": dr.NUMERIC + len(dr.CATEGORIES), "planted": sorted(dr.DRIFTED)}
        row["ours_sketch"] = dr.run_measured([sys.executable, me, "--worker", "ours-sketch", str(ref), str(sketch)])
        row["ours_drift"] = dr.run_measured([sys.executable, me, "--worker", "ours-drift", str(sketch), str(cur)])
        row["ours_drift"].pop("scores", None)
        row["ours_peak_under_1gib"] = max(row["ours_sketch"]["peak_rss_mb"], row["ours_drift"]["peak_rss_mb"]) < 1024
        print(f"drift {ref_rows:>11,} ref rows: sketch {row['ours_sketch']['wall_s']} s "
              f"{row['ours_sketch']['peak_rss_mb']} MB; check {row['ours_drift']['wall_s']} s "
              f"{row['ours_drift']['peak_rss_mb']} MB -> {row['ours_drift']['drifted']}", flush=True)
        if args.evidently_python and ref_rows <= args.evidently_max_rows:
            ev = dr.run_measured([args.evidently_python, me, "--worker", "evidently", str(ref), str(cur)],
                                 env={**os.environ, "PYTHONPATH": ""})
            ev.pop("scores", None)
            row["evidently"] = ev
            row["speedup_vs_evidently"] = round(ev["wall_s"] / row["ours_drift"]["wall_s"], 1)
            row["cpu_speedup_vs_evidently"] = round(ev["cpu_s"] / row["ours_drift"]["cpu_s"], 1)
            row["memory_ratio_vs_evidently"] = round(ev["peak_rss_mb"] / row["ours_drift"]["peak_rss_mb"], 2)
            row["same_features_flagged"] = ev["drifted"] == row["ours_drift"]["drifted"]
            print(f"      evidently: {ev['wall_s']} s {ev['peak_rss_mb']} MB -> {ev['drifted']}; ours "
                  f"{row['speedup_vs_evidently']}x (cpu {row['cpu_speedup_vs_evidently']}x), same verdicts "
                  f"{row['same_features_flagged']}", flush=True)
        else:
            row["evidently"] = (f"not run above {args.evidently_max_rows:,} reference rows (minutes and GBs there)"
                                if args.evidently_python else "not run: no --evidently-python")
        rows_out.append(row)
    return rows_out


# ------------------------------------------------------------------------------------------------------- overhead
def _overhead_setup(tmp: Path) -> tuple[str, str, dict[str, str], Path]:
    """Both overhead designs' inputs: the server's and wrk's cores, the servers' environment, wrk's 1-row script."""
    cores = sorted(os.sched_getaffinity(0))
    server_core, wrk_core = (str(cores[0]), str(cores[-1])) if len(cores) > 1 else ("0", "0")
    model = prepare_model(tmp)
    env = dict(os.environ, BENCH_MODEL=str(model), PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    (tmp / "body1.json").write_text(sv.body(1))
    lua = tmp / "body1.lua"
    lua.write_text(sv.LUA.replace("{body}", str(tmp / "body1.json")))
    return server_core, wrk_core, env, lua


def part_overhead_slices(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Both servers up at once on one core; wrk drives them in turn in short slices (see the module's doc)."""
    from mlops_desktop.monitoring.collector import Collector
    from mlops_desktop.monitoring.targets import ScrapeTarget

    server_core, wrk_core, env, lua = _overhead_setup(tmp)
    ports = {"off": sv.free_port(), "on": sv.free_port()}
    procs = {mode: sv.start("ours" if mode == "on" else "ours_nolog", ports[mode], env, tmp, server_core)
             for mode in ("off", "on")}
    urls = {mode: f"http://127.0.0.1:{port}" for mode, port in ports.items()}
    col = None
    slices: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    cpu_at: list[dict[str, float]] = []  # both servers' CPU seconds at each pair's start (and the end)
    try:
        for mode in ("off", "on"):
            sv.wait_ready(urls[mode] + "/health", procs[mode])
            sv.run_wrk(urls[mode] + "/invocations", lua, 64, 2.0, wrk_core)  # warm-up at full load
        col = Collector(None, "bench", lambda: [ScrapeTarget(urls["on"], "server", "1", "1")],
                        interval_s=2.0, host_interval_s=0).start()
        for pair in range(args.rounds):
            cpu_at.append({m: _cpu_seconds(p.pid) for m, p in procs.items()})
            for mode in ("off", "on") if pair % 2 == 0 else ("on", "off"):
                slices[mode].append(sv.run_wrk(urls[mode] + "/invocations", lua, 64, args.slice, wrk_core))
            print(f"overhead pair {pair + 1}: off {slices['off'][-1]['rps']:,.0f} req/s, "
                  f"on {slices['on'][-1]['rps']:,.0f} req/s", flush=True)
        time.sleep(2.5)  # the log thread's last writes and one more scrape belong to the run
        cpu_at.append({m: _cpu_seconds(p.pid) for m, p in procs.items()})
    finally:
        if col is not None:
            col.stop()
        for p in procs.values():
            sv.stop(p)
    paired = [1 - on["rps"] / off["rps"] for off, on in zip(slices["off"], slices["on"], strict=True)]
    # CPU per request of each server within each pair (a pair's late writes land in the next pair: the whole-run
    # figure below has them all).
    cpu_pairs = []
    for k in range(args.rounds):
        per = {m: (cpu_at[k + 1][m] - cpu_at[k][m]) / max(slices[m][k]["requests"], 1) for m in ("off", "on")}
        cpu_pairs.append(1 - per["off"] / per["on"])
    served = {m: sum(r["requests"] for r in rs) for m, rs in slices.items()}
    cpu_us = {m: 1e6 * (cpu_at[-1][m] - cpu_at[0][m]) / max(served[m], 1) for m in ("off", "on")}
    cpu_lost = 1 - cpu_us["off"] / cpu_us["on"]
    med = {m: statistics.median(r["rps"] for r in rs) for m, rs in slices.items()}
    return {"design": "slices", "slice_s": args.slice, "pairs": args.rounds,
            "off_rps": med["off"], "on_rps": med["on"],
            "paired_lost_median": round(statistics.median(paired), 4),
            "paired_lost_ci95": _median_ci(paired),
            "off_cpu_us_per_request": round(cpu_us["off"], 2), "on_cpu_us_per_request": round(cpu_us["on"], 2),
            "capacity_lost_by_cpu": round(cpu_lost, 4), "capacity_lost_by_cpu_ci95": _median_ci(cpu_pairs),
            "goal_lost_at_most_5pct": cpu_lost <= 0.05 and statistics.median(paired) <= 0.05,
            "paired_lost": [round(x, 4) for x in paired], "slices": slices}


def _median_ci(values: list[float]) -> list[float]:
    """A 95 % bootstrap interval (scipy.stats.bootstrap, percentile) of the median of `values`."""
    import numpy as np
    from scipy import stats

    res = stats.bootstrap((np.asarray(values),), np.median, confidence_level=0.95, method="percentile",
                          n_resamples=5000, random_state=np.random.default_rng(0))
    return [round(float(res.confidence_interval.low), 4), round(float(res.confidence_interval.high), 4)]


def part_overhead(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from mlops_desktop.monitoring.collector import Collector
    from mlops_desktop.monitoring.targets import ScrapeTarget

    server_core, wrk_core, env, lua = _overhead_setup(tmp)
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for round_ in range(args.rounds):
        for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
            port = sv.free_port()
            proc = sv.start("ours" if mode == "on" else "ours_nolog", port, env, tmp, server_core)
            col = None
            try:
                url = f"http://127.0.0.1:{port}"
                sv.wait_ready(url + "/health", proc)
                sv.run_wrk(url + "/invocations", lua, 8, 1.0, wrk_core)  # warm-up
                if mode == "on":
                    col = Collector(None, "bench", lambda u=url: [ScrapeTarget(u, "server", "1", "1")],
                                    interval_s=2.0, host_interval_s=0).start()
                cpu0 = _cpu_seconds(proc.pid)
                runs[mode].append(sv.run_wrk(url + "/invocations", lua, 64, args.duration, wrk_core))
                served = runs[mode][-1]["rps"] * max(1, round(args.duration))
                runs[mode][-1]["cpu_us_per_request"] = round(1e6 * (_cpu_seconds(proc.pid) - cpu0) / max(served, 1), 2)
            finally:
                if col is not None:
                    col.stop()
                sv.stop(proc)
            print(f"overhead round {round_ + 1} {mode:>3}: {runs[mode][-1]}", flush=True)
    med = {m: statistics.median(r["rps"] for r in rs) for m, rs in runs.items()}
    lost = 1 - med["on"] / med["off"]
    # Each round's two runs are back to back (in alternating order): the loss within a round is free of the
    # machine's slow swings, which move req/s between rounds by more than the log costs.
    paired = [1 - on["rps"] / off["rps"] for off, on in zip(runs["off"], runs["on"], strict=True)]
    # The server saturates its one core, so its capacity is 1 / (CPU per request): the CPU the log and the scrapes
    # add per request is the capacity they take, and CPU time (unlike req/s) does not move with what the rest of
    # a shared machine does meanwhile.
    cpu = {m: statistics.median(r["cpu_us_per_request"] for r in rs) for m, rs in runs.items()}
    cpu_lost = 1 - cpu["off"] / cpu["on"]
    return {"off_rps": med["off"], "on_rps": med["on"], "throughput_lost": round(lost, 4),
            "goal_lost_at_most_5pct": lost <= 0.05,
            "paired_lost_median": round(statistics.median(paired), 4),
            "paired_lost": [round(x, 4) for x in paired],
            "off_cpu_us_per_request": cpu["off"], "on_cpu_us_per_request": cpu["on"],
            "capacity_lost_by_cpu": round(cpu_lost, 4), "rounds": runs, "duration_s": args.duration}


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its threads so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------------------- revert
def part_revert(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import requests

    from mlops_desktop.monitoring.alerts import AlertStore
    from mlops_desktop.monitoring.monitor import Monitor
    from mlops_desktop.monitoring.rules import Rule
    from mlops_desktop.serving import router_manager
    from mlops_desktop.workspace import Workspace

    model = prepare_model(tmp)
    flag = tmp / "break-v2"
    env = dict(os.environ, BENCH_MODEL=str(model), BENCH_BREAK_FILE=str(flag),
               PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    ports = [sv.free_port(), sv.free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "mlops_desktop.serving", "--factory", "monitoring:breakable",
                               "--name", "bench", "--version", version, "--port", str(port), "--no-log"],
                              env=dict(env, BENCH_BREAK_FILE=str(flag) if version == "2" else ""),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for version, port in (("1", ports[0]), ("2", ports[1]))]
    ws = Workspace.open(tmp / "ws")
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]
    result: dict[str, Any] = {}
    try:
        for port, proc in zip(ports, procs, strict=True):
            sv.wait_ready(f"http://127.0.0.1:{port}/health", proc)
        cfg = tmp / "ab.toml"
        cfg.write_text(f'name = "bench-ab"\nport = 0\nstable = "v1"\n[health]\ninterval_s = 0.5\n'
                       f'[[arms]]\nname = "v1"\nweight = 50\nversion = "1"\nbackends = ["127.0.0.1:{ports[0]}"]\n'
                       f'[[arms]]\nname = "v2"\nweight = 50\nversion = "2"\nbackends = ["127.0.0.1:{ports[1]}"]\n')
        router = router_manager.start(ws, "bench-ab", cfg)
        AlertStore(ws).add_rule(Rule("v2-errors", "error_rate > 0.05", action="revert", severity="critical"))
        answers: list[tuple[float, int, str]] = []
        stop = threading.Event()
        payload = sv.body(1)

        def load() -> None:
            with requests.Session() as s:
                while not stop.is_set():
                    r = s.post(router.url + "/invocations", data=payload, timeout=10,
                               headers={"content-type": "application/json"})
                    answers.append((time.monotonic(), r.status_code, r.headers.get("x-mlops-arm", "")))
                    time.sleep(0.002)

        mon = Monitor(ws, "bench-ab", interval_s=args.interval).start()
        fired: list[float] = []
        mon.on_transition.append(lambda tr: fired.append(time.monotonic()) if tr.event == "firing" else None)
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        time.sleep(3 * args.interval)
        flag.write_text("v2")  # only v2's server was started with this flag path
        t_break = time.monotonic()
        admin = router_manager.client(ws, "bench-ab")
        t_kill = None
        while time.monotonic() - t_break < 60:
            if admin.state()["settings"]["kill_switch"]:
                t_kill = time.monotonic()
                break
            time.sleep(0.05)
        time.sleep(2.0)
        stop.set()
        loader.join(20)
        mon.stop()
        first_error = next((t for t, code, _ in answers if t >= t_break and code >= 500), None)
        clean_after = None
        if t_kill is not None:
            bad = [t for t, code, arm in answers if t > t_kill and (code != 200 or arm != "v1")]
            clean_after = (max(bad) if bad else t_kill)
        start = first_error or t_break
        result = {"interval_s": args.interval, "requests": len(answers),
                  "errors_start_to_alert_s": round(fired[0] - start, 3) if fired else None,
                  "errors_start_to_kill_switch_s": round(t_kill - start, 3) if t_kill else None,
                  "errors_start_to_all_stable_s": round(clean_after - start, 3) if clean_after else None,
                  "errors_during": sum(1 for t, code, _ in answers if t >= t_break and code >= 500)}
        result["goal_back_on_stable_within_15s"] = bool(result["errors_start_to_all_stable_s"] is not None and
                                                        result["errors_start_to_all_stable_s"] <= 15)
        print(f"revert: {result}", flush=True)
    finally:
        try:
            router_manager.stop(ws, "bench-ab", timeout=10)
        except Exception as exc:  # noqa: BLE001 - cleanup of a benchmark
            print(f"router stop: {exc}", file=sys.stderr)
        for p in procs:
            sv.stop(p)
        ws.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="drift,overhead,revert")
    ap.add_argument("--ref-rows", default="1000000,10000000")
    ap.add_argument("--cur-rows", type=int, default=100_000)
    ap.add_argument("--evidently-python", help="python of a virtualenv with evidently 0.7.23 and pandas<3")
    ap.add_argument("--evidently-max-rows", type=int, default=1_000_000)
    ap.add_argument("--design", choices=("slices", "restarts"), default="slices", help="overhead: see above")
    ap.add_argument("--rounds", type=int, help="overhead: pairs of runs (default 30 slices, 4 restarts)")
    ap.add_argument("--slice", type=float, default=2.0, help="overhead, slices: seconds per wrk slice (default 2)")
    ap.add_argument("--duration", type=float, default=5.0, help="overhead, restarts: seconds per run (default 5)")
    ap.add_argument("--interval", type=float, default=2.0, help="revert: the monitor's scrape interval (default 2)")
    args = ap.parse_args()
    parts = args.parts.split(",")
    load_before = os.getloadavg()
    out: dict[str, Any] = {"benchmark": "monitoring", "load_before": [round(x, 2) for x in load_before]}
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as d:
        tmp = Path(d)
        if "drift" in parts:
            out["drift"] = part_drift(args, tmp)
        if "overhead" in parts:
            if args.rounds is None:
                args.rounds = 30 if args.design == "slices" else 4
            run = part_overhead_slices if args.design == "slices" else part_overhead
            out["overhead"] = run(args, tmp)
        if "revert" in parts:
            out["revert"] = part_revert(args, tmp)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
