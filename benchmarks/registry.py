"""Registry benchmark: per-call cost of the scikit-learn and ONNX serving paths (1, 64, 100 rows) and batch scoring
against one model.predict over all rows, same machine, same run. Last line: one JSON object.

    python benchmarks/registry.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"f{i}": rng.normal(size=n) for i in range(18)}
    data["plan"] = rng.choice(["basic", "plus", "pro"], n)
    data["region"] = rng.choice(["eu", "us", "apac", "latam"], n)
    frame = pd.DataFrame(data)
    frame["label"] = np.where(frame.f0 + frame.f1 * 0.5 + (frame.plan == "basic") > 0.5, "yes", "no")
    return frame


def _per_call(predictor, cols_by_n, repeats: int) -> dict[str, float]:
    out = {}
    for n, cols in cols_by_n.items():
        predictor.predict(cols)
        started = time.perf_counter()
        for _ in range(repeats):
            predictor.predict(cols)
        out[str(n)] = (time.perf_counter() - started) / repeats * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    from mlops_desktop import registry
    from mlops_desktop.recipes.sklearn_recipe import build_pipeline
    from mlops_desktop.registry.batch import predict_batch
    from mlops_desktop.workspace import Workspace
    from tests.registry.conftest import log_sklearn_run

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        train = _frame(20_000)
        x = train.drop(columns=["label"])
        model = build_pipeline(LogisticRegression(max_iter=500), x).fit(x, train["label"])
        run = log_sklearn_run(ws, Path(tmp), model, train.rename(columns={"label": "churned"}))
        mv = registry.register(ws, run, "bench").version
        assert mv.serving_path == "onnxruntime", mv.serving_path
        sk = registry.load_predictor(ws, mv, prefer_onnx=False)
        ox = registry.load_predictor(ws, mv)
        cols = {n: {c: x[c].to_numpy()[:n] for c in x.columns} for n in (1, 64, 100)}
        per_call = {"sklearn_ms": _per_call(sk, cols, args.repeats), "onnxruntime_ms": _per_call(ox, cols, args.repeats)}
        big = _frame(args.rows, seed=1).drop(columns=["label"])
        path = Path(tmp) / "rows.parquet"
        big.to_parquet(path)
        started = time.perf_counter()
        model.predict(big)
        baseline_s = time.perf_counter() - started
        batch = {}
        for prefer in (True, False):
            started = time.perf_counter()
            result = predict_batch(ws, "bench/1", input_path=str(path), output=str(Path(tmp) / f"o{prefer}.parquet"),
                                   prefer_onnx=prefer)
            batch[result.serving_path] = time.perf_counter() - started
        ws.close()
    out = {"rows": args.rows, "per_call_ms": per_call,
           "onnx_speedup": {n: per_call["sklearn_ms"][n] / per_call["onnxruntime_ms"][n] for n in ("1", "64", "100")},
           "model_predict_all_rows_s": baseline_s, "batch_predict_s": batch,
           "batch_ratio_vs_one_predict": {k: baseline_s / v for k, v in batch.items()}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
