"""`mlops-desktop demo`: fill a workspace with real demo runs to explore the desktop app."""

from __future__ import annotations

import argparse
import sys

from mlops_desktop.cli.common import command
from mlops_desktop.cli.output import emit_json, table


def register(sub: argparse._SubParsersAction) -> None:
    parser = command(sub, "demo", cmd_demo, "fill the workspace with demo experiments (scikit-learn and PyTorch runs)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch run")


def cmd_demo(args: argparse.Namespace) -> int:
    from mlops_desktop.demo import fill_demo
    from mlops_desktop.progress import Progress

    def report(fraction: float, message: str) -> None:
        if not args.json:
            print(f"  {fraction * 100:5.1f}%  {message}", file=sys.stderr)

    result = fill_demo(args.home, progress=Progress(report, min_step=0.05), with_torch=not args.no_torch)
    if args.json:
        emit_json(result.to_dict())
    else:
        table(["field", "value"], [("workspace", result.home), ("experiments", ", ".join(result.experiments)),
                                   ("runs", result.runs), ("failed", result.failed), ("running", result.running),
                                   ("seconds", result.seconds)])
        print(f"\nOpen it with: mlops-desktop --home {result.home}")
    return 0
