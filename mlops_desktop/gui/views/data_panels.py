"""Panels of the Data area: column profile with histograms and the lineage graph (SQL and rejects have their own
modules)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGraphicsScene,
    QGraphicsView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.theme import SERIES_COLORS
from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.gui.views.data_table import RowsModel, fmt_cell

QUERY_ROWS = 1000


def make_table(model: Any) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setAlternatingRowColors(True)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.verticalHeader().setDefaultSectionSize(22)
    view.horizontalHeader().setHighlightSections(False)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    pad_cells(view)
    return view


def pad_cells(view: QTableView) -> None:
    """Room between a right-aligned number and the text beside it."""
    view.setStyleSheet("QTableView::item { padding: 0px 6px; }")


def muted(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName("muted")
    label.setWordWrap(True)
    return label


# -- profile ---------------------------------------------------------------------------------------------------
def _profile(ws: Any, ref: str, *, progress: Any) -> dict[str, Any]:
    from mlops_desktop.data.profile import profile

    return profile(ws, ref, progress=progress)


class ProfilePanel(QWidget):
    """Column statistics of a version (cached in the catalog) and the histogram or top values of one column."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.ref: str | None = None
        self.result: dict[str, Any] | None = None
        self.model = RowsModel(self)
        self.table = make_table(self.model)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_column())
        self.plot: Any = None  # pyqtgraph loads with the first profile shown, not at start-up
        self.caption = muted()
        right = QWidget()
        self.right_layout = QVBoxLayout(right)
        self.right_layout.setContentsMargins(0, 0, 0, 0)
        self.right_layout.addWidget(self.caption)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(right)
        split.setSizes([560, 420])
        self.status = muted()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)

    def _ensure_plot(self) -> Any:
        if self.plot is None:
            import pyqtgraph as pg

            from mlops_desktop.gui.theme import configure_pyqtgraph

            configure_pyqtgraph()
            self.plot = pg.PlotWidget()
            self.plot.setMenuEnabled(False)
            self.plot.showGrid(x=True, y=True, alpha=0.2)
            self.right_layout.addWidget(self.plot, 1)
            self.on_theme_changed()
        return self.plot

    def on_theme_changed(self) -> None:
        """The plot takes the theme's colours at once (pyqtgraph keeps the ones it was built with)."""
        if self.plot is None:
            return
        from mlops_desktop.gui.theme import style_plot

        style_plot(self.plot)  # the same colours as every other plot (theme.plot_colors)

    def show_version(self, ref: str | None) -> None:
        if ref == self.ref and self.result is not None:
            return
        self.ref = ref
        self.result = None
        self.model.set_rows([], [])
        self._ensure_plot().clear()
        if ref is None:
            self.status.setText("")
            return
        self.status.setText(f"profiling {ref}…")
        self.ctx.tasks.submit(_profile, self.ctx.workspace, ref, title=f"Profile {ref}", key="data-profile",
                              quiet=True, owner=self, on_done=self._on_profile)

    def _on_profile(self, result: dict[str, Any]) -> None:
        if f"{result['dataset']}@{result['version']}" != self.ref:
            return
        self.result = result
        cached = " (cached)" if result.get("cached") else ""
        self.status.setText(f"{result['dataset']}@{result['version']}: {result['rows']:,} rows{cached}")
        rows = []
        for c in result["columns"]:
            q = c.get("quantiles") or {}
            rows.append((c["name"], c["dtype"], c["nulls"], f"{c['null_fraction']:.1%}", c["distinct"],
                         c.get("min"), c.get("max"), c.get("mean"), c.get("std"), q.get("0.5")))
        self.model.set_rows(["column", "type", "nulls", "null %", "distinct", "min", "max", "mean", "std",
                             "median"], rows)
        self.table.resizeColumnsToContents()
        if rows:
            self.table.selectRow(0)

    def _show_column(self) -> None:
        import pyqtgraph as pg

        self._ensure_plot().clear()
        if self.result is None:
            return
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        column = self.result["columns"][rows[0].row()]
        color = QColor(SERIES_COLORS[0])
        hist = column.get("histogram")
        if hist and hist["counts"]:
            edges, counts = hist["edges"], hist["counts"]
            width = (edges[1] - edges[0]) if len(edges) > 1 else 1.0
            centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
            self.plot.addItem(pg.BarGraphItem(x=centers, height=counts, width=width * 0.95, brush=color))
            self.plot.getAxis("bottom").setTicks(None)
            self.caption.setText(f"{column['name']}: histogram of {sum(counts):,} values in {len(counts)} bins")
            self.plot.autoRange()
            return
        top = column.get("top") or []
        if top:
            self.plot.addItem(pg.BarGraphItem(x=list(range(len(top))), height=[n for _, n in top], width=0.8,
                                              brush=color))
            labels = [(i, (fmt_cell(v) if v is not None else "null")[:14]) for i, (v, _) in enumerate(top)]
            self.plot.getAxis("bottom").setTicks([labels])
            self.caption.setText(f"{column['name']}: {len(top)} most frequent values")
            self.plot.autoRange()
        else:
            self.caption.setText(f"{column['name']}: no values to plot")

    def bars(self) -> list[Any]:
        if self.plot is None:
            return []
        import pyqtgraph as pg

        return [i for i in self.plot.getPlotItem().items if isinstance(i, pg.BarGraphItem)]


