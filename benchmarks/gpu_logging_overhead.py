"""Per-step logging overhead on a training loop: our log_metric(tensor) vs no logging vs loss.item() per step.

The reference loop is the tabular MLP of the GPU anchor probe (batch 4096, AdamW), run on CUDA when present and on
the CPU otherwise. Each variant runs in the same process, interleaved over several rounds; the median is quoted.

    python benchmarks/gpu_logging_overhead.py [--steps 300] [--rounds 5] [--device cuda|cpu]

Last line: one JSON object with step_us for each variant and the overheads relative to no logging.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None, help="default 4096 on CUDA (the anchor), 256 on CPU")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch
    import torch.nn as nn

    import mlops_desktop.tracking as mt

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.batch is None:
        args.batch = 4096 if device.startswith("cuda") else 256
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, 64, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    lossf = nn.CrossEntropyLoss()

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def step():
        loss = lossf(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def loop(mode: str, offset: int) -> float:
        sync()
        t = time.perf_counter()
        for i in range(args.steps):
            loss = step()
            if mode == "ours":
                mt.log_metric("loss", loss, step=offset + i)
            elif mode == "item":
                _ = loss.item()
        sync()
        return (time.perf_counter() - t) / args.steps * 1e6

    for _ in range(30):
        step()
    results: dict[str, list[float]] = {"none": [], "ours": [], "item": []}
    with tempfile.TemporaryDirectory() as home, mt.start_run(experiment="bench", name="gpu-overhead", home=home,
                                                             capture_git=False) as run:
        for r in range(args.rounds):
            for mode in ("none", "ours", "item"):
                results[mode].append(loop(mode, r * args.steps))
        run.flush()
    med = {k: statistics.median(v) for k, v in results.items()}
    for mode, label in (("none", "no logging"), ("ours", "mt.log_metric(loss)"), ("item", "loss.item() per step")):
        print(f"{label:<24} {med[mode]:>10.1f} µs/step  (rounds: {', '.join(f'{v:.0f}' for v in results[mode])})")
    out = {"device": device, "torch": torch.__version__, "batch": args.batch, "steps": args.steps,
           "step_us_none": round(med["none"], 1), "step_us_ours": round(med["ours"], 1),
           "step_us_item": round(med["item"], 1),
           "overhead_ours_pct": round((med["ours"] / med["none"] - 1) * 100, 2),
           "overhead_item_pct": round((med["item"] / med["none"] - 1) * 100, 2)}
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
