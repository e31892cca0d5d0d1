"""Helpers shared by the CLI command modules: common options and opening the workspace."""

from __future__ import annotations

import argparse
from typing import Any

from mlops_desktop.workspace import Workspace


def add_common(parser: argparse.ArgumentParser) -> None:
    """--home and --json are accepted both before and after the subcommand."""
    parser.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace directory (default: $MLOPS_DESKTOP_HOME or the user data dir)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON for scripts instead of tables")


def command(sub: Any, name: str, handler: Any, help: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Add a subcommand with the common options and its handler."""
    parser = sub.add_parser(name, help=help, description=help, **kwargs)
    add_common(parser)
    parser.set_defaults(handler=handler)
    return parser


def open_workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.home)
