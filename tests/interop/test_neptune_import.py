"""Neptune Exporter Parquet import: every field kind, forks, decimal steps, idempotence, and bad exports refused whole."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.interop.neptune_import import import_neptune, neptune_run_uuid
from mlops_desktop.progress import Progress
from tests.interop.neptune_data import (
    T0,
    folder_name,
    param,
    point,
    put_file,
    sys_rows,
    table,
    write_run,
)

PROJECT = "acme/vision"
OTHER = "acme/nlp"
LONG_PATH = "deep/" + "/".join(f"namespace{i:03d}" for i in range(90)) + "/loss"  # > 1000 characters


def ts(seconds: float):
    return T0 + timedelta(seconds=seconds)


def build_export(root):
    """Three runs in two projects: all attribute kinds, a fork with decimal steps, a run split in three parts."""
    data, files = root / "data", root / "files"
    rows = sys_rows(PROJECT, "VIS-1", name="baseline", tags=["baseline", "resnet"])
    rows += [param(PROJECT, "VIS-1", "config/lr", "float", 0.001),
             param(PROJECT, "VIS-1", "config/epochs", "int", 12),
             param(PROJECT, "VIS-1", "config/arch", "string", "resnet50"),
             param(PROJECT, "VIS-1", "config/pretrained", "bool", True),
             param(PROJECT, "VIS-1", "config/started", "datetime", ts(5)),
             param(PROJECT, "VIS-1", "config/augment", "string_set", ["flip", "crop"]),
             param(PROJECT, "VIS-1", "config/huge_note", "string", "x" * 9000),
             param(PROJECT, "VIS-1", "config/inf_bound", "float", math.inf)]
    rows += [point(PROJECT, "VIS-1", "train/loss", "float_series", s, ts(s), float_value=1.0 / (s + 1))
             for s in range(10)]
    rows += [point(PROJECT, "VIS-1", "train/odd", "float_series", 0, ts(0), float_value=math.nan),
             point(PROJECT, "VIS-1", "train/odd", "float_series", 1, ts(1), float_value=math.inf),
             point(PROJECT, "VIS-1", "train/odd", "float_series", 2, ts(2), float_value=-math.inf),
             point(PROJECT, "VIS-1", "train/odd", "float_series", 3, ts(3), float_value=None)]
    rows += [point(PROJECT, "VIS-1", LONG_PATH, "float_series", s, ts(s), float_value=float(s)) for s in range(3)]
    rows += [point(PROJECT, "VIS-1", "monitoring/stdout", "string_series", s, ts(s),
                   string_value=f"epoch {s}, loss=\"{s}\"\ttab") for s in range(3)]
    rows.append(point(PROJECT, "VIS-1", "eval/hist", "histogram_series", 1, ts(1),
                      histogram_value={"type": "COUNTING", "edges": [0.0, 0.5, 1.0], "values": [3.0, 4.0]}))
    weights = put_file(files, PROJECT, "VIS-1/model/weights.bin", b"\x00weights\xff")
    rows.append({**param(PROJECT, "VIS-1", "model/weights", "string", None), "attribute_type": "file",
                 "file_value": {"path": weights}})
    for s in (0, 1):
        rel = put_file(files, PROJECT, f"VIS-1/preview/{s}.png", f"png{s}".encode())
        rows.append(point(PROJECT, "VIS-1", "preview", "file_series", s, ts(s), file_value={"path": rel}))
    put_file(files, PROJECT, "VIS-1/source/src/a.py", b"print(1)\n")
    put_file(files, PROJECT, "VIS-1/source/src/sub/b.py", b"print(2)\n")
    rows.append({**param(PROJECT, "VIS-1", "source_code/files", "string", None), "attribute_type": "file_set",
                 "file_value": {"path": "VIS-1/source/src"}})
    rows.append({**param(PROJECT, "VIS-1", "source_code/git", "string", None), "attribute_type": "git_ref"})
    write_run(data, PROJECT, "VIS-1", [table(rows)])

    # a fork of VIS-1 with decimal steps (0.5, 1.25, ...)
    fork = sys_rows(PROJECT, "VIS-2", name="finetune", parent="VIS-1", fork_step=4.0, failed=True,
                    created=ts(100))
    fork += [point(PROJECT, "VIS-2", "train/loss", "float_series", 4 + k * 0.25, ts(100 + k), float_value=0.1 * k)
             for k in range(8)]
    write_run(data, PROJECT, "VIS-2", [table(fork)])

    # another project, its run exported in three parts (parameters first, then series)
    parts = [table(sys_rows(OTHER, "NLP-7", name="bert") + [param(OTHER, "NLP-7", "config/lr", "float", 3e-5)]),
             table([point(OTHER, "NLP-7", "loss", "float_series", s, ts(s), float_value=float(s)) for s in range(5)]),
             table([point(OTHER, "NLP-7", "loss", "float_series", s, ts(s), float_value=float(s))
                    for s in range(5, 9)])]
    write_run(data, OTHER, "NLP-7", parts)
    return root


@pytest.fixture
def export(tmp_path):
    return build_export(tmp_path / "export")


def counts(store):
    return {t: store.db.query(f"SELECT count(*) FROM {t}")[0][0]  # noqa: S608 - fixed table names
            for t in ("experiments", "runs", "params", "tags", "metric_chunks", "artifacts")}


def test_round_trip_of_every_field_kind(ws, export):
    store = ws.tracking
    stats = import_neptune(store, export)
    assert (stats.projects, stats.runs, stats.runs_skipped, stats.forks) == (2, 3, 0, 1)
    assert stats.metric_points == 10 + 4 + 3 + 8 + 9
    assert {e.name for e in store.list_experiments()} == {PROJECT, OTHER}

    run = store.get_run(neptune_run_uuid(PROJECT, "VIS-1"))
    assert run.name == "baseline" and run.status == "finished" and run.user == "ana"
    assert run.start_time == pytest.approx(T0.timestamp())
    assert run.end_time == pytest.approx(T0.replace(hour=13).timestamp())
    assert run.params["config/lr"] == "0.001" and run.params["config/epochs"] == "12"
    assert run.params["config/arch"] == "resnet50" and run.params["config/pretrained"] == "true"
    assert run.params["config/started"] == "2025-03-01T12:00:05Z"
    assert json.loads(run.params["config/augment"]) == ["crop", "flip"]
    assert run.params["config/inf_bound"] == "inf"
    assert "config/huge_note" not in run.params  # longer than a param may be: kept as an artifact instead
    types = json.loads(run.tags["neptune.config_types"])
    assert types["config/epochs"] == "int" and types["config/pretrained"] == "bool"
    assert run.tags["baseline"] == "" and run.tags["resnet"] == ""
    assert run.tags["neptune.run_id"] == "VIS-1" and run.tags["neptune.custom_run_id"] == "custom-VIS-1"
    assert run.tags["neptune.sys/running_time"] == "3600.5"
    # the project's fork logs decimal steps: every run of the project shares its scale (one x axis to compare on)
    assert run.tags["neptune.step_scale"] == "100"
    assert any("git_ref" in w for w in stats.warnings)

    loss = store.metric_history(run.uuid, "train/loss")
    assert loss.steps.tolist() == [s * 100 for s in range(10)]
    assert loss.values.tolist() == [1.0 / (s + 1) for s in range(10)]
    assert loss.timestamps_ms.tolist() == [int(ts(s).timestamp() * 1000) for s in range(10)]
    odd = store.metric_history(run.uuid, "train/odd").values
    assert math.isnan(odd[0]) and odd[1] == math.inf and odd[2] == -math.inf and math.isnan(odd[3])
    assert store.metric_history(run.uuid, LONG_PATH).values.tolist() == [0.0, 1.0, 2.0]

    arts = {a.path: a for a in store.list_artifacts(run.uuid)}
    assert store.artifact_file(run.uuid, "model/weights/weights.bin").read_bytes() == b"\x00weights\xff"
    assert store.artifact_file(run.uuid, "preview/step_1/1.png").read_bytes() == b"png1"
    assert "source_code/files/src/sub/b.py" in arts
    assert store.artifact_file(run.uuid, "neptune/params/config/huge_note.txt").read_text() == "x" * 9000
    lines = list(csv.reader(io.StringIO(store.artifact_file(run.uuid, "monitoring/stdout.csv").read_text())))
    assert lines[0] == ["step", "timestamp", "value"]
    assert lines[2] == ["1", "2025-03-01T12:00:01Z", "epoch 1, loss=\"1\"\ttab"]
    hist = json.loads(store.artifact_file(run.uuid, "eval/hist.histograms.ndjson").read_text())
    assert hist["edges"] == [0.0, 0.5, 1.0] and hist["values"] == [3.0, 4.0] and hist["step"] == "1"

    fork = store.get_run(neptune_run_uuid(PROJECT, "VIS-2"))
    assert fork.parent_uuid == run.uuid and fork.status == "failed"
    assert fork.tags["neptune.fork_step"] == "4.0"
    # decimal steps: one scale for the project, exact, written on the run
    assert fork.tags["neptune.step_scale"] == "100"
    steps = store.metric_history(fork.uuid, "train/loss").steps
    assert (steps / 100).tolist() == [4 + k * 0.25 for k in range(8)]
    nlp = store.get_run(neptune_run_uuid(OTHER, "NLP-7"))
    assert store.metric_history(nlp.uuid, "loss").steps.tolist() == list(range(9))
    assert "neptune.step_scale" not in nlp.tags  # integer steps stay as they are


def test_importing_again_adds_nothing(ws, export):
    store = ws.tracking
    import_neptune(store, export)
    before = counts(store)
    again = import_neptune(store, export)
    assert (again.runs, again.runs_skipped, again.metric_points) == (0, 3, 0)
    assert counts(store) == before


def test_data_folder_and_files_option(ws, export):
    stats = import_neptune(ws.tracking, export / "data", files_path=export / "files")
    assert stats.runs == 3 and stats.artifacts >= 5


def test_unfinished_run_refuses_the_whole_export(ws, export):
    folder = export / "data" / folder_name(OTHER)
    part = folder / f"{folder_name('NLP-7')}_part_2.parquet"
    part.rename(part.with_name(part.name + ".tmp"))
    with pytest.raises(UsageError) as err:
        import_neptune(ws.tracking, export)
    assert "did not finish" in str(err.value) and part.name in str(err.value)
    assert counts(ws.tracking)["runs"] == 0 and counts(ws.tracking)["experiments"] == 0
    stats = import_neptune(ws.tracking, export, skip_incomplete=True)
    assert stats.runs == 2 and stats.runs_incomplete == 1


def test_missing_part_zero_and_gap_are_named(ws, export):
    folder = export / "data" / folder_name(OTHER)
    (folder / f"{folder_name('NLP-7')}_part_1.parquet").unlink()
    with pytest.raises(UsageError, match=r"_part_1\.parquet is missing"):
        import_neptune(ws.tracking, export)
    (folder / f"{folder_name('NLP-7')}_part_0.parquet").unlink()
    with pytest.raises(UsageError, match=r"_part_0\.parquet is missing: the exporter writes part_0 last"):
        import_neptune(ws.tracking, export)
    assert counts(ws.tracking)["runs"] == 0


def test_damaged_file_is_named_and_nothing_imported(ws, export):
    part = export / "data" / folder_name(OTHER) / f"{folder_name('NLP-7')}_part_1.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    with pytest.raises(UsageError) as err:
        import_neptune(ws.tracking, export)
    assert str(part) in str(err.value) and "not a readable Parquet file" in str(err.value)
    assert counts(ws.tracking)["runs"] == 0


def test_wrong_schema_and_bad_rows_are_named(ws, export):
    part = export / "data" / folder_name(OTHER) / f"{folder_name('NLP-7')}_part_1.parquet"
    pq.write_table(pq.read_table(part).drop_columns(["attribute_type"]), part)
    with pytest.raises(UsageError, match="has no column attribute_type"):
        import_neptune(ws.tracking, export)
    rows = [point(OTHER, "NLP-7", "loss", "float_series", 1, ts(1), float_value=1.0)]
    bad = table(rows).to_pylist()
    bad[0]["step"] = None
    pq.write_table(table(bad), part)
    with pytest.raises(UsageError, match=r"part_1\.parquet, row 1: a point of float_series 'loss' has no step"):
        import_neptune(ws.tracking, export)
    pq.write_table(table([param(OTHER, "NLP-7", "config/lr", "float", 0.5)]), part)
    with pytest.raises(UsageError, match=r"'config/lr' is 0.5 here but 3e-05 in"):
        import_neptune(ws.tracking, export)
    assert counts(ws.tracking)["runs"] == 0


def test_missing_files_refused_unless_allowed(ws, export):
    (export / "files" / folder_name(PROJECT) / "VIS-1" / "model" / "weights.bin").unlink()
    with pytest.raises(UsageError, match=r"1 file\(s\) the export refers to are not in (.|\n)*VIS-1/model/weights.bin"):
        import_neptune(ws.tracking, export)
    assert counts(ws.tracking)["runs"] == 0
    stats = import_neptune(ws.tracking, export, allow_missing_files=True)
    assert stats.runs == 3 and any("weights.bin" in w for w in stats.warnings)


def test_cancel_while_writing_leaves_nothing(ws, export):
    seen = []

    def report(fraction, message):
        seen.append(message)
        if message.startswith("run 3 of"):
            progress.cancel()

    progress = Progress(report, min_step=0.0)
    with pytest.raises(Cancelled):
        import_neptune(ws.tracking, export, progress=progress)
    assert counts(ws.tracking) == {k: 0 for k in counts(ws.tracking)}
    assert import_neptune(ws.tracking, export).runs == 3


def test_fork_of_a_run_outside_the_export_is_imported_without_parent(ws, tmp_path):
    data = tmp_path / "exp" / "data"
    write_run(data, PROJECT, "VIS-9", [table(sys_rows(PROJECT, "VIS-9", parent="VIS-0", fork_step=2.5))])
    stats = import_neptune(ws.tracking, tmp_path / "exp")
    assert stats.runs == 1 and stats.forks == 0
    assert any("forked from VIS-0" in w for w in stats.warnings)
    assert ws.tracking.get_run(neptune_run_uuid(PROJECT, "VIS-9")).parent_uuid is None


def test_not_an_export(ws, tmp_path):
    with pytest.raises(UsageError, match="no Neptune export at"):
        import_neptune(ws.tracking, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no Parquet files under"):
        import_neptune(ws.tracking, tmp_path / "empty")


def test_huge_series_with_decimal_steps_round_trips_exactly(ws, tmp_path):
    from tests.interop.neptune_data import float_series

    n = 1_000_000
    unscaled = np.arange(n, dtype=np.int64) * 1_250_000 - 5_000_000  # steps -5, -3.75, ..., exact decimals
    values = np.sin(np.arange(n) / 1000.0)
    values[::99_991] = np.nan
    ts_ms = int(T0.timestamp() * 1000) + np.arange(n, dtype=np.int64)
    data = tmp_path / "big" / "data"
    write_run(data, PROJECT, "BIG-1", [table(sys_rows(PROJECT, "BIG-1")),
                                       float_series(PROJECT, "BIG-1", "loss", unscaled, values, ts_ms)])
    stats = import_neptune(ws.tracking, tmp_path / "big")
    assert stats.metric_points == n
    run = ws.tracking.get_run(neptune_run_uuid(PROJECT, "BIG-1"))
    assert run.tags["neptune.step_scale"] == "100"
    hist = ws.tracking.metric_history(run.uuid, "loss")
    assert np.array_equal(hist.steps, unscaled // 10_000)
    assert np.array_equal(hist.timestamps_ms, ts_ms)
    assert np.array_equal(hist.values, values, equal_nan=True)


def test_cli_import_neptune(tmp_path, export, capsys):
    from mlops_desktop.cli.main import main

    home = str(tmp_path / "cli-ws")
    assert main(["import", "neptune", str(export), "--json", "--home", home]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["runs"] == 3 and stats["forks"] == 1
    assert main(["import", "neptune", str(export), "--home", home]) == 0
    assert "runs already present" in capsys.readouterr().out
    assert main(["import", "neptune", str(tmp_path / "missing"), "--home", home]) == 2
    err = capsys.readouterr().err
    assert "no Neptune export at" in err and "Traceback" not in err
    with pytest.raises(SystemExit):  # the MLflow source still lives in the same `import` group
        main(["import", "mlflow", "--help"])
    assert "--tracking-uri" in capsys.readouterr().out
