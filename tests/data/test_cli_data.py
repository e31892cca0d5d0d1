"""The `mlops-desktop data ...` commands: JSON for scripts, tables for people, exit codes for errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mlops_desktop.cli.main import main


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_ingest_list_show_rejects_query_profile_lineage(tmp_path, capsys):
    home = str(tmp_path / "ws")
    data = tmp_path / "d.csv"
    data.write_text("id,price\n1,2.5\n2,-1\n3,oops\n4,7\n")
    contract = tmp_path / "c.toml"
    contract.write_text("[columns.price]\ntype = \"float64\"\nmin = 0\n")
    result = run_json(capsys, "--home", home, "data", "ingest", str(data), "--dataset", "d", "--contract",
                      str(contract))
    assert {k: result[k] for k in ("dataset", "version", "rows_in", "rows_stored", "rows_rejected")} == {
        "dataset": "d", "version": 1, "rows_in": 4, "rows_stored": 2, "rows_rejected": 2}
    listed = run_json(capsys, "--home", home, "data", "list")
    assert [(d["name"], d["version"], d["row_count"]) for d in listed] == [("d", 1, 2)]
    shown = run_json(capsys, "--home", home, "data", "show", "d@1")
    assert shown["schema"] == {"id": "int64", "price": "float64"} and shown["source"]["contract"]
    rejects = run_json(capsys, "--home", home, "data", "rejects", "d@1")
    assert sorted(r["_source_line"] for r in rejects["rows"]) == [3, 4]
    assert {r["reason"] for r in rejects["by_reason"]} == {"price: -1 is below the minimum 0",
                                                           "price: 'oops' is not a valid float64"}
    page = run_json(capsys, "--home", home, "data", "query", "SELECT sum(price) AS s FROM d")
    assert page["rows"] == [[9.5]]
    prof = run_json(capsys, "--home", home, "data", "profile", "d")
    assert prof["rows"] == 2
    lineage = run_json(capsys, "--home", home, "data", "lineage", "d")
    assert lineage["dataset"] == "d@1" and lineage["edges"] == [] and list(lineage["nodes"]) == ["d@1"]
    # tables for people
    assert main(["--home", home, "data", "list"]) == 0
    assert "d" in capsys.readouterr().out
    assert main(["--home", home, "data", "rejects", "d@1"]) == 0
    assert "below the minimum" in capsys.readouterr().out


def test_errors_exit_codes_without_traceback(tmp_path, capsys):
    home = str(tmp_path / "ws")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n")
    assert main(["--home", home, "data", "ingest", str(bad), "--dataset", "x", "--on-malformed", "fail"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: line 3" in err and "Traceback" not in err
    assert "--on-malformed reject" in err  # the option that helps
    assert main(["--home", home, "data", "show", "nothing"]) == 3
    assert "no dataset named 'nothing'" in capsys.readouterr().err
    assert main(["--home", home, "data", "query", "SELECT * FROM nothing"]) == 2


def test_run_pipeline_from_project_dir(tmp_path, capsys):
    home = str(tmp_path / "ws")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "mlops.toml").write_text('[pipelines.p.steps.doubled]\nsql = "SELECT a * 2 AS a FROM base"\n'
                                     '[pipelines.p.steps.broken]\nsql = "SELECT zz FROM doubled"\n')
    (proj / "base.csv").write_text("a\n1\n2\n")
    run_json(capsys, "--home", home, "data", "ingest", str(proj / "base.csv"), "--dataset", "base")
    code = main(["--home", home, "data", "run", "--project", str(proj), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["failed"] == 1
    assert [(s["step"], s["status"]) for s in out["steps"]] == [("p.doubled", "built"), ("p.broken", "failed")]


def test_data_cli_in_a_fresh_process(tmp_path):
    """End to end through the installed entry point, as a user runs it."""
    data = tmp_path / "d.ndjson"
    data.write_text('{"a": 1}\n{"a": 2}\n')
    env = dict(os.environ, MLOPS_DESKTOP_HOME=str(tmp_path / "ws"))
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop", "data", "ingest", str(data), "-d", "nd", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_stored"] == 2


def test_ingest_reports_blank_lines_skipped(tmp_path, capsys):
    home = str(tmp_path / "ws")
    data = tmp_path / "b.csv"
    data.write_text("id,name\n1,a\n\n2,b\n\n")
    result = run_json(capsys, "--home", home, "data", "ingest", str(data), "--dataset", "b")
    assert (result["rows_in"], result["rows_stored"], result["rows_rejected"], result["blank_lines"]) == (2, 2, 0, 2)
    assert main(["--home", home, "data", "ingest", str(data), "--dataset", "b"]) == 0
    assert "blank lines skipped: 2" in capsys.readouterr().out


def test_ragged_rows_are_rejected_by_default_and_fail_on_request(tmp_path, capsys):
    home = str(tmp_path / "ws")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c,d,e\n1,2,3,4,5\n6,7,8,9,10,11,12\n13,14,15,16,17\n")
    out = run_json(capsys, "--home", home, "data", "ingest", str(bad), "--dataset", "x")
    assert (out["rows_in"], out["rows_stored"], out["rows_rejected"]) == (3, 2, 1)
    rejects = run_json(capsys, "--home", home, "data", "rejects", "x")
    [row] = rejects["rows"]
    assert (row["_source_line"], row["_reason"], row["_raw_line"]) == (3, "7 fields, the header has 5",
                                                                        "6,7,8,9,10,11,12")
    assert main(["--home", home, "data", "rejects", "x"]) == 0
    assert "6,7,8,9,10,11,12" in capsys.readouterr().out  # the table shows the raw line of a ragged row
    # the project's mlops.toml asks for the old behaviour: the file is refused, nothing stored
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "mlops.toml").write_text('[datasets.y]\non_malformed = "fail"\n')
    assert main(["--home", home, "data", "ingest", str(bad), "--dataset", "y", "--project", str(proj)]) == 2
    assert "line 3: 7 fields, more than the 5 columns" in capsys.readouterr().err
    assert main(["--home", home, "data", "show", "y"]) == 3
    (proj / "mlops.toml").write_text('[datasets.y]\non_malformed = "sometimes"\n')
    assert main(["--home", home, "data", "ingest", str(bad), "--dataset", "y", "--project", str(proj)]) == 2
    assert "on_malformed must be" in capsys.readouterr().err
