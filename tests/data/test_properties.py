"""Property: for any messy CSV, rows_in = rows_stored + rows_rejected = the records in the file, never fewer."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.contract import contract_from_dict
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.sources import SourceOptions
from mlops_desktop.errors import MlopsError
from mlops_desktop.workspace import Workspace

CONTRACT = contract_from_dict({"columns": {"id": {"type": "int64", "nullable": False},
                                           "x": {"type": "float64", "min": 0}}}, "property")

ids = st.one_of(st.integers(-10**6, 10**6).map(str), st.sampled_from(["abc", "1.5", "", "x1", "--"]))
xs = st.one_of(st.floats(-100, 100, allow_nan=False).map(lambda f: str(round(f, 3))),
               st.sampled_from(["z", "", "1,5", "NaNx"]))
texts = st.text(alphabet="ab ,\"\né'", max_size=12)
rows = st.lists(st.tuples(ids, xs, texts), min_size=1, max_size=40)


def expected_bad(row: tuple[str, str, str]) -> bool:
    ident, x, _ = row
    try:
        int(ident)
    except ValueError:
        return True
    if x == "":
        return False
    try:
        return float(x) < 0
    except ValueError:
        return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, ragged=st.booleans(), mode=st.sampled_from(["reject", "fail"]))
def test_no_row_is_ever_lost(rows, ragged, mode):
    tmp = Path(tempfile.mkdtemp())
    try:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["id", "x", "s"])
        writer.writerows(rows)
        text = buf.getvalue()
        if ragged:
            text += "1,2\n"  # a short row: rejected (or the whole file refused), never silently padded
        path = tmp / "messy.csv"
        path.write_text(text, encoding="utf-8")
        with Workspace.open(tmp / "ws") as ws:
            try:
                result = ingest(ws, [str(path)], "m", contract=CONTRACT, options=SourceOptions(on_malformed=mode))
            except MlopsError as exc:
                assert ragged and mode == "fail", f"valid CSV refused: {exc}"
                assert "messy.csv: line" in str(exc)
                assert catalog.list_datasets(ws.db) == []
                return
            assert not ragged or mode == "reject", "a short row was accepted"
            assert result.rows_in == result.rows_stored + result.rows_rejected == len(rows) + ragged
            assert result.rows_rejected == sum(expected_bad(r) for r in rows) + ragged
            stored = lake.open_dataset(ws, "m")
            assert stored.height == result.rows_stored
            files = lake.reject_files(ws, catalog.resolve(ws.db, "m"))
            rejected = pl.concat([pl.read_parquet(f) for f in files]) if files else None
            if rejected is not None:
                assert rejected.height == result.rows_rejected
                assert rejected["_reason"].null_count() == 0
                # every stored or rejected text value comes back unchanged (s is kept as text)
                got = sorted((stored["s"].fill_null("").to_list()) + rejected["s"].fill_null("").to_list())
            else:
                got = sorted(stored["s"].fill_null("").to_list())
            if ragged:  # the short row is rejected with its raw text and why
                short = rejected.filter(pl.col("_raw_line") == "1,2")
                assert short["_reason"].to_list() == ["2 fields, the header has 3"]
                got.remove("")
            assert got == sorted(r[2] for r in rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
