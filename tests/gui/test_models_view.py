"""The Models area over a real demo workspace: models list, versions with metrics and alias badges, the alias
timeline, Promote and Roll back with their reasons (and refusals), version detail and lineage to the run."""

from __future__ import annotations

import json

import pytest
from gui_helpers import wait_idle
from models_helpers import demo_copy
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QDialogButtonBox

from mlops_desktop import registry
from mlops_desktop.gui.views.models_widgets import ALIASES_ROLE
from mlops_desktop.workspace import Workspace


@pytest.fixture
def ws(tmp_path, request):
    workspace = Workspace.open(demo_copy(request, tmp_path))
    yield workspace
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


def open_model(view, qtbot, ctx, name: str, version: int | None = None, tab: str | None = None) -> None:
    view.show_item(model=name, version=version, tab=tab)
    qtbot.waitUntil(lambda: view.page is not None and view.page.model.name == name, timeout=10_000)
    wait_idle(qtbot, ctx)


def ok_button(dialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_models_list_versions_metrics_and_badges(view, qtbot, ctx):
    names = [view.models.item(i).data(Qt.ItemDataRole.UserRole) for i in range(view.models.count())]
    assert names == ["diabetes-regressor", "iris-classifier"]
    open_model(view, qtbot, ctx, "iris-classifier")
    model = view.versions_model
    assert [v.version for v in model.versions] == [4, 3, 2, 1]          # newest first
    assert "val_acc" in model.columns and "val_f1" in model.columns     # metrics copied from the runs
    col = model.columns.index("val_acc")
    assert model.index(model.row_of(2), col).data() == "0.9474"
    badges = {v.version: model.index(model.row_of(v.version), 1).data(ALIASES_ROLE) for v in model.versions}
    assert badges[2] == ["champion", "production"] and badges[3] == ["challenger"] and badges[4] == []
    assert model.index(0, 3).data() == "ONNX fast path"
    assert view.current_version() == 2   # production's version opens first
    assert view.heading.text() == "iris-classifier"


def test_alias_timeline_reads_like_the_audit_log(view, qtbot, ctx):
    open_model(view, qtbot, ctx, "iris-classifier")
    heads = [e[1] for e in view.timeline.entries]
    assert heads[0] == "champion: set to v2"
    assert heads[1] == "production: v4 → v2  (rollback)"
    assert "production: v1 → v2" in heads and heads[-1] == "production: set to v1"
    rollback = view.timeline.entries[1]
    assert rollback[3] is True and "because kNN latency spiked under load" in rollback[2] and "by " in rollback[2]
    assert "production" in view.current_aliases.text() and "v2" in view.current_aliases.text()


def test_promote_asks_for_a_reason_on_a_protected_alias(view, qtbot, ctx, ws):
    open_model(view, qtbot, ctx, "iris-classifier", version=3)
    assert view.current_version() == 3 and view.promote_button.text() == "Promote v3…"
    dialog = view.open_promote()
    dialog.alias.setCurrentText("production")
    assert "production: v2 → v3" in dialog.effect.text() and "reason is required" in dialog.effect.text()
    assert not ok_button(dialog).isEnabled()
    dialog.reason.setPlainText("SVM won the shadow test")
    assert ok_button(dialog).isEnabled()
    qtbot.mouseClick(ok_button(dialog), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.dialog is None, timeout=10_000)
    assert registry.store(ws).get_model("iris-classifier").aliases["production"] == 3
    last = registry.store(ws).alias_history("iris-classifier", "production")[-1]
    assert (last.kind, last.from_version, last.to_version, last.reason) == ("moved", 2, 3, "SVM won the shadow test")
    qtbot.waitUntil(lambda: view.timeline.entries and view.timeline.entries[0][1] == "production: v2 → v3",
                    timeout=10_000)
    assert "because SVM won the shadow test" in view.timeline.entries[0][2]
    row = view.versions_model.row_of(3)
    qtbot.waitUntil(lambda: "production" in (view.versions_model.index(row, 1).data(ALIASES_ROLE) or []),
                    timeout=10_000)


def test_promote_to_an_unprotected_alias_needs_no_reason(view, qtbot, ctx, ws):
    open_model(view, qtbot, ctx, "iris-classifier", version=4)
    dialog = view.open_promote()
    dialog.alias.setCurrentText("staging")
    assert "staging: new, → v4" in dialog.effect.text()
    assert ok_button(dialog).isEnabled()
    ok_button(dialog).click()
    qtbot.waitUntil(lambda: view.dialog is None, timeout=10_000)
    assert registry.store(ws).get_model("iris-classifier").aliases["staging"] == 4


def test_promote_refused_by_the_registry_keeps_the_dialog_open_with_the_reason(view, qtbot, ctx, ws):
    open_model(view, qtbot, ctx, "iris-classifier", version=2)
    dialog = view.open_promote()
    dialog.alias.setCurrentText("production")
    dialog.reason.setPlainText("again")
    ok_button(dialog).click()
    qtbot.waitUntil(lambda: bool(dialog.error.text()), timeout=10_000)
    assert dialog.isVisible()
    assert "already points at version 2" in dialog.error.text()
    assert "Traceback" not in dialog.error.text()
    dialog.alias.setCurrentText("bad alias!")   # not a valid alias name: the registry says why
    dialog.reason.setPlainText("x")
    ok_button(dialog).click()
    qtbot.waitUntil(lambda: "alias" in dialog.error.text(), timeout=10_000)
    assert dialog.isVisible()
    dialog.reject()


def test_roll_back_moves_production_to_the_version_before(view, qtbot, ctx, ws):
    open_model(view, qtbot, ctx, "iris-classifier")
    dialog = view.open_rollback()
    dialog.alias.setCurrentText("production")
    assert "production: v2 → v1" in dialog.effect.text()
    assert not ok_button(dialog).isEnabled()       # a rollback always needs a reason
    dialog.reason.setPlainText("forest misclassifies the new batch")
    ok_button(dialog).click()
    qtbot.waitUntil(lambda: view.dialog is None, timeout=10_000)
    last = registry.store(ws).alias_history("iris-classifier", "production")[-1]
    assert (last.kind, last.from_version, last.to_version) == ("rollback", 2, 1)
    qtbot.waitUntil(lambda: view.timeline.entries[0][1] == "production: v2 → v1  (rollback)", timeout=10_000)


def test_roll_back_with_nothing_before_says_so(view, qtbot, ctx, ws):
    open_model(view, qtbot, ctx, "diabetes-regressor")
    dialog = view.open_rollback()
    dialog.alias.setCurrentText("challenger")
    assert "nothing to roll back to" in dialog.effect.text()
    dialog.reason.setPlainText("try")
    ok_button(dialog).click()
    qtbot.waitUntil(lambda: bool(dialog.error.text()), timeout=10_000)
    assert "pointed only at version 2" in dialog.error.text() and dialog.isVisible()
    assert registry.store(ws).get_model("diabetes-regressor").aliases["challenger"] == 2
    dialog.reject()


def test_version_detail_signature_files_environment_and_serving_path(view, qtbot, ctx, ws):
    open_model(view, qtbot, ctx, "iris-classifier", version=2, tab="version")
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.version.version == 2, timeout=10_000)
    panel = view.version_panel
    assert [panel.signature.item(r, 0).text() for r in range(panel.signature.rowCount())] == \
        ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    files = {panel.files.item(r, 0).text(): (panel.files.item(r, 1).text(), panel.files.item(r, 2).text())
             for r in range(panel.files.rowCount())}
    bundle = registry.open_version_bundle(ws, "iris-classifier/2")
    skops = bundle.files["model/model.skops"]
    assert files["model/model.skops"][1] == skops["sha256"] and len(skops["sha256"]) == 64
    assert files["model/model.skops"][0].endswith(("KB", "B"))
    env = {panel.environment.item(r, 0).text(): panel.environment.item(r, 1).text()
           for r in range(panel.environment.rowCount())}
    assert env["scikit-learn"] == bundle.environment["packages"]["scikit-learn"] and "python" in env
    assert "ONNX fast path" in panel.serving.text() and "onnxruntime" in panel.serving.text()
    assert "held-out sample" in panel.serving.text()
    assert not panel.problem.isVisible()


