"""The review page's evidence panels: checks, holdout metrics against the champion, shadow figures, drift of the
shadowed traffic, back-test windows, image, lineage; each a small table over the core's review page."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.gui.theme import current_mode
from mlops_desktop.gui.views.data_panels import pad_cells

GOOD = {"light": "#2e7d32", "dark": "#81c784"}
BAD = {"light": "#c62828", "dark": "#ef5350"}
WAIT = {"light": "#1565c0", "dark": "#64b5f6"}
STATE_COLORS = {"passed": GOOD, "approved": GOOD, "failed": BAD, "rejected": BAD, "expired": BAD,
                "waiting": WAIT, "running": WAIT, "review": WAIT, "deploying": WAIT}


def state_color(state: str) -> QColor | None:
    colors = STATE_COLORS.get(state)
    return QColor(colors[current_mode()]) if colors else None


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


class CellsModel(RowTableModel):
    """Rows of plain values; a column named "state" is coloured by what it says; `signed` columns by their sign."""

    def __init__(self, columns: tuple[str, ...], parent: Any = None, *, signed: tuple[int, ...] = (),
                 numeric: tuple[int, ...] = ()) -> None:
        super().__init__(parent)
        self.columns = columns
        self.numeric_columns = frozenset(numeric)
        self.signed = signed
        self.higher_is_better: list[bool] = []

    def set_rows(self, rows: list[tuple[Any, ...]], higher_is_better: list[bool] | None = None) -> None:
        self.beginResetModel()
        self.rows = rows
        self.higher_is_better = higher_is_better or [True] * len(rows)
        self.endResetModel()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() in self.signed and isinstance(value, float):
                return f"{value:+.4f}"
            return fmt(value)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(index.column())
        if role == Qt.ItemDataRole.ForegroundRole:
            if self.columns[index.column()] == "State":
                return state_color(str(value))
            if index.column() in self.signed and isinstance(value, float) and value != 0:
                better = (value > 0) == self.higher_is_better[index.row()]
                return QColor((GOOD if better else BAD)[current_mode()])
        if role == Qt.ItemDataRole.ToolTipRole and isinstance(value, str) and len(value) > 60:
            return value
        return None


def small_table(model: CellsModel, *, stretch_last: bool = True) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setShowGrid(False)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(22)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(stretch_last)
    view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    pad_cells(view)
    return view


def fit_height(view: QTableView, rows: int, max_rows: int = 14) -> None:
    shown = max(1, min(rows, max_rows))
    view.setFixedHeight(view.horizontalHeader().sizeHint().height() + shown * 22 + 4)
    view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if rows > max_rows
                                    else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


LOWER_IS_BETTER = {"rmse", "mae", "error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms"}


class EvidencePanel(QScrollArea):
    """Every piece of evidence of one review, in panels the reviewer scans top to bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        self.setWidget(body)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 12, 4)
        self.summary = QLabel("")
        self.summary.setObjectName("heading")
        self.summary.setWordWrap(True)
        self.message = QLabel("")
        self.message.setObjectName("muted")
        self.message.setWordWrap(True)
        layout.addWidget(self.summary)
        layout.addWidget(self.message)
        self.checks = CellsModel(("Check", "Kind", "State", "Summary"), self)
        self.metrics = CellsModel(("Metric", "Candidate", "Champion", "Diff"), self, signed=(3,), numeric=(1, 2, 3))
        self.shadow = CellsModel(("Figure", "Candidate", "Champion"), self, numeric=(1, 2))
        self.drift = CellsModel(("Column", "Method", "Score", "Drifted"), self, numeric=(2,))
        self.windows = CellsModel(("Window", "Test start", "Rows", "Candidate", "Champion"), self, numeric=(2,))
        self.lineage = CellsModel(("", ""), self)
        self.tables: dict[str, QTableView] = {}
        self.groups: dict[str, QGroupBox] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        panels = [("checks", "Checks", self.checks, 0, 0, 1, 2),
                  ("metrics", "Holdout metrics against the champion", self.metrics, 1, 0, 1, 1),
                  ("shadow", "Shadow traffic on live samples", self.shadow, 1, 1, 1, 1),
                  ("drift", "Drift of the shadowed inputs", self.drift, 2, 0, 1, 1),
                  ("lineage", "Candidate, image and lineage", self.lineage, 2, 1, 1, 1),
                  ("windows", "Back-test windows", self.windows, 3, 0, 1, 2)]
        for key, title, model, row, col, rs, cs in panels:
            box = QGroupBox(title)
            inner = QVBoxLayout(box)
            view = small_table(model)
            if key == "lineage":
                view.horizontalHeader().hide()
            elif key in ("metrics", "shadow", "drift"):  # numbers beside their names, not a screen apart
                view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
            inner.addWidget(view)
            note = QLabel("")
            note.setObjectName("muted")
            note.setWordWrap(True)
            note.hide()
            inner.addWidget(note)
            inner.addStretch(1)  # tables sit at the top of a box its neighbour made taller
            box.setProperty("note", note)
            self.tables[key] = view
            self.groups[key] = box
            grid.addWidget(box, row, col, rs, cs)
        layout.addLayout(grid)
        layout.addStretch(1)
        self.clear()

    def clear(self) -> None:
        self.summary.setText("Pick a candidate in the queue")
        self.message.setText("Each candidate's checks, metrics against the champion and live shadow samples show "
                             "here; label samples and approve or reject below.")
        for model in (self.checks, self.metrics, self.shadow, self.drift, self.windows, self.lineage):
            model.set_rows([])
        for box in self.groups.values():
            box.hide()

    def _note(self, key: str, text: str) -> None:
        note = self.groups[key].property("note")
        note.setText(text)
        note.setVisible(bool(text))

    def _fill(self, key: str, model: CellsModel, rows: list[tuple[Any, ...]], empty: str = "",
              higher: list[bool] | None = None) -> None:
        model.set_rows(rows, higher)
        fit_height(self.tables[key], len(rows))
        self.tables[key].setVisible(bool(rows))
        self._note(key, "" if rows else empty)
        self.groups[key].setVisible(bool(rows) or bool(empty))

    def show_page(self, page: dict[str, Any]) -> None:
        req = page["request"]
        champ = req.get("champion_ref") or "no champion yet"
        self.summary.setText(f"#{req['id']}  {req['ref']}  against  {champ}   —   {req['state']}")
        registered = f"registered by {req['candidate_by']}, started by {req['requested_by']}"
        self.message.setText(f"{req['message']}   ·   policy {req['policy']}   ·   {registered}")
        self._fill("checks", self.checks, [(c["name"], c["kind"], c["state"], c["summary"]) for c in req["checks"]],
                   "this policy has no checks")
        diff = page.get("metric_diff") or []
        self._fill("metrics", self.metrics, [(m["metric"], m["candidate"], m["champion"], m["diff"]) for m in diff],
                   higher=[m["metric"] not in LOWER_IS_BETTER for m in diff])
        shadow = page.get("shadow")
        if shadow:
            cand, champ_fig = shadow.get("candidate") or {}, shadow.get("champion") or {}
            rows = [(k, cand.get(k), champ_fig.get(k) if k != "agreement" and k != "request_agreement" else None)
                    for k in cand]
            self._fill("shadow", self.shadow, rows, f"{shadow.get('requests', 0)} request(s) compared so far")
            self._note("shadow", f"arm {shadow.get('arm')}: {shadow.get('requests')} requests compared, "
                                 f"{shadow.get('disagreed_requests', 0)} disagreed")
        else:
            self._fill("shadow", self.shadow, [])
        drift = page.get("drift") or {}
        features = drift.get("features") or []
        self._fill("drift", self.drift, [(f["column"], f["method"], f["score"], f["drifted"]) for f in features],
                   drift.get("error", ""))
        if features:
            verdict = "the shadowed traffic drifted" if drift.get("dataset_drift") else "no dataset drift"
            self._note("drift", f"against {drift.get('reference')}: {verdict} "
                                f"({len(drift.get('drifted_features') or [])} of {len(features)} features)")
        cand = page["candidate"]
        lineage = [("registered by", f"{cand['created_by']}"), ("run", cand.get("run") or "–"),
                   ("trained on", ", ".join(f"{i['dataset']}@{i['version']}" for i in cand.get("inputs") or [])
                    or "–"), ("bundle", cand["bundle_hash"][:16]), ("flavor", cand["flavor"])]
        image = page.get("image") or {}
        if image:
            lineage += [("image", image.get("image") or "–"), ("digest", str(image.get("digest") or "–")[:23]),
                        ("latency", f"{fmt(image.get('latency_ms'), 1)} ms (budget {fmt(image.get('budget_ms'), 0)})")]
        if page.get("champion"):
            lineage.append(("champion bundle", page["champion"]["bundle_hash"][:16]))
        self._fill("lineage", self.lineage, lineage)
        windows = page.get("backtest_windows") or []
        self._fill("windows", self.windows, [(w["index"], w["test_start"], w["rows"],
                                              ", ".join(f"{k} {fmt(v)}" for k, v in (w["candidate"] or {}).items()),
                                              ", ".join(f"{k} {fmt(v)}" for k, v in (w["champion"] or {}).items()))
                                             for w in windows])
