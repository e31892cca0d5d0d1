"""Pipelines from mlops.toml: DAG order, incremental skips, lineage, failures that stop only their dependants."""

from __future__ import annotations

import textwrap

import pytest

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.ingest import ingest
from mlops_desktop.data.pipeline import run_pipelines
from mlops_desktop.data.project import find_project
from mlops_desktop.errors import Cancelled, MlopsError
from mlops_desktop.progress import Progress

CONFIG = """
[datasets.sales.contract.columns.price]
type = "float64"
min = 0

[datasets.big_orders.contract.columns.amount]
max = 1000

[pipelines.daily.steps.clean]
sql = "SELECT id, price, qty FROM sales WHERE qty > 0"
output = "sales_clean"

[pipelines.daily.steps.amounts]
python = "steps.py:add_amount"
inputs = ["sales_clean"]

[pipelines.daily.steps.big]
sql = "SELECT * FROM amounts WHERE amount > 10"
output = "big_orders"

[pipelines.report.steps.summary]
sql = "SELECT count(*) AS sales, sum(amount) AS total FROM amounts"
"""

STEPS = """
import polars as pl


def add_amount(lf):
    return lf.with_columns((pl.col("price") * pl.col("qty")).alias("amount"))
"""


@pytest.fixture
def project(tmp_path, ws):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mlops.toml").write_text(CONFIG)
    (root / "steps.py").write_text(STEPS)
    (root / "sales.csv").write_text("id,price,qty\n1,2.0,3\n2,-1,1\n3,5.0,0\n4,600,2\n5,4.0,4\n")
    contract = find_project(root).contracts["sales"]
    ingest(ws, [str(root / "sales.csv")], "sales", contract=contract)
    return root


def statuses(outcomes):
    return {o.step: o.status for o in outcomes}


def test_dag_runs_in_order_with_lineage_and_contracts(ws, project):
    outcomes = run_pipelines(ws, find_project(project))
    assert [o.step for o in outcomes] == ["daily.clean", "daily.amounts", "daily.big", "report.summary"]
    assert set(statuses(outcomes).values()) == {"built"}
    assert lake.open_dataset(ws, "sales_clean")["id"].to_list() == [1, 4, 5]
    assert lake.open_dataset(ws, "amounts")["amount"].to_list() == [6.0, 1200.0, 16.0]
    big = {o.step: o for o in outcomes}["daily.big"]
    assert (big.rows_stored, big.rows_rejected) == (1, 1)  # 1200 breaks big_orders' contract (max 1000)
    assert lake.open_dataset(ws, "summary").row(0) == (3, 1222.0)
    v = catalog.resolve(ws.db, "big_orders")
    assert v.parents == ["amounts@1"] and v.producer_step == "daily.big" and v.mode == "derive"
    assert catalog.resolve(ws.db, "amounts").parents == ["sales_clean@1"]
    assert catalog.children_of(ws.db, catalog.resolve(ws.db, "amounts").id) == ["big_orders@1", "summary@1"]
    assert catalog.resolve(ws.db, "summary").parents == ["amounts@1"]  # the alias "sales" is not an input


def test_incremental_skip_and_rebuild_on_change(ws, project):
    run_pipelines(ws, find_project(project))
    again = run_pipelines(ws, find_project(project))
    assert set(statuses(again).values()) == {"unchanged"}
    # new input version -> everything downstream rebuilds
    (project / "more.csv").write_text("id,price,qty\n6,1.0,1\n")
    ingest(ws, [str(project / "more.csv")], "sales", mode="append")
    third = run_pipelines(ws, find_project(project))
    assert set(statuses(third).values()) == {"built"}
    assert catalog.resolve(ws.db, "summary").version == 2
    # a code change that yields the same data rebuilds the step only: dependants see the same content hash
    (project / "steps.py").write_text(STEPS.replace('alias("amount")', 'alias("amount") * 1'))
    fourth = run_pipelines(ws, find_project(project))
    assert statuses(fourth) == {"daily.clean": "unchanged", "daily.amounts": "built", "daily.big": "unchanged",
                                "report.summary": "unchanged"}
    # a code change that changes the data rebuilds the step and its dependants, not the SQL step upstream
    (project / "steps.py").write_text(STEPS.replace('alias("amount")', 'alias("amount") * 2'))
    fifth = run_pipelines(ws, find_project(project))
    assert statuses(fifth) == {"daily.clean": "unchanged", "daily.amounts": "built", "daily.big": "built",
                               "report.summary": "built"}
    assert lake.open_dataset(ws, "summary").row(0) == (4, 2 * 1223.0)
    # --force rebuilds
    assert set(statuses(run_pipelines(ws, find_project(project), force=True)).values()) == {"built"}


def test_run_one_pipeline_or_one_step_with_its_upstream(ws, project):
    out = run_pipelines(ws, find_project(project), "report")
    assert [o.step for o in out] == ["report.summary"]
    assert out[0].status == "failed" and "amounts" in out[0].message  # upstream output does not exist yet
    out = run_pipelines(ws, find_project(project), "amounts")
    assert [o.step for o in out] == ["daily.clean", "daily.amounts"]


