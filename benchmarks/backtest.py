"""Back-test benchmark: 3 registered versions replayed over a 10M-row lake dataset in 52 weekly windows, against
the limit (one `model.predict` over all rows in memory, per version) and a hand-written pandas loop of the same
windows (read the file, mask each week, predict + predict_proba, sklearn's metrics), in one run. Each phase runs in
its own process so that its peak memory (ru_maxrss) is its own. Last line: one JSON object.

    python benchmarks/backtest.py [--rows 10000000] [--root /var/tmp/bench-backtest] [--phase ours|limit|pandas]

The dataset and the three versions are generated once under --root (not in git) and reused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

START = dt.datetime(2025, 1, 6)
FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5", "plan"]
WEEKS = 52


def _chunk(n: int, offset: int, total: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    span = WEEKS * 7 * 86400 * 1_000_000
    ts = (np.arange(offset, offset + n, dtype=np.int64) * (span // total))
    frame = pd.DataFrame({"ts": pd.to_datetime(ts, unit="us") + pd.Timedelta(START - dt.datetime(1970, 1, 1))})
    for i in range(6):
        frame[f"f{i}"] = rng.normal(size=n)
    frame["plan"] = rng.choice(["basic", "plus", "pro"], n)
    drift = (offset + np.arange(n)) / total
    score = frame.f0 + 0.5 * frame.f1 - 0.3 * frame.f2 + (frame.plan == "basic") * (0.5 + drift)
    frame["churned"] = np.where(score + rng.normal(0, 0.7, n) > 0.6, "yes", "no")
    frame["ts"] = frame["ts"].astype("datetime64[us]")
    return frame


def prepare(root: Path, rows: int) -> Path:
    """The workspace with `events` (rows over 52 weeks) and bench/1..3; built once."""
    home = root / f"ws-{rows}"
    if (home / "ready").exists():
        return home
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from mlops_desktop import registry
    from mlops_desktop.data.ingest import ingest
    from mlops_desktop.workspace import Workspace

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mlops_desktop.recipes.sklearn_recipe import build_pipeline
    from tests.registry.conftest import log_sklearn_run

    root.mkdir(parents=True, exist_ok=True)
    src = root / f"events-{rows}.parquet"
    if not src.exists():
        writer = None
        step = 1_000_000
        for k, offset in enumerate(range(0, rows, step)):
            table = pa.Table.from_pandas(_chunk(min(step, rows - offset), offset, rows, k), preserve_index=False)
            writer = writer or pq.ParquetWriter(src.with_suffix(".partial"), table.schema)
            writer.write_table(table, row_group_size=131_072)
        assert writer is not None
        writer.close()
        src.with_suffix(".partial").rename(src)
    ws = Workspace.open(home)
    try:
        ingest(ws, [str(src)], "events")
        train = _chunk(200_000, 0, rows, 999)
        x = train[FEATURES]
        estimators = [LogisticRegression(max_iter=300), LogisticRegression(C=0.01, max_iter=300),
                      DecisionTreeClassifier(max_depth=8, random_state=0)]
        for i, est in enumerate(estimators):
            model = build_pipeline(est, x).fit(x, train.churned)
            run = log_sklearn_run(ws, root, model, train.drop(columns=["ts"]), name=f"bench{i}")
            registry.register(ws, run, "bench")
    finally:
        ws.close()
    (home / "ready").write_text("ok")
    return home


def _windows(frame_min: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(frame_min + dt.timedelta(days=7 * k), frame_min + dt.timedelta(days=7 * (k + 1))) for k in range(WEEKS)]


def phase_limit(home: Path) -> dict:
    """One model.predict over all rows, in memory, per version (the data read is not timed)."""
    import pandas as pd

    from mlops_desktop import registry
    from mlops_desktop.data import catalog, lake
    from mlops_desktop.workspace import Workspace

    with Workspace.open(home) as ws:
        version = catalog.resolve(ws.db, "events")
        frame = pd.concat([pd.read_parquet(f, columns=FEATURES) for f in lake.data_files(ws, version)],
                          ignore_index=True)
        models = [registry.load_predictor(ws, f"bench/{i}", prefer_onnx=False).model for i in (1, 2, 3)]
    seconds = []
    for model in models:
        started = time.perf_counter()
        model.predict(frame)
        seconds.append(time.perf_counter() - started)
    proba_s = []
    for model in models:
        started = time.perf_counter()
        model.predict_proba(frame)
        proba_s.append(time.perf_counter() - started)
    n = len(frame)
    return {"rows": n, "seconds": sum(seconds), "per_version_s": seconds, "rows_per_s": 3 * n / sum(seconds),
            "predict_proba_s": sum(proba_s)}


def phase_pandas(home: Path) -> dict:
    """What users write today: read the file with pandas, mask each week, predict and score with sklearn."""
    import pandas as pd
    from sklearn import metrics

    from mlops_desktop import registry
    from mlops_desktop.data import catalog, lake
    from mlops_desktop.workspace import Workspace

    with Workspace.open(home) as ws:
        version = catalog.resolve(ws.db, "events")
        files = lake.data_files(ws, version)
        models = [registry.load_predictor(ws, f"bench/{i}", prefer_onnx=False).model for i in (1, 2, 3)]
    started = time.perf_counter()
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    results = []
    rows = 0
    for lo, hi in _windows(frame.ts.min().to_pydatetime()):
        part = frame[(frame.ts >= lo) & (frame.ts < hi)]
        if part.empty:
            continue
        x, y = part[FEATURES], part.churned
        rows += len(part)
        for model in models:
            pred = model.predict(x)
            proba = model.predict_proba(x)[:, 1]
            results.append((metrics.accuracy_score(y, pred), metrics.f1_score(y, pred, pos_label="yes"),
                            metrics.roc_auc_score(y, proba)))
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "rows_per_s": 3 * rows / seconds, "windows": len(results) // 3,
            "accuracy_w0": [r[0] for r in results[:3]]}


def phase_ours(home: Path, prefer_onnx: bool) -> dict:
    from mlops_desktop.backtest.api import BacktestSpec, run_backtest
    from mlops_desktop.workspace import Workspace

    with Workspace.open(home) as ws:
        spec = BacktestSpec("events", "ts", ["bench/1", "bench/2", "bench/3"], test_window="7d", stride="7d",
                            prefer_onnx=prefer_onnx)
        started = time.perf_counter()
        result = run_backtest(ws, spec)
        seconds = time.perf_counter() - started
    rows = sum(w.rows for w in result.windows)
    return {"rows": rows, "seconds": seconds, "rows_per_s": 3 * rows / seconds, "windows": len(result.windows),
            "accuracy_w0": [result.windows[0].metrics[f"bench/{i}"]["accuracy"] for i in (1, 2, 3)]}


def _peak_rss_mib() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the parent's before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(phase: str, home: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--home", str(home)], capture_output=True,
                         text=True, check=False, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    if out.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--root", default="/var/tmp/bench-backtest")
    parser.add_argument("--phase", choices=["ours", "ours-sklearn", "limit", "pandas"])
    parser.add_argument("--home")
    parser.add_argument("--phases", default="ours,limit,pandas,ours-sklearn",
                        help="which phases to run (ours and limit are needed for the summary)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the phases this many times, interleaved (ours, limit, ..., ours, limit, ...); "
                             "each phase's median counts")
    args = parser.parse_args()
    if args.phase:
        home = Path(args.home)
        result = {"limit": lambda: phase_limit(home), "pandas": lambda: phase_pandas(home),
                  "ours": lambda: phase_ours(home, True), "ours-sklearn": lambda: phase_ours(home, False)}[args.phase]()
        result["peak_rss_mib"] = _peak_rss_mib()
        print(json.dumps(result))
        return
    started = time.perf_counter()
    home = prepare(Path(args.root), args.rows)
    print(f"data ready in {time.perf_counter() - started:.0f} s: {home}", file=sys.stderr)
    load = os.getloadavg()
    runs: dict[str, list[dict]] = {}
    for round_ in range(max(1, args.repeat)):
        for phase in args.phases.split(","):
            runs.setdefault(phase, []).append(_child(phase, home))
            print(f"round {round_ + 1} {phase}: {json.dumps(runs[phase][-1])}", file=sys.stderr)
    # each phase's median run (of an even count, the lower middle one: no flattering pick)
    phases = {name: sorted(rs, key=lambda r: r["rows_per_s"])[(len(rs) - 1) // 2] for name, rs in runs.items()}
    ours, limit = phases["ours"], phases["limit"]
    summary = {
        "benchmark": "backtest", "rows": args.rows, "versions": 3, "windows": ours["windows"],
        "ours_rows_per_s": round(ours["rows_per_s"]), "limit_rows_per_s": round(limit["rows_per_s"]),
        "ratio_vs_limit": round(ours["rows_per_s"] / limit["rows_per_s"], 3),
        "ours_peak_rss_mib": round(ours["peak_rss_mib"]), "limit_peak_rss_mib": round(limit["peak_rss_mib"]),
        "load_before": [round(v, 1) for v in load], "load_after": [round(v, 1) for v in os.getloadavg()],
        "repeat": max(1, args.repeat),
        "rows_per_s_each_round": {name: [round(r["rows_per_s"]) for r in rs] for name, rs in runs.items()},
    }
    if "ours-sklearn" in phases:
        summary["ours_sklearn_path_ratio_vs_limit"] = round(phases["ours-sklearn"]["rows_per_s"] / limit["rows_per_s"],
                                                            3)
    if "pandas" in phases:
        summary |= {"pandas_rows_per_s": round(phases["pandas"]["rows_per_s"]),
                    "speedup_vs_pandas": round(ours["rows_per_s"] / phases["pandas"]["rows_per_s"], 2),
                    "pandas_peak_rss_mib": round(phases["pandas"]["peak_rss_mib"])}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
