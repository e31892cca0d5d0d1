"""Recipe `torch-mlp`: a tabular MLP in PyTorch with device auto-selection, AMP on CUDA, checkpoints, early
stopping and resume; the loss is logged every step as a tensor (no host sync in the training loop).

    --param data=train.csv --param target=label [--param task=auto|classification|regression]
    [--param hidden=128,64] [--param lr=1e-3] [--param epochs=20] [--param batch_size=256] [--param patience=5]
    [--param weight_decay=0] [--param dropout=0.1] [--param val_size=0.2] [--param seed=0]
    [--param device=auto|cpu|cuda|mps] [--param amp=auto|on|off] [--param checkpoint_dir=DIR]
    [--param register=MODEL]

With register=MODEL the trained network becomes the next version of MODEL in the registry when the run succeeds.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.recipes.common import (
    Params,
    load_table,
    log_lineage,
    register_after_run,
    register_name,
    split_xy,
    write_model_extras,
)

NAME = "torch-mlp"


def pick_device(requested: str) -> Any:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("recipe torch-mlp: device=cuda asked for, but no CUDA device is visible",
                         hint="check CUDA_VISIBLE_DEVICES / --gpus, or use device=auto")
    if requested not in ("cpu", "cuda", "mps"):
        raise UsageError(f"recipe torch-mlp: device={requested!r} must be auto, cpu, cuda or mps")
    return torch.device(requested)


def encode(x: Any, columns: list[str] | None = None) -> Any:
    """Numbers as they are, text columns one-hot; the column list of training is reused for validation."""
    import pandas as pd

    frame = pd.get_dummies(x, dummy_na=False, dtype="float32")
    if columns is not None:
        frame = frame.reindex(columns=columns, fill_value=0.0)
    return frame.astype("float32").fillna(0.0)


def build_model(n_in: int, hidden: list[int], n_out: int, dropout: float) -> Any:
    from torch import nn

    layers: list[Any] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def run(raw: dict[str, str]) -> dict[str, float]:
    import mlops_desktop.tracking as mt

    p = Params(NAME, raw)
    data, target = p.text("data", required=True), p.text("target", required=True)
    features = p.text("features")
    task = p.text("task", "auto")
    hidden_text = p.text("hidden", "128,64")
    try:
        hidden = [int(h) for h in hidden_text.split(",") if h.strip()]
    except ValueError:
        raise UsageError(f"recipe torch-mlp: hidden={hidden_text!r} must be comma-separated layer widths") from None
    cfg = {"lr": p.number("lr", 1e-3, low=0), "epochs": p.number("epochs", 20, integer=True, low=1),
           "batch_size": p.number("batch_size", 256, integer=True, low=1),
           "patience": p.number("patience", 5, integer=True, low=1),
           "weight_decay": p.number("weight_decay", 0.0, low=0), "dropout": p.number("dropout", 0.1, low=0, high=0.9),
           "val_size": p.number("val_size", 0.2, low=0.01, high=0.9), "seed": p.number("seed", 0, integer=True)}
    device_name, amp_mode = p.text("device", "auto"), p.text("amp", "auto")
    checkpoint_dir = p.text("checkpoint_dir")
    register = register_name(p)
    unknown = sorted(p.rest())
    if unknown:
        raise UsageError(f"recipe torch-mlp: unknown parameter(s) {', '.join(unknown)}")
    with mt.start_run() as active:
        results = _train(active, data, target, features, task, hidden, cfg, device_name, amp_mode,
                         checkpoint_dir or os.path.join(tempfile.gettempdir(), "mlops-desktop-checkpoints", active.uuid))
        if register:
            mt.set_tags({"mlops.register": register})
    register_after_run(active.uuid, register, NAME)
    return results


def _train(active: Any, data: str, target: str, features: str, task: str, hidden: list[int], cfg: dict[str, Any],
           device_name: str, amp_mode: str, checkpoint_dir: str) -> dict[str, float]:
    import numpy as np
    import torch
    from torch import nn

    import mlops_desktop.tracking as mt

    torch.manual_seed(cfg["seed"])
    table = load_table(data, NAME)
    x, y = split_xy(table, target, features, NAME)
    log_lineage(table)
    if task == "auto":
        task = "classification" if (y.dtype.kind in "Ob" or str(y.dtype) == "category"
                                    or (y.dtype.kind in "iu" and y.nunique() <= 20)) else "regression"
    if task not in ("classification", "regression"):
        raise UsageError(f"recipe torch-mlp: task={task!r} must be auto, classification or regression")
    rng = np.random.default_rng(cfg["seed"])
    order = rng.permutation(len(x))
    n_val = max(1, int(len(x) * cfg["val_size"]))
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train_df = encode(x.iloc[train_idx])
    columns = list(x_train_df.columns)
    x_val_df = encode(x.iloc[val_idx], columns)
    mean = x_train_df.mean().to_numpy(dtype="float32")
    std = x_train_df.std().replace(0, 1).fillna(1).to_numpy(dtype="float32")
    device = pick_device(device_name)
    use_amp = device.type == "cuda" and amp_mode != "off"
    if amp_mode == "on" and device.type != "cuda":
        raise UsageError("recipe torch-mlp: amp=on needs a CUDA device")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16

    def tensor(frame: Any) -> Any:
        return torch.from_numpy((frame.to_numpy(dtype="float32") - mean) / std).to(device)

    xt, xv = tensor(x_train_df), tensor(x_val_df)
    classes: list[Any] | None = None
    loss_fn: Any
    if task == "classification":
        classes = sorted(y.unique().tolist(), key=str)
        index = {c: i for i, c in enumerate(classes)}
        yt = torch.tensor([index[v] for v in y.iloc[train_idx]], device=device)
        yv = torch.tensor([index[v] for v in y.iloc[val_idx]], device=device)
        n_out, loss_fn = len(classes), nn.CrossEntropyLoss()
        y_mean, y_std = 0.0, 1.0
    else:
        yvals = y.to_numpy(dtype="float32")
        y_mean, y_std = float(yvals[train_idx].mean()), float(yvals[train_idx].std() or 1.0)
        yt = torch.from_numpy((yvals[train_idx] - y_mean) / y_std).to(device).unsqueeze(1)
        yv = torch.from_numpy((yvals[val_idx] - y_mean) / y_std).to(device).unsqueeze(1)
        n_out, loss_fn = 1, nn.MSELoss()
    model = build_model(len(columns), hidden, n_out, cfg["dropout"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    ckpt_dir = Path(checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"epoch": -1, "step": 0, "best": float("inf"), "bad_epochs": 0}
    last = ckpt_dir / "last.pt"
    if last.exists():
        saved = torch.load(last, map_location=device, weights_only=True)  # our own file, tensors only
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        state = {k: saved[k] for k in state}
        print(f"recipe torch-mlp: resumed from {last} after epoch {state['epoch']}", flush=True)
    mt.log_params({"recipe": NAME, "task": task, "target": target, "device": str(device), "amp": str(use_amp).lower(),
                   "n_features": len(columns), "n_rows": len(x), "checkpoint_dir": str(ckpt_dir)})
    mt.set_tags({"mlops.device": str(device)})
    n = len(xt)
    results: dict[str, float] = {}
    started = time.perf_counter()
    for epoch in range(state["epoch"] + 1, cfg["epochs"]):
        model.train()
        perm = torch.randperm(n, device=device)
        for begin in range(0, n, cfg["batch_size"]):
            idx = perm[begin:begin + cfg["batch_size"]]
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            mt.log_metric("train_loss", loss.detach(), step=state["step"])  # a tensor: no .item(), no sync
            state["step"] += 1
        results = _evaluate(model, xv, yv, loss_fn, task, y_std, use_amp, amp_dtype, device)
        mt.log_metrics({**results, "epoch": epoch}, step=state["step"])
        improved = results["val_loss"] < state["best"] - 1e-6
        state["best"] = min(state["best"], results["val_loss"])
        state["bad_epochs"] = 0 if improved else state["bad_epochs"] + 1
        state["epoch"] = epoch
        payload = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(), **state}
        torch.save(payload, ckpt_dir / "last.pt.tmp")
        os.replace(ckpt_dir / "last.pt.tmp", last)
        if improved:
            torch.save({"model": model.state_dict()}, ckpt_dir / "best.pt")
        print(f"epoch {epoch}: " + ", ".join(f"{k}={v:.4g}" for k, v in results.items()), flush=True)
        if state["bad_epochs"] >= cfg["patience"]:
            print(f"recipe torch-mlp: early stop after epoch {epoch} (no improvement in {cfg['patience']})",
                  flush=True)
            mt.set_tags({"mlops.early_stopped": str(epoch)})
            break
    mt.log_metrics({"train_seconds": time.perf_counter() - started}, step=state["step"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        best = ckpt_dir / "best.pt" if (ckpt_dir / "best.pt").exists() else last
        weights = torch.load(best, map_location="cpu", weights_only=True)["model"]
        torch.save({"model": weights, "mean": torch.tensor(mean), "std": torch.tensor(std),
                    "y_mean": y_mean, "y_std": y_std}, folder / "model.pt")
        meta = {"flavor": "torch-mlp", "format": "torch.save (load with weights_only=True)", "columns": columns,
                "hidden": hidden, "n_out": n_out, "dropout": cfg["dropout"], "task": task, "run": active.uuid}
        (folder / "MLmodel.json").write_text(json.dumps(meta, indent=2))
        write_model_extras(folder, x, y, task, classes, x.iloc[val_idx],
                           ["torch", "numpy", "pandas"])
        mt.log_artifact(folder)
    return results


def _evaluate(model: Any, xv: Any, yv: Any, loss_fn: Any, task: str, y_std: float, use_amp: bool, amp_dtype: Any,
              device: Any) -> dict[str, float]:
    import torch

    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
        out = model(xv).float()
        loss = loss_fn(out, yv)
    if task == "classification":
        accuracy = (out.argmax(1) == yv).float().mean()
        return {"val_loss": float(loss), "val_accuracy": float(accuracy)}
    return {"val_loss": float(loss), "val_rmse": float(loss.sqrt()) * y_std}
