"""Entry point: no arguments opens the GUI; subcommands form the operator console."""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from collections.abc import Sequence

from mlops_desktop import __version__
from mlops_desktop.cli.common import add_common
from mlops_desktop.errors import MlopsError

# Each module adds its subcommands with register(subparsers); handlers import heavy libraries lazily.
COMMAND_MODULES = [
    "mlops_desktop.cli.workspace_cmds",
    "mlops_desktop.cli.tracking_cmds",
    "mlops_desktop.cli.data_cmds",
    "mlops_desktop.cli.execution_cmds",
    "mlops_desktop.cli.gui_cmds",
    "mlops_desktop.cli.interop_cmds",
    "mlops_desktop.cli.registry_cmds",
    "mlops_desktop.cli.serving_cmds",
    "mlops_desktop.cli.router_cmds",
    "mlops_desktop.cli.containers_cmds",   # images
    "mlops_desktop.cli.deploy_cmds",       # targets, deploy
    "mlops_desktop.cli.monitoring_cmds",   # monitor, alerts
    "mlops_desktop.cli.promotion_cmds",    # promote, reviews
    "mlops_desktop.cli.backtest_cmds",     # backtest
]

EXIT_CODES = """exit codes:
  0  success
  1  error
  2  bad arguments or input
  3  not found (run, experiment, dataset, host)
  4  the workspace cannot be used (locked, full, read-only, corrupt)
  5  the workspace was written by a newer version
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-desktop",
        description="MLOps Desktop: with no command, opens the desktop app; commands below form the operator console.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mlops-desktop {__version__}")
    add_common(parser)
    # GUI-only options (used when no command is given)
    parser.add_argument("--screenshot", metavar="FILE", help="render a view offscreen to FILE and exit")
    parser.add_argument("--view", metavar="NAME", help="view to show or render (with --screenshot)")
    parser.add_argument("--size", metavar="WxH", default="1280x800", help="window size for --screenshot")
    parser.add_argument("--theme", choices=["system", "light", "dark"], help="theme for this start (not saved)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # capability not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "home"):
        args.home = None
    if not hasattr(args, "json"):
        args.json = False
    handler = getattr(args, "handler", None)
    try:
        if handler is None:
            if args.command is not None:
                parser.parse_args([args.command, "--help"])
            return open_gui(args)
        return int(handler(args) or 0)
    except MlopsError as exc:
        print(f"mlops-desktop: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except sqlite3.Error as exc:
        # a damaged or unavailable database met in the middle of a read: say so in words, like any StoreError
        from mlops_desktop.paths import WorkspacePaths, resolve_home
        from mlops_desktop.store.db import classify_sqlite_error

        mapped = classify_sqlite_error(exc, WorkspacePaths(resolve_home(args.home)).db)
        if mapped is None:
            raise
        print(f"mlops-desktop: error: {mapped}", file=sys.stderr)
        return mapped.exit_code
    except KeyboardInterrupt:
        print("mlops-desktop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def open_gui(args: argparse.Namespace) -> int:
    try:
        from mlops_desktop.gui import app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("mlops_desktop.gui"):
            print("mlops-desktop: the desktop app is not part of this build yet; use the commands "
                  "(mlops-desktop --help)", file=sys.stderr)
            return 1
        print(f"mlops-desktop: cannot open the desktop app: the Python package {exc.name!r} is missing.\n"
              f"  hint: pip install -e . (see README)", file=sys.stderr)
        return 1
    return int(app.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
