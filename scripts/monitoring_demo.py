"""Fill a workspace with a monitored A/B deployment for the Monitoring area's screenshots (real processes throughout).

    python scripts/monitoring_demo.py /tmp/mon-ws [--seconds 80]
    python -m mlops_desktop --home /tmp/mon-ws --screenshot /tmp/mon.png --view monitoring --size 1600x1000

A churn dataset is ingested into the lake; two versions are trained from it by the scikit-learn recipe and
registered; each is served by a managed server (prediction log committed to the lake); a managed router splits
70/30 between them; a Monitor scrapes every second and evaluates rules while a load thread sends requests. Halfway
the traffic drifts (planted: tenure + 15 months, every plan "pro"). At the end the servers stop (their logs are
committed to the lake) and the drift is computed once, so every tab has something real to show.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def churn_frame(n: int, seed: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure": rng.normal(20, 8, n), "spend": rng.normal(50, 15, n),
                          "plan": rng.choice(["basic", "plus", "pro"], n), "calls": rng.integers(0, 6, n)})
    score = (frame.tenure < 15).astype(int) + (frame.plan == "basic") + 0.3 * frame.calls
    frame["churned"] = np.where(score + rng.normal(0, 0.3, n) > 1.2, "yes", "no")
    return frame


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("home")
    ap.add_argument("--seconds", type=float, default=80.0)
    args = ap.parse_args()
    import requests

    from mlops_desktop.data.ingest import ingest
    from mlops_desktop.monitoring import live_drift
    from mlops_desktop.monitoring.alerts import AlertStore
    from mlops_desktop.monitoring.monitor import Monitor
    from mlops_desktop.monitoring.rules import Rule
    from mlops_desktop.serving import manager, router_manager
    from mlops_desktop.workspace import Workspace

    home = Path(args.home)
    ws = Workspace.open(home)
    env = dict(os.environ, MLOPS_DESKTOP_HOME=str(home), PYTHONPATH=str(ROOT))
    os.environ["PYTHONPATH"] = str(ROOT)
    csv = home / "churn.csv"
    churn_frame(4000, 1).to_csv(csv, index=False)
    ingest(ws, [str(csv)], "churn_data")
    for estimator in ("sklearn.linear_model.LogisticRegression", "sklearn.ensemble.RandomForestClassifier"):
        proc = subprocess.run([sys.executable, "-m", "mlops_desktop.recipes", "sklearn", "--param",
                               f"estimator={estimator}", "--param", "data=lake:churn_data", "--param",
                               "target=churned", "--param", "register=churn"], env=env, capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return 1
    servers = [manager.start(ws, f"churn/{v}", name=f"churn-v{v}", port=0, extra=["--commit-interval", "5"])
               for v in (1, 2)]
    cfg = home / "churn-router.toml"
    cfg.write_text('name = "churn"\nport = 0\nstable = "v1"\n[health]\ninterval_s = 0.5\n'
                   f'[[arms]]\nname = "v1"\nweight = 70\nversion = "1"\nbackends = ["{servers[0].url}"]\n'
                   f'[[arms]]\nname = "v2"\nweight = 30\nversion = "2"\nbackends = ["{servers[1].url}"]\n')
    router = router_manager.start(ws, "churn", cfg)
    store = AlertStore(ws)
    store.add_rule(Rule("p99-slow", "p99_latency > 0.25 for 5s", severity="warning",
                        summary="p99 above 250 ms"))
    store.add_rule(Rule("v2-errors", 'error_rate{arm="v2"} > 0.05', action="revert", severity="critical"))
    store.add_rule(Rule("silent", "no_data for 10s", severity="critical"))
    store.add_rule(Rule("drifting", "drift.any > 0.2", severity="warning", summary="served traffic drifted"))
    stop = threading.Event()
    half = time.monotonic() + args.seconds / 2

    def load() -> None:
        i = 0
        with requests.Session() as s:
            while not stop.is_set():
                frame = churn_frame(20, 100 + i).drop(columns=["churned"])
                if time.monotonic() > half:
                    frame["tenure"] += 15
                    frame["plan"] = "pro"
                doc = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
                s.post(router.url + "/invocations", json=doc, timeout=10)
                i += 1

    with Monitor(ws, "churn", interval_s=1.0, host_interval_s=5.0) as mon:
        threads = [threading.Thread(target=load, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join(30)
        print(f"{len(mon.transitions)} alert transitions", flush=True)
    for s in servers:
        manager.stop(ws, s.name, timeout=60)
    report = live_drift.deployment_drift(ws, "churn", window_s=3600)
    for v in report.versions:
        print(f"version {v.version}: {v.rows} rows, drifted {v.report.drifted_features}")
    from mlops_desktop.monitoring.engine import Evaluator

    ev = Evaluator(ws, "churn")  # the rules once more, now that drift.* series exist
    for tr in ev.evaluate(ev.latest_values()):
        print(f"alert {tr.alert_id} {tr.rule}: {tr.event} (value {tr.value})")
    for s in servers:  # serve again, so the screenshots show live targets
        manager.start(ws, f"churn/{s.version}", name=s.name, port=s.port)
    print(f"workspace ready: {home} (router {router.url}; stop with `router stop churn`, `serve stop churn-v1`...)")
    ws.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
