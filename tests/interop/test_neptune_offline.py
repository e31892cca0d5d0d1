"""The Neptune client's offline folders (`.neptune/offline/`), as the real client 1.14 wrote them (fixtures/)."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import pytest

from mlops_desktop.errors import Cancelled, UsageError
from mlops_desktop.interop.neptune_import import import_neptune, neptune_run_uuid
from mlops_desktop.progress import Progress

FIXTURE = Path(__file__).parent / "fixtures" / "neptune_offline"
DEMO = "31dc3ce0-b8c3-4d92-a221-f56c60b6d389"  # "offline-demo": every field kind
SECOND = "9edaf0c0-eccc-4797-8524-b2005a199715"  # "second": a failed run with steps Neptune numbers itself
RECORDED_FILE = "/tmp/neptune-fixture/model.txt"  # where the client recorded the uploaded file


@pytest.fixture
def project(tmp_path):
    """A copy of the fixture whose uploaded file sits where the run's log now says it is."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE / ".neptune", root / ".neptune")
    model = tmp_path / "files" / "model.txt"
    model.parent.mkdir()
    model.write_text("weights")
    for log in root.glob(".neptune/offline/*/data-*.log"):
        log.write_text(log.read_text().replace(RECORDED_FILE, str(model)))
    return root


def counts(store):
    return {t: store.db.query(f"SELECT count(*) FROM {t}")[0][0]  # noqa: S608 - fixed table names
            for t in ("experiments", "runs", "params", "tags", "metric_chunks", "artifacts")}


def test_offline_folder_round_trip(ws, project):
    store = ws.tracking
    stats = import_neptune(store, project)
    assert (stats.runs, stats.runs_skipped) == (2, 0)
    assert stats.metric_points == 5 + 2 + 2000 + 3
    assert [e.name for e in store.list_experiments() if e.name.startswith("neptune")] == ["neptune-offline"]

    run = store.get_run(neptune_run_uuid("offline", DEMO))
    assert run.name == "offline-demo" and run.status == "finished" and run.notes == "an offline run"
    assert run.params["parameters/lr"] == "0.01" and run.params["parameters/epochs"] == "3"
    assert run.params["parameters/optimizer"] == "adam" and run.params["parameters/flag"] == "true"
    assert run.params["parameters/nested/depth"] == "2"
    assert run.params["parameters/started"] == "2026-05-01T12:30:00Z"
    assert run.params["a/" + "very_long_" * 20 + "path"] == "1"
    types = json.loads(run.tags["neptune.config_types"])
    assert types["parameters/epochs"] == "int" and types["parameters/started"] == "datetime"
    # tags as the log leaves them: "gone" was added, then removed
    assert {"baseline", "cpu", "extra"} <= set(run.tags) and "gone" not in run.tags
    assert run.tags["neptune.run_id"] == DEMO and run.tags["neptune.mode"] == "offline"

    # decimal steps (0, 0.5, 1 ...) kept exactly on the run's scale; steps the client left empty numbered 0, 1, ...
    assert run.tags["neptune.step_scale"] == "10"
    loss = store.metric_history(run.uuid, "train/loss")
    assert loss.steps.tolist() == [0, 5, 10, 15, 20]
    assert loss.values.tolist() == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert store.metric_history(run.uuid, "train/acc").steps.tolist() == [0, 10]
    big = store.metric_history(run.uuid, "train/big")
    assert big.steps.tolist() == [s * 10 for s in range(2000)]
    assert big.values[100] == pytest.approx(math.sin(1.0))
    assert "train/scratch" not in run.metrics  # deleted in the log: gone here too

    rows = list(csv.reader(io.StringIO(store.artifact_file(run.uuid, "logs/text.csv").read_text())))
    assert rows[0] == ["step", "timestamp", "value"] and [r[2] for r in rows[1:]] == ["epoch 1 done",
                                                                                       "epoch 2 done"]
    assert store.artifact_file(run.uuid, "artifacts/model/model.txt").read_text() == "weights"
    assert store.artifact_file(run.uuid, "artifacts/report/report.md").read_text() == "report body"

    second = store.get_run(neptune_run_uuid("offline", SECOND))
    assert second.status == "failed" and second.tags["sweep"] == ""
    assert store.metric_history(second.uuid, "train/loss").steps.tolist() == [0, 1, 2]
    assert "neptune.step_scale" not in second.tags


