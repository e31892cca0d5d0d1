"""Neptune export import vs. the MLflow import of the same points, in the same run (and pyarrow's raw read as a floor).

    python benchmarks/neptune_import.py [--quick] [--runs 4] [--metrics 5] [--points 100000]

Builds a Neptune Exporter export (the exporter's Parquet schema, decimal steps) and an MLflow SQLite database
(made by the real mlflow package, its metrics table then filled with the same points), imports each into a fresh
workspace, and ends with ONE JSON line. The machine may be shared: read ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAKE_MLFLOW = """
import sys, mlflow
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}")
mlflow.set_experiment("bench")
ids = []
for i in range(int(sys.argv[2])):
    with mlflow.start_run(run_name=f"run-{i}") as run:
        mlflow.log_param("lr", 0.001 * (i + 1))
        ids.append(run.info.run_id)
print(" ".join(ids))
"""


def build(root: Path, runs: int, metrics: int, points: int) -> tuple[Path, Path, int]:
    from tests.interop.neptune_data import float_series, sys_rows, table, write_run

    t0 = 1_740_830_400_000
    mlflow_db = root / "mlflow.db"
    proc = subprocess.run([sys.executable, "-c", MAKE_MLFLOW, str(mlflow_db), str(runs)], capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    run_ids = proc.stdout.split()
    conn = sqlite3.connect(mlflow_db)
    for r in range(runs):
        parts = [table(sys_rows("bench/neptune", f"RUN-{r}"))]
        for k in range(metrics):
            steps = np.arange(points, dtype=np.int64)
            values = np.cos(steps / 500.0 + k) + r
            ts = t0 + steps * 10
            parts.append(float_series("bench/neptune", f"RUN-{r}", f"metric_{k}", steps * 1_000_000, values, ts))
            conn.executemany("INSERT INTO metrics(key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,0)",
                             zip([f"metric_{k}"] * points, values.tolist(), ts.tolist(), [run_ids[r]] * points,
                                 steps.tolist(), strict=True))
        import pyarrow as pa

        write_run(root / "neptune" / "data", "bench/neptune", f"RUN-{r}", [pa.concat_tables(parts)])
    conn.commit()
    conn.close()
    return root / "neptune", mlflow_db, runs * metrics * points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 runs x 3 metrics x 30,000 points")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.metrics, args.points = 2, 3, 30_000
    import pyarrow.parquet as pq

    from mlops_desktop.interop.neptune_import import import_neptune
    from mlops_desktop.tracking.mlflow_import import import_mlflow
    from mlops_desktop.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="bench-neptune-") as tmp:
        root = Path(tmp)
        export, mlflow_db, total = build(root, args.runs, args.metrics, args.points)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        for part in sorted(export.rglob("*.parquet")):
            pq.read_table(part)
        timings["pyarrow_read"] = time.perf_counter() - started
        for name in ("neptune", "mlflow"):  # the same points, each into its own fresh workspace
            ws = Workspace.open(root / f"ws-{name}")
            started = time.perf_counter()
            if name == "neptune":
                stats = import_neptune(ws.tracking, export)
            else:
                stats = import_mlflow(ws.tracking, f"sqlite:///{mlflow_db}")  # type: ignore[assignment]
            timings[name] = time.perf_counter() - started
            assert stats.metric_points == total, (name, stats.metric_points, total)
            ws.close()
    result = {"benchmark": "neptune_import", "points": total, "runs": args.runs, "series": args.runs * args.metrics,
              "neptune_s": round(timings["neptune"], 3), "mlflow_import_s": round(timings["mlflow"], 3),
              "pyarrow_read_s": round(timings["pyarrow_read"], 3),
              "neptune_points_per_s": round(total / timings["neptune"]),
              "mlflow_import_points_per_s": round(total / timings["mlflow"]),
              "neptune_vs_mlflow_import": round(timings["mlflow"] / timings["neptune"], 2),
              "neptune_vs_raw_read": round(timings["pyarrow_read"] / timings["neptune"], 3),
              "machine": "shared, 2 cores"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
