"""Segment formats: a server without pyarrow (a model image) writes column lines, and the desktop turns them into
the very Parquet table a server with pyarrow writes, for the prediction log and the router's comparison log; a
damaged or foreign segment is refused, nothing half-written is kept."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from serving_factories import classifier_signature, mixed_signature

from mlops_desktop.serving import segfmt
from mlops_desktop.serving.config import LogConfig
from mlops_desktop.serving.payloads import RequestSchema, parse_mlflow
from mlops_desktop.serving.predlog import PredictionLog, list_segments
from mlops_desktop.serving.router_shadow import Comparison, ComparisonLog

ROOT = Path(__file__).resolve().parents[2]


def _write(directory: Path, signature, requests_, *, columns: bool, monkeypatch, classes=()) -> list:
    """Offer the same requests to a log writing Parquet or column lines; the closed segments."""
    monkeypatch.setattr(segfmt, "segment_suffix", lambda: segfmt.COLUMNS if columns else segfmt.PARQUET)
    log = PredictionLog(LogConfig(directory=directory, flush_interval_s=0.05, segment_max_rows=10_000), signature,
                        "churn", "7", classes=classes)
    schema = RequestSchema(signature)
    for i, (body, outputs, arm, shadow) in enumerate(requests_):
        parsed = parse_mlflow(body, "application/json", schema)
        assert log.offer(f"r{i}", 1_700_000_000.0 + i / 10, 0.002 + i / 1e4, parsed, outputs, arm=arm, shadow=shadow)
        if i == len(requests_) // 2:
            assert log.flush(10)  # two segments, and several batches in each
    log.close(10)
    return log.segments()


def _table(seg) -> pa.Table:
    if seg.path.name.endswith(segfmt.PARQUET):
        return pq.read_table(seg.path)
    return segfmt.columns_to_arrow(seg.path.read_bytes())


def _mixed_requests() -> list:
    out = []
    for i in range(40):
        n = 1 + i % 3
        rows = [{"age": i, "income": None if i % 7 == 0 else i / 3, "city": f"c{i % 4}",
                 "member": i % 2 == 0} for _ in range(n)]
        body = json.dumps({"dataframe_records": rows}).encode()
        outputs = {"prediction": np.full(n, i * 1.5)}
        out.append((body, outputs, "b" if i % 5 == 0 else None, i % 9 == 0))
    return out


def test_column_lines_become_the_table_parquet_holds(tmp_path, monkeypatch):
    reqs = _mixed_requests()
    arrow = _write(tmp_path / "arrow", mixed_signature(), reqs, columns=False, monkeypatch=monkeypatch)
    lines = _write(tmp_path / "lines", mixed_signature(), reqs, columns=True, monkeypatch=monkeypatch)
    assert [s.path.name for s in lines] == ["0000000001.jsonl.gz", "0000000002.jsonl.gz"]
    assert [s.rows for s in lines] == [s.rows for s in arrow] and sum(s.rows for s in lines) == sum(1 + i % 3 for i in range(40))
    for a, b in zip(arrow, lines, strict=True):
        ta, tb = _table(a), _table(b)
        assert tb.schema == ta.schema
        assert tb.equals(ta)
    # the nulls survived (null incomes, the absent arm) and the types held
    whole = pa.concat_tables([_table(s) for s in lines]).to_pylist()
    assert sum(r["income"] is None for r in whole) == sum(1 + i % 3 for i in range(40) if i % 7 == 0)
    assert {type(r["age"]) for r in whole} == {int} and {type(r["member"]) for r in whole} == {bool}
    assert {r["arm"] for r in whole} == {None, "b"} and sum(r["shadow"] for r in whole) == sum(1 + i % 3 for i in range(40) if i % 9 == 0)


def test_all_float_matrix_and_class_probabilities(tmp_path, monkeypatch):
    sig = classifier_signature(4)
    reqs = []
    for i in range(30):
        n = 1 + i % 2
        data = [[i, 0.5, None if i == 3 else 1.0, -i] for _ in range(n)]
        body = json.dumps({"dataframe_split": {"columns": ["x0", "x1", "x2", "x3"], "data": data}})
        proba = np.tile(np.array([[0.2, 0.3, 0.5]]), (n, 1))
        reqs.append((body.encode(), {"prediction": np.full(n, i % 3), "probabilities": proba}, None, False))
    arrow = _write(tmp_path / "arrow", sig, reqs, columns=False, monkeypatch=monkeypatch, classes=(0, 1, 2))
    lines = _write(tmp_path / "lines", sig, reqs, columns=True, monkeypatch=monkeypatch, classes=(0, 1, 2))
    for a, b in zip(arrow, lines, strict=True):
        ta, tb = _table(a), _table(b)
        assert tb.schema == ta.schema and tb.equals(ta)
        assert {"proba_0", "proba_1", "proba_2"} <= set(tb.column_names)


def test_the_routers_comparison_log_in_both_formats(tmp_path, monkeypatch):
    tables = []
    for columns in (False, True):
        monkeypatch.setattr(segfmt, "segment_suffix", lambda c=columns: segfmt.COLUMNS if c else segfmt.PARQUET)
        log = ComparisonLog(tmp_path / str(columns))
        for i in range(12):
            log.offer_comparison(Comparison(f"r{i}", 1_700_000_000.0 + i, "a", "b", 200, 500 if i == 3 else 200,
                                            1.5, None if i == 3 else 2.5, 3, 2 if i == 4 else 3, i != 4, "boom" if i == 3 else None))
        log.close(10)
        (seg,) = log.segments()
        tables.append(_table(seg))
    assert tables[1].schema == tables[0].schema and tables[1].equals(tables[0])


def test_a_pulled_segment_is_stored_as_parquet_and_garbage_is_refused(tmp_path, monkeypatch):
    (seg,) = _write(tmp_path / "lines", mixed_signature(), _mixed_requests()[:6], columns=True,
                    monkeypatch=monkeypatch)[:1]
    target = tmp_path / "cache" / "0000000001.parquet"
    target.parent.mkdir()
    segfmt.save_pulled(seg.path.read_bytes(), target)
    assert pq.read_table(target).num_rows == seg.rows
    parquet_bytes = target.read_bytes()
    segfmt.save_pulled(parquet_bytes, tmp_path / "cache" / "0000000002.parquet")  # Parquet is kept as it is
    assert (tmp_path / "cache" / "0000000002.parquet").read_bytes() == parquet_bytes
    bad = [b"<html>502</html>", gzip.compress(b'{"format": "something else"}\n'),
           seg.path.read_bytes()[:-20]]  # cut off mid-stream (a dropped connection)
    for i, data in enumerate(bad):
        with pytest.raises(ValueError):
            segfmt.save_pulled(data, tmp_path / "cache" / f"bad{i}.parquet")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["0000000001.parquet", "0000000002.parquet"]


def test_rows_of_a_column_lines_segment_are_counted_after_a_restart(tmp_path, monkeypatch):
    segs = _write(tmp_path, mixed_signature(), _mixed_requests()[:10], columns=True, monkeypatch=monkeypatch)
    segfmt._ROWS.clear()  # a new process: nothing remembered
    assert [s.rows for s in list_segments(tmp_path)] == [s.rows for s in segs]
    (tmp_path / "0000000009.jsonl.gz").write_bytes(b"not gzip")  # a foreign file is skipped, not fatal
    assert len(list_segments(tmp_path)) == len(segs)


def test_a_server_without_pyarrow_logs_column_lines(tmp_path):
    """The model image's situation: pyarrow cannot be imported; the log still writes, lists and serves segments."""
    code = f"""
import sys
sys.modules["pyarrow"] = None  # as if not installed: importing it fails, find_spec finds nothing
sys.path.insert(0, {str(ROOT / 'tests' / 'serving')!r})
import numpy as np
from pathlib import Path
from serving_factories import mixed_signature
from mlops_desktop.serving import segfmt
from mlops_desktop.serving.config import LogConfig
from mlops_desktop.serving.payloads import RequestSchema, parse_mlflow
from mlops_desktop.serving.predlog import PredictionLog
sig = mixed_signature()
log = PredictionLog(LogConfig(directory=Path({str(tmp_path)!r}), flush_interval_s=0.05), sig, "m", "1")
p = parse_mlflow(b'{{"dataframe_records": [{{"age": 3, "income": 1.5, "city": "x", "member": true}}]}}',
                 "application/json", RequestSchema(sig))
for i in range(5):
    log.offer(f"r{{i}}", 1.7e9, 0.001, p, {{"prediction": np.array([2.0])}})
log.close(10)
print([(s.path.name, s.rows) for s in log.segments()], sys.modules["pyarrow"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[('0000000001.jsonl.gz', 5)] None"
    table = segfmt.columns_to_arrow((tmp_path / "0000000001.jsonl.gz").read_bytes())
    assert table.column("city").to_pylist() == ["x"] * 5 and table.schema.field("ts").type == pa.timestamp("us", "UTC")


def _float_bodies(i: int) -> list[bytes]:
    """The same row as a float matrix (dataframe_split) and as named columns (inputs): the two kinds of record."""
    row = [i, i / 2, -i, 0.25]
    return [json.dumps({"dataframe_split": {"columns": ["x0", "x1", "x2", "x3"], "data": [row]}}).encode(),
            json.dumps({"inputs": {f"x{j}": [v] for j, v in enumerate(row)}}).encode()]


def test_queued_requests_add_nothing_for_the_garbage_collector(tmp_path):
    """Requests wait in the queue for seconds; if each were a tracked object, every collection on the request path
    would walk them all (it cost ~1/4 of the log's overhead). After one collection none of them is tracked."""
    import gc

    sig = classifier_signature(4)
    schema = RequestSchema(sig)
    log = PredictionLog(LogConfig(directory=tmp_path, flush_interval_s=3600), sig, "churn", "7", classes=(0, 1, 2))
    parsed = [parse_mlflow(body, "application/json", schema) for i in range(2000) for body in _float_bodies(i)]
    outputs = [{"prediction": np.array([i % 3]), "probabilities": np.array([[0.2, 0.3, 0.5]])}
               for i in range(len(parsed))]
    gc.collect()
    before = len(gc.get_objects())
    for i, (p, out) in enumerate(zip(parsed, outputs, strict=True)):
        assert log.offer(f"r{i}", 1_700_000_000.0 + i, 0.002, p, out)
    del parsed, outputs, p, out
    gc.collect()
    assert log.queued_rows == 4000
    assert len(gc.get_objects()) - before < 100  # a dataclass per request: +4,000 (+4,000 more for the requests)
    log.close(30)
    table = pa.concat_tables([pq.read_table(s.path) for s in log.segments()]).sort_by("ts")
    assert table.num_rows == 4000
    assert table["request_id"].to_pylist()[:3] == ["r0", "r1", "r2"]
    # matrix and column records in one batch, each row where it belongs
    assert table["x1"].to_pylist()[:4] == [0.0, 0.0, 0.5, 0.5] and table["x2"].to_pylist()[2:4] == [-1.0, -1.0]
    assert table["prediction"].to_pylist()[:4] == [0, 1, 2, 0]
    assert table["proba_2"].to_pylist()[:2] == [0.5, 0.5]


def test_a_wake_writes_one_row_group_for_all_that_waited(tmp_path):
    """Each wake of the writer is one Parquet row group: thousands of queued requests become one group, not many
    small ones (a group of ~2k rows costs twice the CPU per row of ~10k)."""
    sig = classifier_signature(4)
    schema = RequestSchema(sig)
    log = PredictionLog(LogConfig(directory=tmp_path, flush_interval_s=3600), sig, "churn", "7", classes=(0, 1, 2))
    for i in range(5000):
        parsed = parse_mlflow(_float_bodies(i)[0], "application/json", schema)
        assert log.offer(f"r{i}", 1_700_000_000.0 + i, 0.002, parsed, {"prediction": np.array([1])})
    assert log.flush(30)
    (seg,) = log.segments()
    meta = pq.ParquetFile(seg.path).metadata
    assert meta.num_rows == 5000 and meta.num_row_groups == 1
    log.close(10)


def test_a_wake_converted_in_pieces_is_still_one_group_in_order(tmp_path):
    """More requests than one conversion piece (PIECE_REQUESTS, so the event loop gets the GIL between pieces):
    the pieces join into one row group, in arrival order, and a column that appears only in a later piece (the
    arm, a multi-row request) is kept, not cast away."""
    from mlops_desktop.serving.predlog import PIECE_REQUESTS

    sig = classifier_signature(4)
    schema = RequestSchema(sig)
    log = PredictionLog(LogConfig(directory=tmp_path, flush_interval_s=3600), sig, "churn", "7", classes=(0, 1, 2))
    n = PIECE_REQUESTS + 10
    for i in range(n):
        parsed = parse_mlflow(_float_bodies(i)[0], "application/json", schema)
        assert log.offer(f"r{i}", 1_700_000_000.0 + i, 0.002, parsed, {"prediction": np.array([i % 3])})
    body = json.dumps({"dataframe_split": {"columns": ["x0", "x1", "x2", "x3"], "data": [[1, 2, 3, 4]] * 3}})
    three = parse_mlflow(body.encode(), "application/json", schema)
    assert log.offer("last", 1_700_100_000.0, 0.002, three, {"prediction": np.array([2, 1, 0])}, arm="b")
    log.close(30)
    (seg,) = log.segments()
    meta = pq.ParquetFile(seg.path).metadata
    assert meta.num_rows == n + 3 and meta.num_row_groups == 1
    table = pq.read_table(seg.path)
    assert table["request_id"].to_pylist()[PIECE_REQUESTS - 1:PIECE_REQUESTS + 1] == [
        f"r{PIECE_REQUESTS - 1}", f"r{PIECE_REQUESTS}"]
    assert table["arm"].to_pylist()[-4:] == [None, "b", "b", "b"]
    assert table["row"].to_pylist()[-4:] == [0, 0, 1, 2]
    assert table["prediction"].to_pylist()[-3:] == [2, 1, 0]