def test_tampered_bundle_is_shown_in_words(view, qtbot, ctx, ws):
    mv = registry.store(ws).get_version("iris-classifier", 3)
    target = registry.bundle_dir(ws, mv) / "model" / "model.skops"
    target.chmod(0o644)
    target.write_bytes(target.read_bytes() + b"tampered")
    open_model(view, qtbot, ctx, "iris-classifier", version=3, tab="version")
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.version.version == 3, timeout=10_000)
    assert view.version_panel.problem.isVisible()
    text = view.version_panel.problem.text()
    assert "model/model.skops" in text and "Traceback" not in text


def test_lineage_graph_opens_the_run_in_experiments(window, qtbot, ctx, ws):
    window.navigate("models")
    view = window.areas["models"]
    wait_idle(qtbot, ctx)
    open_model(view, qtbot, ctx, "iris-classifier", version=2, tab="version")
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.version.version == 2, timeout=10_000)
    graph = view.version_panel.graph
    kinds = [[n.kind for n in column] for column in graph.columns]
    assert kinds == [["dataset"], ["run"], ["version"]]
    run_node = graph.columns[1][0]
    assert run_node.label == "random-forest" and "iris-classifiers" in run_node.detail
    graph.repaint()
    center = run_node.rect.center()
    qtbot.mouseClick(graph, Qt.MouseButton.LeftButton, pos=QPointF(center).toPoint())
    qtbot.waitUntil(lambda: window.current_area_id() == "experiments", timeout=10_000)
    experiments = window.areas["experiments"]
    uuid = registry.store(ws).get_version("iris-classifier", 2).run_uuid
    qtbot.waitUntil(lambda: experiments.current_run() is not None and experiments.current_run().uuid == uuid,
                    timeout=15_000)


