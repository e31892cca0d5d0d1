"""The torch-mlp recipe's training steps/s against a bare PyTorch loop of the same model and batch, in one run.

The bare loop is the GPU anchor probe's (an MLP on random tabular data, AdamW, no logging); the recipe adds what a
real run needs: per-step loss logging (a tensor, no host sync), per-epoch validation, checkpoints. Goal on a CUDA
GPU: recipe >= 0.97 of bare. Runs on the CPU too (smaller batch), where the ratio is still meaningful.

    python benchmarks/recipe_vs_bare.py [--device cuda|cpu] [--steps 300]

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bare_steps_per_s(torch, device, n_in: int, hidden: list[int], n_cls: int, batch: int, steps: int) -> float:
    from mlops_desktop.recipes.torch_mlp import build_model

    torch.manual_seed(0)
    model = build_model(n_in, hidden, n_cls, 0.0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, n_in, device=device)
    y = torch.randint(0, n_cls, (batch,), device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(20):
        loss = lossf(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        loss = lossf(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    return steps / (time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=300, help="training steps of the recipe (and of the bare loop)")
    parser.add_argument("--batch", type=int, default=None, help="default 4096 on CUDA (the anchor), 256 on CPU")
    args = parser.parse_args()

    import numpy as np
    import torch

    from mlops_desktop.recipes import torch_mlp

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = args.batch or (4096 if device.type == "cuda" else 256)
    n_in, hidden, n_cls = 64, [512, 512], 10
    epochs = 3
    rows_train = batch * max(1, args.steps // epochs)
    rows = int(rows_train / 0.95) + 1  # val_size 0.05
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="mlops-recipe-bench-") as tmp:
        data = Path(tmp) / "train.parquet"
        import pandas as pd

        frame = pd.DataFrame(rng.standard_normal((rows, n_in)).astype("float32"),
                             columns=[f"f{i}" for i in range(n_in)])
        frame["label"] = rng.integers(0, n_cls, rows)
        frame.to_parquet(data)
        os.environ["MLOPS_DESKTOP_HOME"] = str(Path(tmp) / "ws")
        os.environ.pop("MLOPS_RUN_ID", None)
        params = {"data": str(data), "target": "label", "task": "classification", "hidden": "512,512",
                  "dropout": "0", "epochs": str(epochs), "batch_size": str(batch), "val_size": "0.05",
                  "patience": "100", "device": device.type, "amp": "off",
                  "checkpoint_dir": str(Path(tmp) / "ckpt")}
        torch_mlp.run(params)
        from mlops_desktop.workspace import Workspace

        with Workspace.open(Path(tmp) / "ws") as ws:
            run = ws.tracking.search_runs().runs[0]
            steps = int(run.metrics["train_loss"].count)
            seconds = float(run.metrics["train_seconds"].last or 0.0)
        recipe = steps / seconds
        bare = bare_steps_per_s(torch, device, n_in, hidden, n_cls, batch, steps)
    print(f"recipe torch-mlp: {recipe:,.1f} steps/s ({steps} steps incl. validation and checkpoints)")
    print(f"bare loop:        {bare:,.1f} steps/s")
    out = {"device": str(device), "batch": batch, "steps": steps, "recipe_steps_per_s": round(recipe, 2),
           "bare_steps_per_s": round(bare, 2), "ratio_recipe_over_bare": round(recipe / bare, 3), "goal": 0.97}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
