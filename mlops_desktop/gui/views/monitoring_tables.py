"""The Monitoring area's tables: drift per feature (score, verdict, sparkline over the window) with a reference vs
current distribution overlay, the A/B arms side by side with the verdicts, and the alerts with silence/acknowledge
and the rules with "Add rule"."""

from __future__ import annotations

import math
import time
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui import theme
from mlops_desktop.gui.row_model import RowTableModel
from mlops_desktop.monitoring.dashboard import sparkline


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _table(model: RowTableModel) -> QTableView:
    t = QTableView()
    t.setModel(model)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setAlternatingRowColors(True)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class DriftModel(RowTableModel):
    columns = ("Version", "Feature", "Kind", "Method", "Score", "Threshold", "Drift", "Over the window")
    numeric_columns = frozenset({4, 5})

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        version, f, spark = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(col)
        if role == Qt.ItemDataRole.ForegroundRole and col == 6 and f.drifted:
            return QColor(theme.STATUS_COLORS[theme.current_mode()].get("failed", "#d73a49"))
        if role == Qt.ItemDataRole.ToolTipRole and col == 4:
            return "a p-value (drift below the threshold)" if f.score_is_p_value else \
                "a distance (drift at or above the threshold)"
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return [version, f.column, f.kind, f.method, _num(f.score), _num(f.threshold),
                "DRIFT" if f.drifted else "ok", spark][col]


class DriftPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.summary = QLabel("No drift computed yet.")
        self.summary.setWordWrap(True)
        self.window_box = QComboBox()
        for label, seconds in (("last 15 min", 900), ("last hour", 3600), ("last 6 h", 21600),
                               ("last 24 h", 86400)):
            self.window_box.addItem(label, seconds)
        self.window_box.setCurrentIndex(1)
        self.refresh_button = QPushButton("Compute drift")
        bar.addWidget(self.summary, 1)
        bar.addWidget(QLabel("Window:"))
        bar.addWidget(self.window_box)
        bar.addWidget(self.refresh_button)
        lay.addLayout(bar)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.model = DriftModel(self)
        self.table = _table(self.model)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._show_overlay(cur.row()))
        split.addWidget(self.table)
        theme.configure_pyqtgraph()
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setTitle("Reference vs current")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        theme.style_plot(self.plot)
        split.addWidget(self.plot)
        split.setSizes([620, 420])
        lay.addWidget(split, 1)
        self.overlays: dict[tuple[str, str], Any] = {}

    @property
    def window_s(self) -> float:
        return float(self.window_box.currentData())

    def apply_theme(self) -> None:
        theme.style_plot(self.plot)

    def set_result(self, result: dict[str, Any]) -> None:
        report = result["report"]
        rows: list[Any] = []
        lines = list(report.notes)
        self.overlays = {}
        for vd in report.versions:
            r = vd.report
            lines.append(f"Version {vd.version}: {vd.rows:,} rows against {vd.reference} — "
                         + (f"DATASET DRIFT ({len(r.drifted_features)} of {len(r.features)} features: "
                            f"{', '.join(r.drifted_features)})" if r.dataset_drift else
                            f"no dataset drift ({len(r.drifted_features)} of {len(r.features)} features drifted)")
                         + (f"; predictions vs {vd.prediction_reference}: "
                            f"{'DRIFT' if vd.prediction.drifted else 'ok'}" if vd.prediction else ""))
            timeline = result["timelines"].get(vd.version, {})
            for f in [*r.features, *([vd.prediction] if vd.prediction else [])]:
                rows.append((vd.version, f, sparkline(timeline.get(f.column, []))))
            for column, ov in result["overlays"].get(vd.version, {}).items():
                self.overlays[(vd.version, column)] = ov
        self.summary.setText("\n".join(lines) or "No predictions in the window.")
        self.model.beginResetModel()
        self.model.rows = rows
        self.model.endResetModel()
        if rows:
            first = next((i for i, (_v, f, _s) in enumerate(rows) if f.drifted), 0)
            self.table.selectRow(first)
            self._show_overlay(first)

    def _show_overlay(self, row: int) -> None:
        self.plot.clear()
        if row < 0 or row >= len(self.model.rows):
            return
        version, f, _spark = self.model.rows[row]
        ov = self.overlays.get((version, f.column))
        self.plot.setTitle(f"{f.column} (version {version}): reference vs current")
        if ov is None:
            return
        ref_c, cur_c = theme.SERIES_COLORS[0], theme.SERIES_COLORS[1]
        if ov["kind"] == "numeric":
            edges = ov["edges"]
            self.plot.plot(edges, ov["reference"], stepMode="center", fillLevel=0, pen=pg.mkPen(ref_c, width=2),
                           brush=pg.mkBrush(QColor(ref_c).red(), QColor(ref_c).green(), QColor(ref_c).blue(), 70),
                           name="reference (training)")
            self.plot.plot(edges, ov["current"], stepMode="center", pen=pg.mkPen(cur_c, width=2),
                           name="current window")
            self.plot.getAxis("bottom").setTicks(None)
        else:
            cats = ov["categories"]
            xs = list(range(len(cats)))
            self.plot.addItem(pg.BarGraphItem(x=[x - 0.2 for x in xs], height=ov["reference"], width=0.4,
                                              brush=ref_c, name="reference (training)"))
            self.plot.addItem(pg.BarGraphItem(x=[x + 0.2 for x in xs], height=ov["current"], width=0.4,
                                              brush=cur_c, name="current window"))
            self.plot.getAxis("bottom").setTicks([list(zip(xs, [str(c)[:12] for c in cats], strict=True))])
        self.plot.setLabel("left", "share")