# -- lineage ---------------------------------------------------------------------------------------------------
def _lineage(ws: Any, ref: str, *, progress: Any) -> Any:
    from mlops_desktop.data.lineage import lineage

    return lineage(ws, ref)


class LineageView(QGraphicsView):
    """Dataset versions as boxes, sources on the left; an arrow per lineage edge labelled with the step."""

    node_activated = Signal(str)
    BOX_W, BOX_H, GAP_X, GAP_Y = 170, 46, 70, 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.nodes: dict[str, Any] = {}

    def set_graph(self, graph: Any) -> None:
        scene = self.scene()
        scene.clear()
        self.nodes = {}
        if graph is None:
            return
        depth = graph.depth()
        columns: dict[int, list[str]] = {}
        for ref in sorted(graph.nodes):
            columns.setdefault(depth[ref], []).append(ref)
        pal = self.palette()
        text_color = pal.color(pal.ColorRole.Text)
        pos: dict[str, QPointF] = {}
        for col, refs in columns.items():
            for row, ref in enumerate(refs):
                x = col * (self.BOX_W + self.GAP_X)
                y = row * (self.BOX_H + self.GAP_Y)
                pos[ref] = QPointF(x, y)
        for parent, child, _via in graph.edges:
            a, b = pos[parent], pos[child]
            start = QPointF(a.x() + self.BOX_W, a.y() + self.BOX_H / 2)
            end = QPointF(b.x(), b.y() + self.BOX_H / 2)
            scene.addLine(start.x(), start.y(), end.x(), end.y(), QPen(QColor("#8a8d91"), 1.4))
            scene.addEllipse(end.x() - 3, end.y() - 3, 6, 6, QPen(QColor("#8a8d91")), QBrush(QColor("#8a8d91")))
        for ref, info in graph.nodes.items():
            p = pos[ref]
            root = ref == graph.root
            color = QColor(SERIES_COLORS[0] if root else "#9aa0a6")
            fill = QColor(color)
            fill.setAlpha(60 if root else 25)
            box = scene.addRect(QRectF(p.x(), p.y(), self.BOX_W, self.BOX_H), QPen(color, 2 if root else 1),
                                QBrush(fill))
            box.setData(0, ref)
            box.setToolTip(f"{ref}\nmade by {info['made_by']}\n{info['rows']:,} rows, {info['rejected']:,} rejected")
            title = scene.addSimpleText(ref)
            title.setBrush(text_color)
            title.setPos(p.x() + 8, p.y() + 5)
            sub = scene.addSimpleText(f"{info['made_by']} · {info['rows']:,} rows"[:30])
            sub.setBrush(QColor("#8a8d91"))
            sub.setPos(p.x() + 8, p.y() + 24)
            self.nodes[ref] = box
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-20, -20, 20, 20))

    def mouseDoubleClickEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        item = self.itemAt(event.position().toPoint())
        while item is not None and item.data(0) is None:
            item = item.parentItem()
        if item is not None and item.data(0):
            self.node_activated.emit(str(item.data(0)))
            return
        super().mouseDoubleClickEvent(event)


class LineagePanel(QWidget):
    """Where a version came from and what was made from it; the runs that read it."""

    open_ref = Signal(str)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.ref: str | None = None
        self.graph: Any = None
        self.view = LineageView()
        self.view.node_activated.connect(self.open_ref)
        self.status = muted()
        self.runs = RowsModel(self)
        self.runs_view = make_table(self.runs)
        self.runs_view.setMaximumHeight(130)
        self.runs_view.doubleClicked.connect(self._open_run)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.status)
        layout.addWidget(self.view, 1)
        layout.addWidget(muted("Runs that read this version (double-click to open):"))
        layout.addWidget(self.runs_view)

    def show_version(self, ref: str | None) -> None:
        self.ref = ref
        self.view.set_graph(None)
        if ref is None:
            return
        self.ctx.tasks.submit(_lineage, self.ctx.workspace, ref, title=f"Lineage of {ref}", key="data-lineage",
                              quiet=True, owner=self, on_done=self._on_graph)

    def on_theme_changed(self) -> None:
        self.view.set_graph(self.graph)  # boxes and labels take the theme's text colour when drawn

    def _on_graph(self, graph: Any) -> None:
        self.graph = graph
        self.view.set_graph(graph)
        self.status.setText(f"{graph.root}: {len(graph.nodes) - 1} related versions, {len(graph.edges)} edges "
                            "(double-click a box to open it)")
        self.runs.set_rows(["run", "name", "version", "context"],
                           [(r["run"], r["run_name"], r["version"], r["context"]) for r in graph.runs])

    def _open_run(self, index: Any) -> None:
        if self.graph is not None and index.isValid():
            self.ctx.navigate("experiments", run_uuid=self.graph.runs[index.row()]["run"])
