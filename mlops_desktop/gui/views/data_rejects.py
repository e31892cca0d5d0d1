"""The Rejects tab of the Data area: how many rows broke each rule of each column, then every rejected row."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.gui.views.data_panels import make_table, muted
from mlops_desktop.gui.views.data_table import RowsModel

REJECT_ROWS = 1000


def read_rejects(ws: Any, ref: str, *, progress: Any) -> dict[str, Any]:
    """Worker: the summary by rule and column over every reject of a version, and its first rejected rows."""
    import polars as pl

    from mlops_desktop.data import catalog, lake
    from mlops_desktop.data.reject_summary import RejectSummary, summarise_frame

    version = catalog.resolve(ws.db, ref)
    files = lake.reject_files(ws, version)
    if not files:
        return {"ref": version.ref, "summary": RejectSummary(), "columns": [], "rows": []}
    frame = pl.scan_parquet([str(f) for f in files])
    summary = summarise_frame(frame, columns=frozenset(version.schema))
    progress.check()
    page = frame.head(REJECT_ROWS).collect()
    order = ["_source_line", "_reason"] + [c for c in page.columns if not c.startswith("_")] + ["_source_file"]
    page = page.select([c for c in order if c in page.columns])
    return {"ref": version.ref, "summary": summary, "columns": page.columns, "rows": page.rows()}


class RejectsPanel(QWidget):
    """The rows a version rejected: counts per rule and column ("fare < min 0: 2"), then each row with its file,
    line and reason."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.ref: str | None = None
        self.summary: Any = None
        self.status = muted()
        self.reasons = RowsModel(self)
        self.rows = RowsModel(self)
        self.reasons_view = make_table(self.reasons)
        self.rows_view = make_table(self.rows)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.reasons_view)
        split.addWidget(self.rows_view)
        split.setSizes([160, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)

    def show_version(self, ref: str | None) -> None:
        self.ref = ref
        self.summary = None
        self.reasons.set_rows([], [])
        self.rows.set_rows([], [])
        if ref is None:
            self.status.setText("")
            return
        self.status.setText("reading rejects…")
        self.ctx.tasks.submit(read_rejects, self.ctx.workspace, ref, title=f"Rejects of {ref}", key="data-rejects",
                              quiet=True, owner=self, on_done=self._on_rejects,
                              on_error=lambda _exc: self.status.setText("the rejects could not be read (see "
                                                                        "Notifications)"))

    def _on_rejects(self, result: dict[str, Any]) -> None:
        if result["ref"] != self.ref and self.ref is not None and "@" in self.ref:
            return
        summary = self.summary = result["summary"]
        if not summary.rows:
            self.status.setText(f"{result['ref']}: no rejected rows")
        else:
            shown = len(result["rows"])
            self.status.setText(
                f"{result['ref']}: {summary.rows:,} rejected row{'s' if summary.rows != 1 else ''} by rule and "
                f"column (a row that broke several rules counts under each). Below"
                f"{' the first ' + format(shown, ',') if shown < summary.rows else ''}: each row; line = line in "
                "the source file (row for Parquet, JSON arrays, SQLite and sheets)")
        self.reasons.set_rows(["column", "rule", "rows", "for example"],
                              [(r.column or "(row)", r.rule, r.rows, r.example) for r in summary.rules])
        self.rows.set_rows([c.lstrip("_").replace("source_", "") for c in result["columns"]], result["rows"])
        self.reasons_view.resizeColumnsToContents()
        self.rows_view.resizeColumnsToContents()
        for view in (self.reasons_view, self.rows_view):
            for c in range(view.model().columnCount()):
                view.setColumnWidth(c, min(view.columnWidth(c) + 10, 360))

    def labels(self) -> list[str]:
        """'fare < min 0: 2' per line of the summary (what the table shows, in one string each)."""
        return [f"{r.label}: {r.rows}" for r in (self.summary.rules if self.summary else [])]
