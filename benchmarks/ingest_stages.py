"""Where ingestion time goes: the typed-path query built up stage by stage against the raw polars baseline.

    python benchmarks/ingest_stages.py CSV [--contract FILE] [--repeat N]

CSV is a file made by benchmarks/ingest.py (--keep DIR keeps it); without --contract the benchmark's contract is
used. Each stage is the previous one plus one piece of our query, all sunk to Parquet the same way:

    raw          pl.scan_csv(path).sink_parquet()                (the baseline: types inferred, dates as text)
    native       the contract's numbers and booleans parsed by the reader, row numbers added
    typed        + the contract's conversions (timestamps parsed)
    checked      + every contract check and the good-row filter
    callback     + the per-batch callback that keeps bad rows' line numbers (what ingest runs)

Stages run interleaved, in this process, best of --repeat by CPU time; the last line is JSON with wall and CPU
seconds of each stage and each stage's CPU over the baseline's.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import CONTRACT  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    import tomllib

    import polars as pl

    from mlops_desktop.data.contract import (
        contract_from_dict,
        load_contract_file,
        merged_with_inferred,
        plan_checks,
        with_detected_formats,
    )
    from mlops_desktop.data.csvcheck import CsvOptions
    from mlops_desktop.data.sources import LINE, csv_piece
    from mlops_desktop.data.writer import reader_types

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv")
    parser.add_argument("--contract")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    contract = (load_contract_file(args.contract) if args.contract
                else contract_from_dict(tomllib.loads(CONTRACT), "benchmark contract"))
    work = Path(tempfile.mkdtemp(prefix="mlops-stages-"))
    path = Path(args.csv)
    piece = csv_piece(path, CsvOptions(), work, frozenset(c for c, r in contract.columns.items() if r.type))
    effective = merged_with_inferred(contract, piece.inferred)
    if piece.sample is not None:
        effective = with_detected_formats(effective, piece.sample.head(2000))
    native = reader_types(effective, piece.schema)  # what the typed path hands the CSV reader
    assert piece.typed_scan is not None
    scan = piece.typed_scan(native)
    plan = plan_checks(effective, piece.schema | native, str(path))
    columns = plan.output_columns
    typed = scan.with_columns(plan.raw_keep).with_columns(plan.typed)
    checked = typed.with_columns(plan.ok.alias("__ok"))

    def keep_lines(df: pl.DataFrame) -> pl.DataFrame:
        keep = df["__ok"]
        if not keep.all():
            df[LINE].filter(~keep)
        return df

    out = work / "out.parquet"
    stages = {
        "raw": lambda: pl.scan_csv(path).sink_parquet(out),
        "native": lambda: scan.select(columns).sink_parquet(out),
        "typed": lambda: typed.select(columns).sink_parquet(out),
        "checked": lambda: checked.filter(pl.col("__ok")).select(columns).sink_parquet(out),
        "callback": lambda: (checked.map_batches(keep_lines, schema=checked.collect_schema(), streamable=True)
                             .filter(pl.col("__ok")).select(columns).sink_parquet(out)),
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):
        for name, run in stages.items():
            cpu, wall = _cpu(), time.perf_counter()
            run()
            wall, cpu = time.perf_counter() - wall, _cpu() - cpu
            if name not in best or cpu < best[name][1]:
                best[name] = (wall, cpu)
    base = best["raw"][1]
    for name, (wall, cpu) in best.items():
        print(f"{name:>9}: wall {wall:6.3f}s  cpu {cpu:6.3f}s  cpu/raw {cpu / base:5.2f}", file=sys.stderr)
    print(json.dumps({"csv": str(path), "stages": {n: {"wall_seconds": round(w, 3), "cpu_seconds": round(c, 3),
                                                       "cpu_vs_raw": round(c / base, 3)}
                                                   for n, (w, c) in best.items()}}))
    out.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
