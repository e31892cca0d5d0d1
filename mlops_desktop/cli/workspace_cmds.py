"""`mlops-desktop workspace ...`: where the workspace is and what it holds."""

from __future__ import annotations

import argparse

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import emit_json, table


def register(sub: argparse._SubParsersAction) -> None:
    ws = sub.add_parser("workspace", help="the workspace: location, schema, sizes")
    ws_sub = ws.add_subparsers(dest="workspace_command", metavar="COMMAND", required=True)
    command(ws_sub, "info", cmd_info, "show the workspace location, schema version and contents")


def cmd_info(args: argparse.Namespace) -> int:
    from mlops_desktop.schema import SCHEMA_VERSION

    with open_workspace(args) as ws:
        counts = {
            "experiments": ws.db.query("SELECT count(*) FROM experiments WHERE deleted_at IS NULL")[0][0],
            "runs": ws.db.query("SELECT count(*) FROM runs WHERE deleted_at IS NULL")[0][0],
            "metric_points": ws.db.query("SELECT coalesce(sum(n), 0) FROM metric_chunks")[0][0],
            "artifacts": ws.db.query("SELECT count(*) FROM artifacts")[0][0],
        }
        db_bytes = sum(p.stat().st_size for p in ws.paths.root.glob("mlops.db*") if p.is_file())
        info = {"home": str(ws.root), "database": str(ws.paths.db), "schema_version": SCHEMA_VERSION,
                "database_bytes": db_bytes, **counts}
    if args.json:
        emit_json(info)
    else:
        table(["field", "value"], list(info.items()))
    return 0
