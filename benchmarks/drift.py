"""Drift benchmark: ours (scipy, from the reference sketch stored at registration) vs Evidently's data-drift preset.

    python benchmarks/drift.py --evidently-python /path/to/venv/bin/python      # 1M and 10M reference rows
    python benchmarks/drift.py --ref-rows 1000000 --evidently-python ...        # one size

The data: 22 columns (18 numbers of several shapes, 4 categories), a current window of 100k rows with drift planted
in 6 columns. Each contender runs as its own whole process (imports and reading included); peak RSS comes from
wait4() of that process. Ours is timed twice: building the sketch (once, at registration) and the drift check from
the stored sketch (every window). Evidently needs pandas < 3 (0.7.23 does not import with pandas 3): give it its own
virtualenv (`pip install evidently==0.7.23 'pandas<3' pyarrow`). It is skipped above --evidently-max-rows (default
1,000,000; 54 s and 1.5 GB there on this kind of machine) and said so. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUMERIC = 18
CATEGORIES = {"city": ["ams", "ber", "cph", "dub", "edi", "fra"], "tier": ["gold", "silver", "bronze"],
              "device": ["ios", "android", "web", "tv"], "flag": ["y", "n"]}
DRIFTED = ["n0", "n3", "n7", "n12", "city", "flag"]  # planted in the current window


def _numeric(rng, i, size, drifted):
    import numpy as np

    kind = i % 4
    shift = 0.5 if drifted else 0.0
    if kind == 0:
        return rng.normal(10 * i + shift * (1 + i / 10), 1 + i / 10, size)
    if kind == 1:
        return rng.lognormal(0.0 + shift * 0.5, 0.6, size)
    if kind == 2:
        return rng.gamma(2.0 * (1 + shift), 1.5, size)
    return rng.integers(0, 50 + int(shift * 40), size).astype(np.float64)


def _chunk(rng, size, drifted):
    import numpy as np
    import pyarrow as pa

    cols = {f"n{i}": _numeric(rng, i, size, f"n{i}" in drifted) for i in range(NUMERIC)}
    for name, values in CATEGORIES.items():
        p = np.ones(len(values)) / len(values)
        if name in drifted:
            p = np.roll(np.linspace(1, 3, len(values)), 1)
            p /= p.sum()
        cols[name] = rng.choice(values, size, p=p)
    return pa.table(cols)


def make_data(folder: Path, ref_rows: int, cur_rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow.parquet as pq

    ref, cur = folder / f"reference-{ref_rows}.parquet", folder / "current.parquet"
    rng = np.random.default_rng(42)
    if not ref.exists():
        writer = None
        for start in range(0, ref_rows, 500_000):
            table = _chunk(rng, min(500_000, ref_rows - start), [])
            writer = writer or pq.ParquetWriter(ref, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()
    if not cur.exists():
        pq.write_table(_chunk(np.random.default_rng(7), cur_rows, DRIFTED), cur)
    return ref, cur


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run one contender as its own process and reap it ourselves, so that its own peak RSS is known."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode(), err_f.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 3)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: kilobytes
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)  # holds up better than wall time on a busy machine
    return result


def worker(mode: str, args: list[str]) -> None:
    import resource

    if mode == "ours-sketch":
        import polars as pl

        from mlops_desktop.monitoring.sketch import build_sketch

        ref, out = args
        sketch = build_sketch(pl.scan_parquet(ref), source=ref)
        Path(out).write_text(json.dumps(sketch.to_dict()))
        print(json.dumps({"bytes": Path(out).stat().st_size,
                          "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    elif mode == "ours-drift":
        import polars as pl

        from mlops_desktop.monitoring.drift import compute_drift
        from mlops_desktop.monitoring.sketch import Sketch

        sketch_path, cur = args
        sketch = Sketch.from_dict(json.loads(Path(sketch_path).read_text()))
        report = compute_drift(sketch, pl.read_parquet(cur))
        print(json.dumps({"drifted": sorted(report.drifted_features), "dataset_drift": report.dataset_drift,
                          "methods": {f.column: f.method for f in report.features},
                          "scores": {f.column: f.score for f in report.features}}))
    elif mode == "evidently":
        import pandas as pd
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        ref_path, cur_path = args
        ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
        numeric = [c for c in ref.columns if c.startswith("n")]
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=[c for c in ref.columns
                                                                                     if c not in numeric])
        snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                                Dataset.from_pandas(ref, data_definition=definition))
        drifted, methods, scores = [], {}, {}
        for metric in snap.dict()["metrics"]:
            config = metric["config"]
            if not config.get("type", "").endswith("ValueDrift"):
                continue
            name, method, value = config["column"], config["method"], float(metric["value"])
            p_value = "p_value" in method
            methods[name], scores[name] = method, value
            if (value <= config["threshold"] if method.startswith("K-S") else value < config["threshold"]) \
                    if p_value else value >= config["threshold"]:
                drifted.append(name)
        print(json.dumps({"drifted": sorted(drifted), "methods": methods, "scores": scores}))
    else:
        raise SystemExit(f"unknown worker {mode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref-rows", default="1000000,10000000")
    parser.add_argument("--cur-rows", type=int, default=100_000)
    parser.add_argument("--evidently-python", help="python of a virtualenv with evidently 0.7.x and pandas<3")
    parser.add_argument("--evidently-max-rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", help="keep generated data here (default: a temporary folder)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1:])
        return
    folder = Path(args.data_dir or tempfile.mkdtemp(prefix="drift-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    me = str(Path(__file__).resolve())
    results = []
    for ref_rows in [int(x) for x in args.ref_rows.split(",")]:
        ref, cur = make_data(folder, ref_rows, args.cur_rows)
        sketch_path = folder / f"sketch-{ref_rows}.json"
        row: dict = {"reference_rows": ref_rows, "current_rows": args.cur_rows, "columns": NUMERIC + len(CATEGORIES),
                     "planted": sorted(DRIFTED)}
        row["ours_sketch"] = run_measured([sys.executable, me, "--worker", "ours-sketch", str(ref), str(sketch_path)])
        row["ours_drift"] = run_measured([sys.executable, me, "--worker", "ours-drift", str(sketch_path), str(cur)])
        print(f"{ref_rows:>11,} rows  ours: sketch {row['ours_sketch']['wall_s']:.2f} s "
              f"{row['ours_sketch']['peak_rss_mb']:.0f} MB, drift {row['ours_drift']['wall_s']:.2f} s "
              f"{row['ours_drift']['peak_rss_mb']:.0f} MB -> {row['ours_drift']['drifted']}", flush=True)
        if args.evidently_python and ref_rows <= args.evidently_max_rows:
            row["evidently"] = run_measured([args.evidently_python, me, "--worker", "evidently", str(ref), str(cur)],
                                            env={**os.environ, "PYTHONPATH": ""})
            ev = row["evidently"]
            row["speedup_vs_evidently"] = round(ev["wall_s"] / row["ours_drift"]["wall_s"], 1)
            row["cpu_speedup_vs_evidently"] = round(ev["cpu_s"] / row["ours_drift"]["cpu_s"], 1)
            row["memory_ratio_vs_evidently"] = round(ev["peak_rss_mb"] / row["ours_drift"]["peak_rss_mb"], 2)
            row["same_features_flagged"] = ev["drifted"] == row["ours_drift"]["drifted"]
            row["same_methods"] = all(_same_method(row["ours_drift"]["methods"][c], m)
                                      for c, m in ev["methods"].items())
            print(f"{'':>11}       evidently: {ev['wall_s']:.2f} s {ev['peak_rss_mb']:.0f} MB -> {ev['drifted']}; "
                  f"ours is {row['speedup_vs_evidently']}x faster, same verdicts: {row['same_features_flagged']}",
                  flush=True)
        elif args.evidently_python:
            row["evidently"] = f"not run above {args.evidently_max_rows:,} reference rows (minutes and GBs there)"
        for part in ("ours_sketch", "ours_drift", "evidently"):
            if isinstance(row.get(part), dict):
                row[part].pop("scores", None)
        results.append(row)
    print(json.dumps({"benchmark": "drift", "results": results}))


def _same_method(ours: str, theirs: str) -> bool:
    names = {"wasserstein": "Wasserstein", "jensenshannon": "Jensen-Shannon", "ks": "K-S", "chisquare": "chi-square",
             "z": "Z-test", "psi": "PSI"}
    return theirs.startswith(names[ours])


if __name__ == "__main__":
    main()