class ArmsModel(RowTableModel):
    columns = ("Arm", "Version", "Requests", "Req/s", "Errors", "p50 ms", "p95 ms", "p99 ms", "Outcomes", "Quality",
               "Predictions")
    numeric_columns = frozenset({2, 3, 4, 5, 6, 7, 8, 9})

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(index.column())
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        a = self.rows[index.row()]
        preds = (f"mean {_num(a.prediction_mean)}" if a.prediction_mean is not None else
                 ", ".join(f"{k}: {v:.0%}" for k, v in sorted(a.class_shares.items())[:4]))
        err = "–" if a.error_rate is None else f"{a.error_rate:.2%}"
        return [a.arm, a.version, f"{a.requests:,}", _num(a.requests_per_s, 3), err, _num(a.p50_ms, 3),
                _num(a.p95_ms, 3), _num(a.p99_ms, 3), f"{a.outcomes:,}", _num(a.quality, 3), preds][index.column()]


class ArmsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Arms side by side over the last hour (prediction log + monitored series)."), 1)
        bar.addWidget(QLabel("Outcomes:"))
        self.outcomes = QLineEdit()
        self.outcomes.setPlaceholderText("lake dataset with request_id (optional)")
        self.outcomes.setMinimumWidth(240)
        self.outcome_column = QLineEdit("outcome")
        self.outcome_column.setMaximumWidth(110)
        self.outcome_column.setToolTip("the outcome column of that dataset")
        bar.addWidget(self.outcomes)
        bar.addWidget(self.outcome_column)
        self.refresh_button = QPushButton("Compare arms")
        bar.addWidget(self.refresh_button)
        lay.addLayout(bar)
        self.verdicts = QLabel("")
        self.verdicts.setWordWrap(True)
        self.verdicts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.verdicts)
        self.model = ArmsModel(self)
        self.table = _table(self.model)
        lay.addWidget(self.table, 1)

    def set_result(self, report: Any) -> None:
        self.model.beginResetModel()
        self.model.rows = list(report.arms)
        self.model.endResetModel()
        lines = [f"• {c.verdict}" for c in report.comparisons] + [f"({n})" for n in report.notes]
        self.verdicts.setText("\n".join(lines))


