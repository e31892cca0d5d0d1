"""The rejects summary reads the checks' words back into (column, rule): one line per rule, whatever the values."""

from __future__ import annotations

from pathlib import Path

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.contract import load_contract_file
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.reject_summary import split_reason, summarise, summarise_frame

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample_data"


def test_values_do_not_split_a_rule_into_many_lines():
    summary = summarise([("fare: -3 is below the minimum 0", 1), ("fare: -12.5 is below the minimum 0", 1),
                         ("fare: 'abc' is not a valid float64", 2),
                         ("zone: 'up' is not one of the allowed values; fare: -1 is below the minimum 0", 1)])
    assert summary.rows == 5
    assert [(r.label, r.rows) for r in summary.rules] == [
        ("fare < min 0", 3), ("fare not a valid float64", 2), ("zone not an allowed value", 1)]
    assert summary.rules[0].example == "-3"


def test_every_kind_of_reason_and_values_holding_the_separator():
    assert split_reason("note: 'a; b' does not match /^x/") == [("note", "does not match /^x/", "a; b")]
    assert split_reason("id: missing value (column is not nullable); row check failed: fare <= distance_km * 10") \
        == [("id", "missing (not nullable)", ""), ("", "row check fare <= distance_km * 10", "")]
    assert split_reason("duplicate value of unique key (trip_id)") == [("", "duplicate (trip_id)", "")]
    assert split_reason("empty row: every field is empty") == [("", "empty row", "")]
    assert split_reason("a: b: 7 is above the maximum 6", frozenset({"a: b"})) == [("a: b", "> max 6", "7")]
    assert split_reason("something new the writer says") == [("", "something new the writer says", "")]


def test_summary_of_the_sample_trips_rejects(ws):
    contract = load_contract_file(SAMPLE / "trips.contract.toml")
    result = ingest(ws, [str(SAMPLE / "trips.csv")], "trips", contract=contract)
    assert result.rows_rejected > 0
    import polars as pl

    version = catalog.resolve(ws.db, "trips")
    frame = pl.scan_parquet([str(f) for f in lake.reject_files(ws, version)])
    summary = summarise_frame(frame, columns=frozenset(version.schema))
    assert summary.rows == result.rows_rejected
    distinct_reasons = frame.select(pl.col("_reason").n_unique()).collect().item()
    labels = [r.label for r in summary.rules]
    assert len(labels) == len(set(labels)) and len(labels) <= distinct_reasons
    assert ("fare < min 0", 2) in [(r.label, r.rows) for r in summary.rules]  # two fares, two values, one line
    assert ("distance_km not a valid float64", 1) in [(r.label, r.rows) for r in summary.rules]
