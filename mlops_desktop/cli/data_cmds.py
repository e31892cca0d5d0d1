"""`mlops-desktop data ...`: ingest, list, show, rejects, query, profile, run pipelines and lineage."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import clean_json, emit_json, fmt_time, table


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="the data lake: ingest, query, profile, pipelines, lineage")
    data_sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    p = command(data_sub, "ingest", cmd_ingest, "ingest files (paths, globs, directories) as a new dataset version")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--dataset", "-d", required=True, help="dataset name (a plain identifier)")
    p.add_argument("--format", choices=["csv", "tsv", "ndjson", "json", "parquet", "sqlite", "excel"],
                   help="input format (default: from the file extension)")
    p.add_argument("--contract", metavar="FILE",
                   help="contract file (TOML or JSON); default: [datasets.NAME.contract] of the project's mlops.toml")
    p.add_argument("--mode", choices=["replace", "append"], default="replace",
                   help="replace: the new version holds only these rows; append: previous version + these rows")
    p.add_argument("--delimiter", default=None, help="field delimiter for CSV (default , ; \\t for TSV)")
    p.add_argument("--quote", default='"', help="quote character for CSV (default \")")
    p.add_argument("--no-quote", action="store_true", help="CSV fields are never quoted")
    p.add_argument("--encoding", default="utf-8", help="text encoding (utf-8 with or without BOM, latin-1, ...)")
    p.add_argument("--no-header", action="store_true", help="the first CSV line is data (columns: column_1, ...)")
    p.add_argument("--null", action="append", default=[], metavar="TEXT", help="CSV text meaning null (repeatable)")
    p.add_argument("--table", help="table to read from a SQLite database")
    p.add_argument("--sheet", help="sheet to read from an Excel workbook (default: the first)")
    p.add_argument("--partition-by", metavar="COL[,COL]",
                   help="one folder per value of these columns (an append keeps the base's partitioning)")
    p.add_argument("--on-malformed", choices=["reject", "fail"], default=None,
                   help="a CSV row with too few or too many fields: reject it (kept aside with its line and text; "
                        "the default) or fail the whole file; default: on_malformed of [datasets.NAME] in mlops.toml")
    p.add_argument("--project", metavar="DIR", help="project directory holding mlops.toml (default: current dir)")

    p = command(data_sub, "watch", cmd_watch, "watch a folder: ingest new or changed files into a dataset (append)")
    p.add_argument("folder")
    p.add_argument("--dataset", "-d", required=True)
    p.add_argument("--pattern", default="*", help="glob of files to take (default: every file of a known format)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between scans")
    p.add_argument("--min-age", type=float, default=1.0, help="take files untouched for this many seconds")
    p.add_argument("--once", action="store_true", help="scan once and exit")
    p.add_argument("--contract", metavar="FILE")
    p.add_argument("--project", metavar="DIR")

    p = command(data_sub, "preview", cmd_preview, "show the first rows of files and a draft contract (TOML)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--rows", "-n", type=int, default=10)
    p.add_argument("--format", choices=["csv", "tsv", "ndjson", "json", "parquet", "sqlite", "excel"])
    p.add_argument("--table")
    p.add_argument("--sheet")
    p.add_argument("--contract-only", action="store_true", help="print only the draft contract")

    command(data_sub, "list", cmd_list, "list datasets with their latest version")
    p = command(data_sub, "show", cmd_show, "show a dataset version: schema, source, lineage, and all versions")
    p.add_argument("ref", metavar="NAME[@VERSION]")
    p = command(data_sub, "rejects", cmd_rejects, "show the rows a version rejected, with file, line and reason")
    p.add_argument("ref", metavar="NAME[@VERSION]")
    p.add_argument("--limit", "-n", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--output", "-o", metavar="FILE", help="write every reject to a .csv or .parquet file")
    p = command(data_sub, "query", cmd_query, "SQL over datasets (NAME = latest, NAME@N = pinned), paged")
    p.add_argument("sql")
    p.add_argument("--limit", "-n", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--output", "-o", metavar="FILE", help="export the whole result to a .csv or .parquet file")
    p = command(data_sub, "profile", cmd_profile, "column profile of a version (computed once, then cached)")
    p.add_argument("ref", metavar="NAME[@VERSION]")
    p.add_argument("--refresh", action="store_true", help="compute again instead of reading the cache")
    p = command(data_sub, "run", cmd_run, "run the project's pipelines, one pipeline, or one step (incremental)")
    p.add_argument("target", nargs="?", metavar="PIPELINE|STEP")
    p.add_argument("--force", action="store_true", help="rebuild even when inputs and code are unchanged")
    p.add_argument("--project", metavar="DIR", help="project directory holding mlops.toml (default: current dir)")
    p = command(data_sub, "lineage", cmd_lineage, "where a dataset version came from and what was made from it")
    p.add_argument("ref", metavar="NAME[@VERSION]")


class _StderrProgress:
    """A one-line progress display on a terminal; silent when stderr is not one."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        if self.tty:
            sys.stderr.write(f"\r{fraction * 100:5.1f}%  {message[:70]:<70}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + " " * 80 + "\r")


def _progress() -> tuple[Any, _StderrProgress]:
    from mlops_desktop.progress import Progress

    display = _StderrProgress()
    return Progress(display), display


def cmd_ingest(args: argparse.Namespace) -> int:
    from mlops_desktop.data.contract import load_contract_file
    from mlops_desktop.data.csvcheck import CsvOptions
    from mlops_desktop.data.ingest import ingest
    from mlops_desktop.data.project import find_project
    from mlops_desktop.data.sources import SourceOptions

    contract = None
    partition_by = [c for c in args.partition_by.split(",") if c.strip()] if args.partition_by else None
    settled = args.contract and partition_by and args.on_malformed
    project = None if settled else find_project(args.project, required=bool(args.project))
    if args.contract:
        contract = load_contract_file(args.contract)
    elif project is not None:
        contract = project.contracts.get(args.dataset)
    if partition_by is None and project is not None and args.mode == "replace":
        partition_by = project.partitions.get(args.dataset)
    separator = args.delimiter if args.delimiter is not None else ("\t" if args.format == "tsv" else ",")
    if separator == "\\t":
        separator = "\t"
    csv = CsvOptions(separator=separator, quote_char=None if args.no_quote else args.quote, encoding=args.encoding,
                     has_header=not args.no_header, null_values=tuple(args.null))
    on_malformed = args.on_malformed or (project.malformed.get(args.dataset) if project else None) or "reject"
    options = SourceOptions(format=args.format, csv=csv, table=args.table, sheet=args.sheet, on_malformed=on_malformed)
    progress, display = _progress()
    with open_workspace(args) as ws:
        try:
            result = ingest(ws, args.paths, args.dataset, options=options, contract=contract, mode=args.mode,
                            progress=progress, partition_by=partition_by)
        finally:
            display.done()
    if args.json:
        emit_json(result.to_dict())
    else:
        table(["field", "value"], [
            ("dataset", f"{result.dataset}@{result.version}"), ("rows in", result.rows_in),
            ("rows stored", result.rows_stored), ("rows rejected", result.rows_rejected),
            ("rows in version", result.row_count), ("bytes", result.bytes),
            ("content hash", result.content_hash[:16]), ("seconds", result.seconds)])
        if result.blank_lines:
            print(f"blank lines skipped: {result.blank_lines:,} (they are not rows)")
        for note in result.notes:
            print(f"note: {note}")
        for change in result.drift:
            print(f"schema drift: {change}")
        if result.rows_rejected:
            print(f"see the rejected rows: mlops-desktop data rejects {result.dataset}@{result.version}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops_desktop.data.contract import load_contract_file
    from mlops_desktop.data.project import find_project
    from mlops_desktop.data.watch import WatchRound, watch, watch_round

    contract = load_contract_file(args.contract) if args.contract else None
    if contract is None:
        project = find_project(args.project, required=bool(args.project))
        contract = project.contracts.get(args.dataset) if project else None

    def report(outcome: WatchRound) -> None:
        for r in outcome.ingested:
            line = {"dataset": r.dataset, "version": r.version, "rows_in": r.rows_in, "rows_stored": r.rows_stored,
                    "rows_rejected": r.rows_rejected, "files": [f["path"] for f in r.files]}
            if args.json:
                emit_json(line)
            else:
                print(f"{r.dataset}@{r.version}: +{r.rows_stored} rows ({r.rows_rejected} rejected) from "
                      + ", ".join(f["path"] for f in r.files), flush=True)
        for _path, message in outcome.failed:
            print(f"not ingested: {message}", file=sys.stderr, flush=True)

    folder = Path(args.folder)
    with open_workspace(args) as ws:
        if args.once:
            outcome = watch_round(ws, folder, args.dataset, pattern=args.pattern, contract=contract,
                                  min_age_s=args.min_age)
            report(outcome)
            return 1 if outcome.failed else 0
        print(f"watching {folder} for {args.dataset} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            watch(ws, folder, args.dataset, interval_s=args.interval, on_round=report, pattern=args.pattern,
                  contract=contract, min_age_s=args.min_age)
        except KeyboardInterrupt:
            return 0
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from mlops_desktop.data.preview import contract_to_toml, draft_contract, preview
    from mlops_desktop.data.sources import SourceOptions

    pv = preview(args.paths, SourceOptions(format=args.format, table=args.table, sheet=args.sheet), rows=args.rows)
    draft = contract_to_toml(draft_contract(pv))
    if args.json:
        emit_json(clean_json(pv.to_dict() | {"draft_contract": draft}))
    elif args.contract_only:
        sys.stdout.write(draft)
    else:
        table(pv.columns, pv.rows)
        print()
        table(["column", "suggested type"], list(pv.types.items()))
        print("\ndraft contract (save as a .toml file, edit, and pass with --contract):\n")
        sys.stdout.write(draft)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from mlops_desktop.data import catalog

    with open_workspace(args) as ws:
        versions = catalog.list_datasets(ws.db)
    if args.json:
        emit_json([v.to_dict() for v in versions])
        return 0
    table(["dataset", "version", "rows", "rejected", "bytes", "columns", "created", "made by"],
          [(v.name, v.version, v.row_count, v.rows_rejected, v.bytes, len(v.schema), fmt_time(v.created_at),
            v.producer_step or v.mode) for v in versions])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from mlops_desktop.data import catalog

    with open_workspace(args) as ws:
        version = catalog.resolve(ws.db, args.ref)
        versions = catalog.list_versions(ws.db, version.name)
    if args.json:
        emit_json(version.to_dict() | {"versions": [v.to_dict() for v in versions]})
        return 0
    table(["field", "value"], [
        ("dataset", version.ref), ("rows", version.row_count), ("rows in", version.rows_in),
        ("rows rejected", version.rows_rejected), ("bytes", version.bytes), ("content hash", version.content_hash),
        ("mode", version.mode), ("made by", version.producer_step or "-"), ("parents", ", ".join(version.parents)),
        ("created", fmt_time(version.created_at)),
        ("source", ", ".join(version.source.get("paths") or [version.source.get("step") or "-"])),
        ("partitioned by", ", ".join(version.source.get("partition_by") or []) or "-")], max_width=100)
    print()
    table(["column", "type"], list(version.schema.items()))
    for change in version.drift:
        print(f"schema drift from the previous version: {change}")
    print()
    table(["version", "rows", "rejected", "mode", "created", "hash"],
          [(v.version, v.row_count, v.rows_rejected, v.mode, fmt_time(v.created_at), v.content_hash[:12])
           for v in versions])
    return 0


def cmd_rejects(args: argparse.Namespace) -> int:
    from mlops_desktop.data import catalog, lake
    from mlops_desktop.errors import UsageError

    with open_workspace(args) as ws:
        version = catalog.resolve(ws.db, args.ref)
        files = lake.reject_files(ws, version)
    import polars as pl

    if not files:
        if args.json:
            emit_json({"dataset": version.ref, "rows_rejected": 0, "by_reason": [], "rows": []})
        else:
            print(f"{version.ref} rejected no rows")
        return 0
    frame = pl.scan_parquet([str(f) for f in files])
    if args.output:
        out = args.output
        if out.endswith(".csv"):
            frame.sink_csv(out)
        elif out.endswith((".parquet", ".pq")):
            frame.sink_parquet(out)
        else:
            raise UsageError("--output must end in .csv or .parquet")
    by_reason = frame.group_by("_reason").len().sort("len", descending=True).collect().rows()
    page = frame.slice(args.offset, args.limit).collect()
    if args.json:
        emit_json(clean_json({"dataset": version.ref, "rows_rejected": version.rows_rejected,
                              "by_reason": [{"reason": r, "rows": n} for r, n in by_reason],
                              "rows": page.to_dicts()}))
        return 0
    print(f"{version.ref}: {version.rows_rejected} rejected rows")
    table(["reason", "rows"], by_reason, max_width=100)
    print()
    cols = ["_source_file", "_source_line", "_reason"] + [c for c in page.columns if not c.startswith("_")][:6]
    headers = ["file", "line", "reason"] + cols[3:]
    if "_raw_line" in page.columns and page["_raw_line"].null_count() < page.height:
        cols.append("_raw_line")  # rows with the wrong number of fields: their line as the file has it
        headers.append("raw line")
    table(headers, page.select(cols).rows(), max_width=60)
    if args.output:
        print(f"wrote every reject to {args.output}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from mlops_desktop.data.query import export, query

    with open_workspace(args) as ws:
        if args.output:
            result = export(ws, args.sql, args.output)
            if args.json:
                emit_json(result)
            else:
                print(f"wrote {result['rows']} rows to {result['output']}")
            return 0
        page = query(ws, args.sql, limit=args.limit, offset=args.offset)
    if args.json:
        emit_json(clean_json(page.to_dict()))
        return 0
    table(page.columns, page.rows)
    shown = len(page.rows)
    if page.total is not None and page.total > page.offset + shown:
        print(f"rows {page.offset + 1}-{page.offset + shown} of {page.total}; next page: --offset "
              f"{page.offset + shown}")
    elif page.total is not None:
        print(f"{page.total} rows")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from mlops_desktop.data.profile import profile

    progress, display = _progress()
    with open_workspace(args) as ws:
        try:
            result = profile(ws, args.ref, refresh=args.refresh, progress=progress)
        finally:
            display.done()
    if args.json:
        emit_json(clean_json(result))
        return 0
    print(f"{result['dataset']}@{result['version']}: {result['rows']} rows"
          + (" (cached profile)" if result.get("cached") else ""))
    rows = []
    for c in result["columns"]:
        q = c.get("quantiles") or {}
        top = ", ".join(f"{v}({n})" for v, n in (c.get("top") or [])[:3])
        rows.append((c["name"], c["dtype"], c["nulls"], c["distinct"], c.get("min"), c.get("max"), c.get("mean"),
                     c.get("std"), q.get("0.5"), top))
    table(["column", "type", "nulls", "distinct", "min", "max", "mean", "std", "median", "top values"], rows)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mlops_desktop.data.pipeline import run_pipelines
    from mlops_desktop.data.project import find_project

    project = find_project(args.project, required=True)
    assert project is not None
    progress, display = _progress()
    with open_workspace(args) as ws:
        try:
            outcomes = run_pipelines(ws, project, args.target, force=args.force, progress=progress)
        finally:
            display.done()
    failed = [o for o in outcomes if o.status in ("failed", "blocked")]
    if args.json:
        emit_json({"steps": [o.to_dict() for o in outcomes], "failed": len(failed)})
    else:
        table(["step", "status", "output", "version", "stored", "rejected", "seconds", "message"],
              [(o.step, o.status, o.output, o.version, o.rows_stored, o.rows_rejected, o.seconds, o.message)
               for o in outcomes], max_width=100)
    return 1 if failed else 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from mlops_desktop.data import catalog
    from mlops_desktop.data.lineage import lineage
    from mlops_desktop.registry.lineage import models_trained_on

    with open_workspace(args) as ws:
        version = catalog.resolve(ws.db, args.ref)
        graph = lineage(ws, args.ref)
        models = models_trained_on(ws, version.name, str(version.version))
    if args.json:
        emit_json(graph.to_dict() | {"dataset": graph.root, "made_by": version.producer_step,
                                     "source": version.source, "models": models})
        return 0
    print(f"{version.ref} made by {version.producer_step or version.mode}"
          + (f" from {', '.join(version.source.get('paths') or [])}" if version.source.get("paths") else ""))
    print()
    table(["parent", "child", "via"], graph.edges)
    print("\nruns that read it:")
    table(["run", "name", "version", "context"],
          [(r["run"], r["run_name"], r["version"], r["context"]) for r in graph.runs])
    print("\nmodels trained on it:")
    table(["model", "run", "aliases"], [(m["model"], (m["run"] or "-")[:8], ", ".join(m["aliases"]) or "-")
                                         for m in models])
    return 0