class AlertsModel(RowTableModel):
    columns = ("#", "Rule", "State", "Severity", "Value", "Since", "Acknowledged", "Action")
    numeric_columns = frozenset({0, 4})

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        a = self.rows[index.row()]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(index.column())
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 2:
            status = {"firing": "failed", "pending": "running", "resolved": "finished"}.get(a.state, "")
            return theme.status_color(status) if status else None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        since = time.strftime("%H:%M:%S", time.localtime(a.started_at))
        acked = f"{a.acked_by}: {a.ack_note}" if a.acked_by else "–"
        state = a.state + (" (silenced)" if a.silenced else "")
        return [str(a.id), a.rule, state, a.severity, _num(a.value), since, acked, a.action or "–"][index.column()]


class RulesModel(RowTableModel):
    columns = ("Rule", "Expression", "For", "Keep firing", "Severity", "Deployment", "Action", "From")

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        from mlops_desktop.monitoring.rules import format_duration

        r = self.rows[index.row()]
        return [r.name, r.expr, format_duration(r.for_s), format_duration(r.keep_firing_for_s), r.severity,
                r.deployment, r.action, r.source][index.column()]


class AlertsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.status = QLabel("")
        bar.addWidget(self.status, 1)
        self.silence_button = QPushButton("Silence…")
        self.ack_button = QPushButton("Acknowledge…")
        self.add_rule_button = QPushButton("Add rule…")
        for b in (self.silence_button, self.ack_button, self.add_rule_button):
            bar.addWidget(b)
        lay.addLayout(bar)
        split = QSplitter(Qt.Orientation.Vertical)
        self.model = AlertsModel(self)
        self.table = _table(self.model)
        split.addWidget(self.table)
        self.rules_model = RulesModel(self)
        self.rules = _table(self.rules_model)
        split.addWidget(self.rules)
        split.setSizes([400, 200])
        lay.addWidget(split, 1)

    def selected_alert(self) -> Any | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()] if rows else None

    def set_result(self, result: dict[str, Any]) -> None:
        self.model.beginResetModel()
        self.model.rows = list(result["alerts"])
        self.model.endResetModel()
        self.rules_model.beginResetModel()
        self.rules_model.rows = list(result["rules"])
        self.rules_model.endResetModel()
        firing = sum(1 for a in result["alerts"] if a.state == "firing")
        pending = sum(1 for a in result["alerts"] if a.state == "pending")
        self.status.setText(f"{firing} firing, {pending} pending, {len(result['silences'])} active silences, "
                            f"{len(result['rules'])} rules")


class RuleDialog(QDialog):
    """Add an alert rule: the same fields as `alerts add`, checked by the core when saved."""

    def __init__(self, deployment: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add alert rule")
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.expr = QLineEdit("p99_latency > 0.5")
        self.for_ = QLineEdit("1m")
        self.keep = QLineEdit("0s")
        self.severity = QComboBox()
        self.severity.addItems(["warning", "critical", "info"])
        self.scope = QLineEdit(deployment or "*")
        self.action = QComboBox()
        self.action.addItems(["none", "revert"])
        self.summary = QLineEdit()
        for label, w in (("Name", self.name), ("Expression", self.expr), ("For", self.for_),
                         ("Keep firing for", self.keep), ("Severity", self.severity), ("Deployment", self.scope),
                         ("When it fires", self.action), ("Summary", self.summary)):
            form.addRow(label, w)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(lambda: self._check())
        buttons.rejected.connect(lambda: self.reject())
        form.addRow(buttons)
        self.rule: Any = None

    def _check(self) -> None:
        from mlops_desktop.errors import MlopsError
        from mlops_desktop.monitoring.rules import Rule, parse_duration

        try:
            self.rule = Rule(self.name.text().strip(), self.expr.text(),
                             for_s=parse_duration(self.for_.text() or 0, "for"),
                             keep_firing_for_s=parse_duration(self.keep.text() or 0, "keep firing for"), severity=self.severity.currentText(),
                             deployment=self.scope.text().strip() or "*", summary=self.summary.text(),
                             action=self.action.currentText(), source="gui")
        except MlopsError as exc:
            self.error.setText(str(exc))
            return
        self.accept()