def test_empty_workspace_says_how_to_register(qtbot, qapp, tmp_path):
    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context
    from mlops_desktop.gui.views.models_view import ModelsView

    theme.apply(qapp, "light")
    with Workspace.open(tmp_path / "empty") as empty:
        context = make_context(empty)
        widget = ModelsView(context)
        qtbot.addWidget(widget)
        widget.show()
        wait_idle(qtbot, context)
        assert widget.empty.isVisible() and "models register" in widget.empty.text()
        assert context.tasks.shutdown(5000)


def test_unknown_tab_is_refused_in_words(view):
    from mlops_desktop.errors import UsageError

    with pytest.raises(UsageError, match="no tab 'nope' in Models"):
        view.show_item(tab="nope")


def test_models_payload_example_is_valid_json(view, qtbot, ctx, ws):
    from mlops_desktop.gui.views import models_data
    from mlops_desktop.progress import Progress

    body = json.loads(models_data.example_payload(ws, "iris-classifier", 2, progress=Progress()))
    assert body["dataframe_split"]["columns"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert len(body["dataframe_split"]["data"]) == 5


def test_which_version_an_alias_pointed_at_on_a_date(view, qtbot, ctx, ws):
    from PySide6.QtCore import QDateTime

    open_model(view, qtbot, ctx, "iris-classifier")
    assert view.when_alias.currentText() == "production"
    view.when.setDateTime(QDateTime.currentDateTime().addSecs(60))
    view.when_button.click()
    qtbot.waitUntil(lambda: view.when_answer.text().startswith("production pointed at v2 on"), timeout=10_000)
    view.when.setDateTime(QDateTime.fromSecsSinceEpoch(1_600_000_000))   # 2020: before the model existed
    view.when_button.click()
    qtbot.waitUntil(lambda: "pointed at no version" in view.when_answer.text(), timeout=10_000)
    first = registry.store(ws).alias_history("iris-classifier", "production")[0]
    assert registry.store(ws).alias_at("iris-classifier", "production", first.ts) == 1


def test_an_alias_moved_elsewhere_shows_without_a_refresh(view, qtbot, ctx, ws, tmp_path):
    open_model(view, qtbot, ctx, "iris-classifier")
    with Workspace.open(ws.root) as other:   # another window or the CLI, with its own connection
        registry.store(other).set_alias("iris-classifier", "production", 4, reason="moved from the command line")
    qtbot.waitUntil(lambda: view.timeline.entries[0][1] == "production: v2 → v4", timeout=15_000)
    assert view.page.model.aliases["production"] == 4
    assert view.current_version() == 2   # the selection stays where the user left it


def test_command_palette_lists_models_and_aliases(view, qtbot, ctx, window):
    from mlops_desktop.gui.views.models_view import ModelsView

    labels = {e.label: e for e in ModelsView.palette_entries(ctx, "")}
    assert {"Model: iris-classifier", "Model: iris-classifier@production", "Model: diabetes-regressor"} <= set(labels)
    labels["Model: iris-classifier@challenger"].callback()
    models = window.areas["models"]
    qtbot.waitUntil(lambda: window.current_area_id() == "models" and models.current_version() == 3, timeout=10_000)


def test_lineage_graph_datasets_steps_and_what_is_clickable(qtbot, qapp):
    from mlops_desktop.gui.views.models_widgets import LineageGraph

    graph = LineageGraph()
    qtbot.addWidget(graph)
    graph.resize(900, 220)
    graph.show()
    graph.set_lineage({"version": "m/3", "pipeline_steps": ["daily.clean"],
                       "run": {"uuid": "abc123", "name": "fit", "status": "finished", "experiment": "e"},
                       "datasets": [{"dataset": "clean", "version": "2", "ref": "clean@2", "context": "training",
                                     "in_lake": True, "rows": 1200},
                                    {"dataset": "raw.csv", "version": "", "context": "training", "in_lake": False}]})
    graph.repaint()
    assert [[n.kind for n in c] for c in graph.columns] == [["step"], ["dataset", "dataset"], ["run"], ["version"]]
    lake, outside = graph.columns[1]
    assert "1,200 rows" in lake.detail and "not in this lake" in outside.detail
    opened: list[str] = []
    graph.dataset_clicked.connect(opened.append)
    graph.run_clicked.connect(opened.append)
    for node in (lake, outside, graph.columns[2][0], graph.columns[0][0]):
        qtbot.mouseClick(graph, Qt.MouseButton.LeftButton, pos=node.rect.center().toPoint())
    assert opened == ["clean@2", "abc123"]   # the file outside the lake and the step open nothing


def test_version_menu_and_double_click(view, qtbot, ctx):
    from PySide6.QtWidgets import QApplication

    open_model(view, qtbot, ctx, "iris-classifier", version=3, tab="aliases")
    actions = {a.text(): a for a in view.version_menu().actions()}
    assert {"Promote v3…", "Serve locally", "Try it", "Open its run in Experiments", "Copy reference"} <= set(actions)
    actions["Copy reference"].trigger()
    assert QApplication.clipboard().text() == "iris-classifier/3"
    actions["Try it"].trigger()
    assert view.tab_ids[view.tabs.currentIndex()] == "try"
    index = view.versions_model.index(view.versions_model.row_of(3), 0)
    view.versions.doubleClicked.emit(index)
    assert view.tab_ids[view.tabs.currentIndex()] == "version"