def test_offline_import_again_adds_nothing(ws, project):
    store = ws.tracking
    import_neptune(store, project / ".neptune")
    before = counts(store)
    again = import_neptune(store, project / ".neptune" / "offline")
    assert (again.runs, again.runs_skipped, again.metric_points) == (0, 2, 0)
    assert counts(store) == before


def test_one_run_folder_and_project_option(ws, project):
    folder = next((project / ".neptune" / "offline").glob(f"run__{SECOND}__*"))
    stats = import_neptune(ws.tracking, folder, projects=["team-proj"])
    assert stats.runs == 1
    assert ws.tracking.get_run(neptune_run_uuid("offline", SECOND)).experiment_id == \
        ws.tracking.get_experiment_by_name("team-proj").id


def test_moved_file_is_refused_unless_found_or_allowed(ws, tmp_path):
    root = tmp_path / "as-recorded"
    shutil.copytree(FIXTURE / ".neptune", root / ".neptune")
    before = counts(ws.tracking)
    with pytest.raises(UsageError, match=r"no longer where the run recorded them.*artifacts/model"):
        import_neptune(ws.tracking, root)
    assert counts(ws.tracking) == before
    found = tmp_path / "moved"
    found.mkdir()
    (found / "model.txt").write_text("weights, moved")
    import_neptune(ws.tracking, root, files_path=found)
    run_uuid = neptune_run_uuid("offline", DEMO)
    assert ws.tracking.artifact_file(run_uuid, "artifacts/model/model.txt").read_text() == "weights, moved"


def test_missing_file_allowed_is_a_warning(ws, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(FIXTURE / ".neptune", root / ".neptune")
    stats = import_neptune(ws.tracking, root, allow_missing_files=True)
    assert stats.runs == 2
    assert any("uploaded file gone" in w and "artifacts/model" in w for w in stats.warnings)


def test_cut_off_last_line_loses_one_operation(ws, project):
    log = next(project.glob(f".neptune/offline/run__{SECOND}__*/data-1.log"))
    text = log.read_text()
    log.write_text(text + '{"obj": {"type": "LogFloats", "path": ["train", "loss"], "val')  # killed mid-write
    stats = import_neptune(ws.tracking, project)
    assert stats.runs == 2 and any("line 10 is cut off" in w for w in stats.warnings)


def test_damaged_line_is_named_and_nothing_imported(ws, project):
    log = next(project.glob(f".neptune/offline/run__{DEMO}__*/data-1.log"))
    lines = log.read_text().splitlines()
    lines[6] = "{not json"
    log.write_text("\n".join(lines) + "\n")
    before = counts(ws.tracking)
    with pytest.raises(UsageError, match=r"data-1.log: line 7 is not a Neptune operation"):
        import_neptune(ws.tracking, project)
    assert counts(ws.tracking) == before


def test_bad_metadata_and_empty_folder(ws, project, tmp_path):
    meta = next(project.glob(f".neptune/offline/run__{SECOND}__*/metadata.json"))
    meta.write_text("[1, 2")
    with pytest.raises(UsageError, match=r"metadata.json: not readable as Neptune's run metadata"):
        import_neptune(ws.tracking, project)
    meta.unlink()
    with pytest.raises(UsageError, match=r"metadata.json: missing; this is not a Neptune run folder"):
        import_neptune(ws.tracking, meta.parent)
    empty = tmp_path / "empty" / ".neptune" / "offline"
    empty.mkdir(parents=True)
    with pytest.raises(UsageError, match=r"no Neptune offline or async run folders"):
        import_neptune(ws.tracking, empty.parent.parent)


def test_cancel_leaves_nothing(ws, project):
    before = counts(ws.tracking)
    seen = []

    def cancel_on_write(fraction, message):
        seen.append(message)
        if message.startswith("run 2 of"):
            progress.cancel()

    progress = Progress(cancel_on_write, min_step=0.0)
    with pytest.raises(Cancelled):
        import_neptune(ws.tracking, project, progress=progress)
    assert counts(ws.tracking) == before and any(m.startswith("run 2 of") for m in seen)


def test_cli_imports_an_offline_folder(tmp_path, project, capsys):
    from mlops_desktop.cli.main import main

    home = str(tmp_path / "cli-ws")
    assert main(["import", "neptune", str(project), "--json", "--home", home]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 2
    assert main(["import", "neptune", str(project), "--home", home]) == 0
    assert "runs already present" in capsys.readouterr().out