def test_failed_step_blocks_dependants_and_names_the_error(ws, project):
    text = (project / "mlops.toml").read_text().replace("WHERE qty > 0", "WHERE no_such_column > 0")
    (project / "mlops.toml").write_text(text)
    out = {o.step: o for o in run_pipelines(ws, find_project(project))}
    assert out["daily.clean"].status == "failed"
    assert "step daily.clean" in out["daily.clean"].message and "no_such_column" in out["daily.clean"].message
    assert out["daily.amounts"].status == "blocked" and "daily.clean" in out["daily.amounts"].message
    assert out["daily.big"].status == "blocked" and out["report.summary"].status == "blocked"
    assert catalog.latest(ws.db, "sales_clean") is None


def test_python_step_error_names_file_and_line(ws, project):
    (project / "steps.py").write_text("def add_amount(lf):\n    raise ValueError('bad feature')\n")
    out = {o.step: o for o in run_pipelines(ws, find_project(project))}
    assert out["daily.amounts"].status == "failed"
    assert "steps.py line 2 in add_amount: ValueError: bad feature" in out["daily.amounts"].message
    assert out["daily.clean"].status == "built"


def test_runtime_expression_error_is_reported(ws, project):
    text = CONFIG.replace("SELECT id, price, qty FROM sales WHERE qty > 0",
                          "SELECT id, CAST('x' AS INT) AS price, qty FROM sales")
    (project / "mlops.toml").write_text(text)
    out = {o.step: o for o in run_pipelines(ws, find_project(project), "clean")}
    assert out["daily.clean"].status == "failed"
    assert "step daily.clean" in out["daily.clean"].message


def test_cycle_and_bad_config_are_reported(tmp_path, ws):
    root = tmp_path / "p"
    root.mkdir()
    (root / "mlops.toml").write_text(textwrap.dedent("""
        [pipelines.p.steps.a]
        sql = "SELECT * FROM b"
        [pipelines.p.steps.b]
        sql = "SELECT * FROM a"
    """))
    with pytest.raises(MlopsError, match="cycle"):
        run_pipelines(ws, find_project(root))
    (root / "mlops.toml").write_text('[pipelines.p.steps.a]\nsql = "x"\npython = "f.py:g"\n')
    with pytest.raises(MlopsError, match="exactly one of sql"):
        find_project(root)


def test_cancel_stops_the_run(ws, project):
    progress = Progress(lambda f, m: progress.cancel() if "amounts" in m else None)
    with pytest.raises(Cancelled):
        run_pipelines(ws, find_project(project), progress=progress)
    assert catalog.latest(ws.db, "amounts") is None


def test_lineage_graph_both_ways(ws, project):
    from mlops_desktop.data.lineage import lineage

    run_pipelines(ws, find_project(project))
    exp = ws.tracking.get_or_create_experiment("e")
    run = ws.tracking.create_run(exp.id, name="fit")
    lake.open_dataset(ws, "amounts", run=run.uuid)
    graph = lineage(ws, "amounts")
    assert set(graph.nodes) == {"sales@1", "sales_clean@1", "amounts@1", "big_orders@1", "summary@1"}
    assert ("sales_clean@1", "amounts@1", "daily.amounts") in graph.edges
    assert ("amounts@1", "summary@1", "report.summary") in graph.edges
    assert graph.depth()["sales@1"] == 0 and graph.depth()["summary@1"] == 3
    assert [r["run"] for r in graph.runs] == [run.uuid]


def test_read_page_reads_any_window(ws, src):
    ingest(ws, [str(src("p.csv", "a\n" + "".join(f"{i}\n" for i in range(10_000))))], "p")
    version = catalog.resolve(ws.db, "p")
    assert lake.read_page(ws, version, 9_990, 50)["a"].to_list() == list(range(9_990, 10_000))


def test_step_output_partitioned_by_the_project_and_rebuilt_when_that_changes(ws, project):
    config = project / "mlops.toml"
    config.write_text(CONFIG + '\n[datasets.sales_clean]\npartition_by = ["qty"]\n')
    outcomes = run_pipelines(ws, find_project(project), "clean")
    assert statuses(outcomes) == {"daily.clean": "built"}
    version = catalog.resolve(ws.db, "sales_clean")
    assert version.source["partition_by"] == ["qty"]
    folders = sorted(f.parent.name for f in lake.data_files(ws, version))
    assert folders == ["qty=2", "qty=3", "qty=4"]
    assert sorted(lake.open_dataset(ws, "sales_clean")["id"].to_list()) == [1, 4, 5]
    assert statuses(run_pipelines(ws, find_project(project), "clean")) == {"daily.clean": "unchanged"}
    config.write_text(CONFIG)  # partitioning dropped: the output is rebuilt flat
    assert statuses(run_pipelines(ws, find_project(project), "clean")) == {"daily.clean": "built"}
    assert "partition_by" not in catalog.resolve(ws.db, "sales_clean").source
