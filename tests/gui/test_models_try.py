"""The Models area's "Try it" panel: the input example or dataset rows sent in-process (the server's own app) or to
the running local server; answers in a table; 4xx refusals in the server's words, naming the field."""

from __future__ import annotations

import json

import pytest
from gui_helpers import wait_idle
from models_helpers import demo_copy

from mlops_desktop.workspace import Workspace

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def ws(tmp_path, request):
    workspace = Workspace.open(demo_copy(request, tmp_path))
    yield workspace
    from mlops_desktop.serving import manager

    for server in manager.list_servers(workspace):
        if server.state in ("running", "starting"):
            manager.stop(workspace, server.name, timeout=20)
    workspace.close()


@pytest.fixture
def view(ctx, qtbot):
    from mlops_desktop.gui.views.models_view import ModelsView

    widget = ModelsView(ctx)
    qtbot.addWidget(widget)
    widget.resize(1400, 900)
    widget.show()
    wait_idle(qtbot, ctx)
    return widget


def open_try(view, qtbot, ctx, name: str, version: int):
    view.show_item(model=name, version=version, tab="try")
    qtbot.waitUntil(lambda: view.current_version() == version and view.page.model.name == name, timeout=10_000)
    panel = view.try_panel
    qtbot.waitUntil(lambda: panel.payload.toPlainText().strip() != "", timeout=10_000)
    wait_idle(qtbot, ctx)
    return panel


def send(panel, qtbot):
    panel.result = None
    panel.send_button.click()
    qtbot.waitUntil(lambda: not panel.sending, timeout=60_000)


def test_input_example_in_process(view, qtbot, ctx):
    panel = open_try(view, qtbot, ctx, "iris-classifier", 2)
    assert "in-process" in panel.target.text()
    body = json.loads(panel.payload.toPlainText())
    assert body["dataframe_split"]["columns"] == IRIS and len(body["dataframe_split"]["data"]) == 5
    send(panel, qtbot)
    result = panel.result
    assert result is not None and result.status == 200 and result.target == "in-process"
    assert len(result.predictions) == 5 and set(result.predictions) <= {"setosa", "versicolor", "virginica"}
    assert "200 OK" in panel.status.text() and "5 predictions" in panel.status.text()
    assert panel.answer.rowCount() == 5 and panel.answer.columnCount() == 1 + len(IRIS)
    assert panel.answer.horizontalHeaderItem(0).text() == "prediction"
    assert panel.answer.item(0, 0).text() == result.predictions[0]


def test_a_missing_column_is_refused_in_words(view, qtbot, ctx):
    panel = open_try(view, qtbot, ctx, "iris-classifier", 2)
    body = json.loads(panel.payload.toPlainText())
    split = body["dataframe_split"]
    split["columns"] = split["columns"][:-1]
    split["data"] = [row[:-1] for row in split["data"]]
    panel.payload.setPlainText(json.dumps(body))
    send(panel, qtbot)
    result = panel.result
    assert result is not None and 400 <= result.status < 500 and result.predictions is None
    assert "petal_width" in result.message
    assert "petal_width" in panel.status.text() and str(result.status) in panel.status.text()
    assert "Traceback" not in panel.status.text() and panel.answer.rowCount() == 0


def test_a_wrong_type_names_the_row(view, qtbot, ctx):
    panel = open_try(view, qtbot, ctx, "iris-classifier", 2)
    body = json.loads(panel.payload.toPlainText())
    body["dataframe_split"]["data"][1][0] = "tall"
    panel.payload.setPlainText(json.dumps(body))
    send(panel, qtbot)
    result = panel.result
    assert result is not None and result.status in (400, 422)
    assert "sepal_length" in result.message and "row" in result.message


def test_malformed_json_and_an_empty_body(view, qtbot, ctx):
    panel = open_try(view, qtbot, ctx, "diabetes-regressor", 1)
    panel.payload.setPlainText('{"dataframe_split": ')
    send(panel, qtbot)
    assert panel.result is not None and panel.result.status == 400 and panel.result.message
    panel.payload.setPlainText("  ")
    panel.send_button.click()
    assert "request body is empty" in panel.status.text()


def test_rows_from_a_lake_dataset(view, qtbot, ctx, ws, tmp_path):
    from mlops_desktop.data.ingest import ingest

    csv = tmp_path / "iris_batch.csv"
    csv.write_text("sepal_length,sepal_width,petal_length,petal_width,label\n"
                   + "".join(f"{5.0 + i / 10},{3.4},{1.5 + i / 5},{0.2 + i / 10},x\n" for i in range(30)),
                   encoding="utf-8")
    ingest(ws, [str(csv)], "iris_batch")
    panel = open_try(view, qtbot, ctx, "iris-classifier", 2)
    qtbot.waitUntil(lambda: panel.source.findText("iris_batch@1") >= 0, timeout=10_000)
    panel.rows.setValue(12)
    panel.source.setCurrentText("iris_batch@1")
    qtbot.waitUntil(lambda: len(json.loads(panel.payload.toPlainText() or "{}").get("dataframe_split", {})
                                .get("data", [])) == 12, timeout=10_000)
    assert json.loads(panel.payload.toPlainText())["dataframe_split"]["columns"] == IRIS   # label left out
    send(panel, qtbot)
    assert panel.result is not None and panel.result.status == 200 and len(panel.result.predictions) == 12

    # a dataset without the model's columns: said before anything is sent
    wine = next(panel.source.itemText(i) for i in range(panel.source.count()) if "wine" in panel.source.itemText(i))
    panel.source.setCurrentText(wine)
    qtbot.waitUntil(lambda: "lacks the model's input column" in panel.status.text(), timeout=10_000)
    assert "sepal_length" in panel.status.text()


def test_sent_to_the_running_local_server(view, qtbot, ctx, ws):
    from mlops_desktop.gui.views import models_data as data
    from mlops_desktop.progress import Progress
    from mlops_desktop.serving import manager

    server = manager.start(ws, "iris-classifier/3", port=0)
    view.show_item(model="iris-classifier", version=3, tab="serve")
    qtbot.waitUntil(lambda: view.serve_panel.server is not None and view.serve_panel.server.state == "running",
                    timeout=10_000)
    panel = open_try(view, qtbot, ctx, "iris-classifier", 3)
    assert server.url in panel.target.text()
    before = data.scrape(server.url, progress=Progress()).requests
    send(panel, qtbot)
    assert panel.result is not None and panel.result.status == 200 and panel.result.target == server.url
    assert data.scrape(server.url, progress=Progress()).requests == before + 1
    # another version is not what that server runs: it is answered in-process
    view.show_item(model="iris-classifier", version=2)
    qtbot.waitUntil(lambda: view.current_version() == 2, timeout=10_000)
    assert "in-process" in panel.target.text()
    manager.stop(ws, server.name)
    view.show_item(model="iris-classifier", version=3)
    qtbot.waitUntil(lambda: view.current_version() == 3, timeout=10_000)
    view.serve_panel.reload()
    qtbot.waitUntil(lambda: view.serve_panel.server is not None and view.serve_panel.server.state == "stopped",
                    timeout=10_000)
    panel._update()
    assert "in-process" in panel.target.text()


def test_ctrl_enter_sends(view, qtbot, ctx):
    from PySide6.QtCore import Qt

    panel = open_try(view, qtbot, ctx, "diabetes-regressor", 2)
    panel.payload.setFocus()
    qtbot.keyClick(panel.payload, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    assert panel.result.status == 200 and all(isinstance(p, float) for p in panel.result.predictions)
