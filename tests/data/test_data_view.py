"""The Data area with real widgets offscreen: catalog, lazy table over a large version, SQL, profile, rejects,
lineage, the ingest dialog and the pipeline panel, all working through the task runner."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import polars as pl  # noqa: E402
import pytest  # noqa: E402

from mlops_desktop.data import catalog, lake  # noqa: E402
from mlops_desktop.data.ingest import ingest  # noqa: E402

pytestmark = pytest.mark.gui
ROWS = 2_000_000



@pytest.fixture
def big(ws, tmp_path):
    df = pl.DataFrame({"id": list(range(ROWS)), "value": [i * 0.5 for i in range(ROWS)],
                       "kind": ["ab"[i % 2] for i in range(ROWS)]})
    path = tmp_path / "big.parquet"
    df.write_parquet(path, row_group_size=100_000)
    ingest(ws, [str(path)], "big")
    return ws


@pytest.fixture
def view(ctx, qtbot, big):
    from mlops_desktop.gui.views.data_view import DataView

    widget = DataView(ctx)
    qtbot.addWidget(widget)
    widget.resize(1200, 760)
    widget.show()
    qtbot.waitUntil(lambda: widget.current_version() is not None, timeout=10_000)
    return widget


def idle(qtbot, ctx):
    qtbot.waitUntil(lambda: not ctx.tasks.running(), timeout=15_000)


def test_catalog_and_lazy_table_page_through_a_large_version(view, ctx, qtbot):
    model = view.table_model
    assert view.list.count() == 1 and model.rowCount() == ROWS and model.columnCount() == 3
    qtbot.waitUntil(lambda: model.loaded(0), timeout=10_000)
    assert model.data(model.index(0, 0)) == "0" and model.data(model.index(1, 1)) == "0.5"
    view.table.scrollToBottom()
    last = ROWS - 1
    model.data(model.index(last, 0))  # what the view asks while painting the bottom rows
    qtbot.waitUntil(lambda: model.loaded(last), timeout=10_000)
    assert model.data(model.index(last, 0)) == str(last)
    assert model.data(model.index(last, 2)) == "ab"[last % 2]
    assert len(model.cache) <= 64  # only pages that were looked at are held
    idle(qtbot, ctx)


def test_sql_panel_runs_pinned_query_and_exports(view, ctx, qtbot, tmp_path):
    view.show_item(tab="sql")
    view.sql.set_sql("SELECT kind, count(*) AS n FROM big@1 GROUP BY kind ORDER BY kind")
    view.sql.run()
    qtbot.waitUntil(lambda: view.sql.model.rowCount() == 2, timeout=10_000)
    assert view.sql.model.rows == [("a", str(ROWS // 2)), ("b", str(ROWS // 2))]
    assert "big__v1 = big@1" in view.sql.status.text()
    out = tmp_path / "out.csv"
    view.sql.export_to(str(out))
    idle(qtbot, ctx)
    assert pl.read_csv(out).height == 2
    view.sql.set_sql("SELECT nope FROM big")
    view.sql.run()
    qtbot.waitUntil(lambda: "error" in view.sql.status.text(), timeout=10_000)
    assert "nope" in view.sql.status.text()


def test_profile_tab_draws_a_histogram(view, ctx, qtbot):
    view.show_item(tab="profile")
    qtbot.waitUntil(lambda: view.profile.result is not None, timeout=15_000)
    assert view.profile.model.rowCount() == 3
    qtbot.waitUntil(lambda: bool(view.profile.bars()), timeout=5_000)
    view.profile.table.selectRow(2)  # a text column: top values instead of a histogram
    qtbot.waitUntil(lambda: "most frequent" in view.profile.caption.text(), timeout=5_000)
    idle(qtbot, ctx)


def _dialog_with_preview(view, qtbot, path, text: str, rows: int):  # noqa: ANN001, ANN202
    """The ingest dialog opened on a new file, once its preview shows ``rows`` rows."""
    path.write_text(text)
    dialog = view.open_ingest([str(path)])
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.preview_model.rowCount() == rows, timeout=10_000)
    return dialog


def test_ingest_dialog_preview_contract_progress_and_rejects(view, ctx, qtbot, tmp_path):
    # the blank line at the end is neither previewed nor stored
    dialog = _dialog_with_preview(view, qtbot, tmp_path / "orders.csv",
                                  "order_id,amount\n1,10.5\n2,-3\n3,oops\n4,7\n\n", rows=4)
    assert dialog.dataset.text() == "orders"
    draft = dialog.contract.toPlainText()  # "oops" among numbers: still numeric, its row to be rejected
    assert '[columns.amount]\ntype = "float64"' in draft and "Rows with 'oops' are rejected" in draft
    dialog.contract.setPlainText('[columns.amount]\ntype = "float64"\nmin = 0\n')
    dialog.start()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=15_000)
    assert (dialog.result.rows_in, dialog.result.rows_stored, dialog.result.rows_rejected) == (4, 2, 2)
    assert "2 rejected, 1 blank line skipped" in dialog.status.text() and dialog.rejects_button.isVisible()
    if os.environ.get("MLOPS_SCREENSHOTS"):
        dialog.grab().save(os.path.join(os.environ["MLOPS_SCREENSHOTS"], "ingest_done.png"))
    dialog._show_rejects()  # the main window's navigate is a no-op here; go to the tab ourselves
    view.show_item(dataset="orders@1", tab="rejects")
    qtbot.waitUntil(lambda: view.rejects.rows.rowCount() == 2, timeout=10_000)
    assert [r[0] for r in view.rejects.rows.rows] == ["3", "4"]  # source lines
    qtbot.waitUntil(lambda: view.list.count() == 2, timeout=10_000)
    idle(qtbot, ctx)


def test_ingest_dialog_reports_malformed_input_and_stores_nothing(view, ctx, qtbot, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,\"4\n")  # an unterminated quote (a ragged row is now rejected, not refused)
    dialog = view.open_ingest()
    qtbot.addWidget(dialog)
    dialog.paths.setText(str(bad))
    dialog.dataset.setText("bad")
    dialog.use_contract.setChecked(False)
    dialog.start()
    qtbot.waitUntil(lambda: "not ingested" in dialog.status.text(), timeout=10_000)
    assert "bad.csv: line 3" in dialog.status.text()
    assert catalog.latest(ctx.workspace.db, "bad") is None
    idle(qtbot, ctx)


def test_pipelines_panel_runs_steps_and_lineage_shows_them(view, ctx, qtbot, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mlops.toml").write_text('[pipelines.p.steps.kinds]\n'
                                        'sql = "SELECT kind, count(*) AS n FROM big GROUP BY kind"\n')
    view.show_item(tab="pipelines")
    view.pipelines.set_folder(str(project))
    qtbot.waitUntil(lambda: view.pipelines.model.rowCount() == 1, timeout=10_000)
    assert view.pipelines.model.rows[0][:4] == ("p.kinds", "sql", "big", "kinds")
    view.pipelines.run(None)
    qtbot.waitUntil(lambda: "1 built" in view.pipelines.status.text(), timeout=15_000)
    qtbot.waitUntil(lambda: view.list.count() == 2, timeout=10_000)
    view.show_item(dataset="kinds@1", tab="lineage")
    qtbot.waitUntil(lambda: view.lineage.graph is not None and view.lineage.graph.root == "kinds@1",
                    timeout=10_000)
    assert set(view.lineage.view.nodes) == {"big@1", "kinds@1"}
    idle(qtbot, ctx)


def test_unrelated_database_changes_do_not_redraw(view, ctx, qtbot):
    idle(qtbot, ctx)
    first_item = view.list.item(0)
    exp = ctx.workspace.tracking.get_or_create_experiment("e")
    ctx.workspace.tracking.create_run(exp.id, name="r")  # the database changes, the catalog does not
    view.refresh()
    idle(qtbot, ctx)
    assert view.list.item(0) is first_item
    ingest(ctx.workspace, [str(_csv(ctx))], "other")
    view.refresh()
    qtbot.waitUntil(lambda: view.list.count() == 2, timeout=10_000)


def _csv(ctx):
    path = ctx.workspace.root / "o.csv"
    path.write_text("a\n1\n")
    return path


def test_chosen_old_version_stays_and_latest_follows_new_versions(view, ctx, qtbot, tmp_path):
    for n in (2, 3):
        path = tmp_path / f"v{n}.csv"
        path.write_text("id,value,kind\n" + "".join(f"{i},{i},a\n" for i in range(n)))
        ingest(ctx.workspace, [str(path)], "big")
    view.refresh()
    qtbot.waitUntil(lambda: view.version_box.count() == 3, timeout=10_000)
    assert view.current_version().version == 3  # following the latest
    view.version_box.setCurrentIndex(0)
    assert view.current_version().version == 1
    path = tmp_path / "other.csv"
    path.write_text("a\n1\n")
    ingest(ctx.workspace, [str(path)], "other")  # another dataset changes the catalog
    view.refresh()
    qtbot.waitUntil(lambda: view.list.count() == 2, timeout=10_000)
    idle(qtbot, ctx)
    assert view.current_version().version == 1
    assert view.table_model.rowCount() == ROWS
    idle(qtbot, ctx)


def test_ingest_dialog_cancel_stores_nothing(view, ctx, qtbot, tmp_path):
    data = tmp_path / "large.csv"
    data.write_text("a,b\n" + "".join(f"{i},{i % 7}\n" for i in range(1_500_000)))
    dialog = view.open_ingest()
    qtbot.addWidget(dialog)
    dialog.paths.setText(str(data))
    dialog.dataset.setText("large")
    dialog.use_contract.setChecked(False)
    dialog.start()
    dialog.cancel()  # at once: the job stops at its next check, long before it could commit
    qtbot.waitUntil(lambda: "cancelled; nothing was stored" in dialog.status.text(), timeout=10_000)
    assert catalog.latest(ctx.workspace.db, "large") is None
    assert not list((ctx.workspace.paths.lake / ".staging").iterdir())
    idle(qtbot, ctx)


def test_ingest_dialog_partitions_and_the_version_says_so(view, ctx, qtbot, tmp_path):
    dialog = _dialog_with_preview(view, qtbot, tmp_path / "trips.csv", "id,city\n1,Oslo\n2,Rome\n3,Oslo\n", rows=3)
    dialog.partition.setText(" city ")
    dialog.start()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=15_000)
    version = catalog.resolve(ctx.workspace.db, "trips")
    assert version.source["partition_by"] == ["city"]
    assert sorted(f.parent.name for f in lake.data_files(ctx.workspace, version)) == ["city=Oslo", "city=Rome"]
    view.show_item(dataset="trips@1")
    qtbot.waitUntil(lambda: "partitioned by city" in view.summary.text(), timeout=10_000)
    if os.environ.get("MLOPS_SCREENSHOTS"):
        view.resize(1400, 900)
        qtbot.wait(1500)  # the lazy table's first page
        view.grab().save(os.path.join(os.environ["MLOPS_SCREENSHOTS"], "data_partitioned.png"))
    idle(qtbot, ctx)


# ---------------------------------------------------------------------------------------------- issue 14: Data
def _small(ctx, tmp_path, name: str, text: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    ingest(ctx.workspace, [str(path)], name)


def test_sql_follows_the_selected_dataset_and_times_the_query(view, ctx, qtbot, tmp_path):
    _small(ctx, tmp_path, "small", "k,v\nx,1\ny,2\n")
    view.refresh()
    qtbot.waitUntil(lambda: view.list.count() == 2, timeout=10_000)
    view.show_item(tab="sql")
    view.show_item(dataset="small")
    qtbot.waitUntil(lambda: view.sql.sql() == "SELECT * FROM small LIMIT 100", timeout=10_000)
    qtbot.waitUntil(lambda: view.sql.model.columns == ["k", "v"], timeout=10_000)
    assert view.sql.model.rows == [("x", "1"), ("y", "2")]
    assert " rows in " in view.sql.status.text() and view.sql.status.text().split(" in ")[1].split()[1] in ("ms", "s")
    view.show_item(dataset="big")
    qtbot.waitUntil(lambda: view.sql.model.columns == ["id", "value", "kind"], timeout=10_000)
    assert view.sql.sql() == "SELECT * FROM big LIMIT 100"
    # a query the user wrote is theirs: another dataset does not replace it
    view.sql.set_sql("SELECT count(*) AS n FROM small")
    view.show_item(dataset="small")
    qtbot.waitUntil(lambda: view.current_name() == "small", timeout=10_000)
    idle(qtbot, ctx)
    assert view.sql.sql() == "SELECT count(*) AS n FROM small"


def test_sql_error_dims_the_old_result_and_clears_when_moving_on(view, ctx, qtbot, tmp_path):
    view.show_item(tab="sql")
    view.sql.set_sql("SELECT kind, count(*) AS n FROM big GROUP BY kind ORDER BY kind")
    view.sql.run()
    qtbot.waitUntil(lambda: view.sql.model.rowCount() == 2, timeout=10_000)
    assert not view.sql.dim.isEnabled()
    view.sql.set_sql("SELECT nope FROM big")
    view.sql.run()
    qtbot.waitUntil(lambda: view.sql.error != "", timeout=10_000)
    assert view.sql.dim.isEnabled() and view.sql.model.rowCount() == 2  # the old rows stay, dimmed
    assert "nope" in view.sql.status.text() and "previous query" in view.sql.status.text()
    assert view.sql.status.objectName() == "error"
    view.tabs.setCurrentIndex(0)  # the user moves on
    assert view.sql.error == "" and view.sql.status.text() == ""


def test_sql_history_is_kept_and_chosen(view, ctx, qtbot):
    from mlops_desktop.gui.views.data_sql import SqlPanel

    view.show_item(tab="sql")
    for sql in ("SELECT 1 AS one", "SELECT max(id) AS top FROM big"):
        view.sql.set_sql(sql)
        view.sql.run()
        qtbot.waitUntil(lambda: view.sql.last_sql == sql, timeout=10_000)  # noqa: B023 - waited here
    assert view.sql.history[:2] == ["SELECT max(id) AS top FROM big", "SELECT 1 AS one"]
    box = view.sql.history_box
    assert box.itemData(2) == "SELECT 1 AS one"
    box.activated.emit(2)
    assert view.sql.sql() == "SELECT 1 AS one"
    again = SqlPanel(ctx)  # the next start reads the same history from the settings
    qtbot.addWidget(again)
    assert again.history[:2] == view.sql.history[:2]


def test_sql_editor_completes_table_and_column_names(view, ctx, qtbot):
    from PySide6.QtCore import Qt

    view.show_item(tab="sql")
    editor = view.sql.editor
    assert {"big", "id", "value", "kind"} <= set(editor.names())
    editor.setPlainText("SELECT va")
    editor.moveCursor(editor.textCursor().MoveOperation.End)
    editor.setFocus()
    qtbot.keyClicks(editor, "l")
    popup = editor.completer.popup()
    qtbot.waitUntil(popup.isVisible, timeout=3000)
    assert editor.completer.currentCompletion() == "value"
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert editor.toPlainText() == "SELECT value" and not popup.isVisible()
    qtbot.keyClicks(editor, " FROM b")
    qtbot.keyClick(editor, Qt.Key.Key_Space, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Space asks for names
    qtbot.waitUntil(popup.isVisible, timeout=3000)
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.toPlainText() == "SELECT value FROM big"


def test_numbers_are_right_aligned_in_the_data_tables(view, ctx, qtbot):
    from PySide6.QtCore import Qt

    right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    role = Qt.ItemDataRole.TextAlignmentRole
    view.show_item(tab="sql")
    view.sql.set_sql("SELECT kind, count(*) AS n, avg(value) AS mean FROM big GROUP BY kind")
    view.sql.run()
    qtbot.waitUntil(lambda: view.sql.model.rowCount() == 2, timeout=10_000)
    m = view.sql.model
    assert [m.data(m.index(0, c), role) == right for c in range(3)] == [False, True, True]
    assert m.headerData(1, Qt.Orientation.Horizontal, role) == right
    versions = view.versions_model
    cols = versions.columns
    assert versions.data(versions.index(0, cols.index("rows")), role) == right  # "2,000,000"
    assert versions.data(versions.index(0, cols.index("mode")), role) != right
    lazy = view.table_model
    assert lazy.data(lazy.index(0, 0), role) == right and lazy.data(lazy.index(0, 2), role) != right
    idle(qtbot, ctx)


def test_rejects_summary_groups_by_rule_and_column(view, ctx, qtbot, tmp_path):
    from mlops_desktop.data.contract import contract_from_dict

    path = tmp_path / "trips.csv"
    path.write_text("id,fare,zone\n1,-3,n\n2,-12.5,s\n3,abc,n\n4,5,up\n5,6,n\n")
    contract = contract_from_dict({"columns": {"fare": {"type": "float64", "min": 0},
                                               "zone": {"allowed": ["n", "s"]}}}, "test")
    ingest(ctx.workspace, [str(path)], "trips", contract=contract)
    view.show_item(dataset="trips@1", tab="rejects")
    qtbot.waitUntil(lambda: view.rejects.summary is not None and view.rejects.summary.rows == 4, timeout=10_000)
    assert view.rejects.labels() == ["fare < min 0: 2", "fare not a valid float64: 1", "zone not an allowed value: 1"]
    assert view.rejects.rows.rowCount() == 4
    idle(qtbot, ctx)


def test_ingest_draft_keeps_a_number_column_numeric_despite_na(view, ctx, qtbot, tmp_path):
    dialog = _dialog_with_preview(view, qtbot, tmp_path / "Fares 2024.csv",
                                  "id,fare\n1,10.5\n2,n/a\n3,7\n4,8.25\n", rows=4)
    assert dialog.dataset.text() == "fares_2024"  # from the file name
    draft = dialog.contract.toPlainText()
    assert '[columns.fare]\ntype = "float64"' in draft and "'n/a'" in draft
    assert dialog.null_words.text() == "n/a"  # proposed as a null word
    dialog.start()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=15_000)
    assert (dialog.result.rows_stored, dialog.result.rows_rejected) == (4, 0)
    version = catalog.resolve(ctx.workspace.db, "fares_2024")
    assert version.schema["fare"] == "float64"
    assert lake.scan(ctx.workspace, version).collect()["fare"].to_list() == [10.5, None, 7.0, 8.25]
    idle(qtbot, ctx)


def test_ingest_dialog_names_the_dataset_from_a_typed_path(view, ctx, qtbot, tmp_path):
    folder = tmp_path / "sales"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    dialog = view.open_ingest()
    qtbot.addWidget(dialog)
    dialog.paths.setText(str(folder / "*.csv"))
    dialog.load_preview()  # the Preview button, or Enter in the files field
    assert dialog.dataset.text() == "sales"
    dialog.dataset.setText("mine")
    dialog.paths.setText(str(folder / "a.csv"))
    dialog.load_preview()
    assert dialog.dataset.text() == "mine"  # a name the user typed stays
    qtbot.waitUntil(lambda: dialog.preview_model.rowCount() == 1, timeout=10_000)
    idle(qtbot, ctx)


def test_status_bar_error_clears_when_the_user_moves_on(ctx, qtbot, big):
    from mlops_desktop.gui.app import make_window

    window = make_window(ctx)
    qtbot.addWidget(window)
    window.show()
    window.navigate("data")
    data = window.area("data")
    qtbot.waitUntil(lambda: data.current_version() is not None, timeout=10_000)
    ctx.notifications.error("SQL query", "query failed: no column nope")
    assert "nope" in window.status_message.text()
    data.tabs.setCurrentIndex(TABS_SQL)
    assert window.status_message.text() == ""
    ctx.notifications.success("Ingest trips: done")
    data.tabs.setCurrentIndex(0)
    assert window.status_message.text() == "Ingest trips: done"  # a completion is no stale error
    ctx.notifications.warning("Inspect gpu1", "unreachable")
    window.navigate("jobs")
    assert window.status_message.text() == ""
    idle(qtbot, ctx)
    window.close()


TABS_SQL = 3


def test_sql_cancel_drops_the_rows_of_a_cancelled_query(view, ctx, qtbot, monkeypatch):
    import threading

    from mlops_desktop.data import query as query_module

    release = threading.Event()

    original = query_module.query

    def slow_query(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the real query, held until cancelled
        release.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(query_module, "query", slow_query)
    view.show_item(tab="sql")
    view.sql.set_sql("SELECT 1 AS one")
    view.sql.run()
    assert view.sql.cancel_button.isEnabled()
    view.sql.cancel()
    release.set()
    qtbot.waitUntil(lambda: view.sql.status.text().startswith("cancelled"), timeout=10_000)
    assert view.sql.last_sql != "SELECT 1 AS one" and view.sql.model.columns != ["one"]
    idle(qtbot, ctx)


def test_profile_plot_follows_the_theme(view, ctx, qtbot, qapp):
    from mlops_desktop.gui import theme

    view.show_item(tab="profile")
    qtbot.waitUntil(lambda: bool(view.profile.bars()), timeout=15_000)
    light = view.profile.plot.backgroundBrush().color().lightness()
    assert light > 200, "the histogram's background is dark on the light theme"
    theme.apply(qapp, "dark")
    try:
        view.on_theme_changed()
        assert view.profile.plot.backgroundBrush().color().lightness() < 60
        assert view.profile.plot.getAxis("left").textPen().color().lightness() > 150
    finally:
        theme.apply(qapp, "light")
    idle(qtbot, ctx)
