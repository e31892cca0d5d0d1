"""Which columns the runs table shows, per experiment: chosen ones are kept, the rest follow the data.

Until the user picks columns for an experiment, it shows the params that differ between its runs and the
metrics they have, as many as fit the table's width (so at 1280x800 nothing needs a horizontal scroll). A pick
in the Columns menu is kept for that experiment (and "All runs") across restarts. Widths the user set win.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMenu

from mlops_desktop.gui.runs_model import OPTIONAL_ATTRS, RunsTableModel
from mlops_desktop.gui.runs_table import DATA_COLUMN_WIDTH, RunsTable, default_columns

SETTINGS_KEY = "experiments/columns_by_experiment"
# caps for fitted widths; BASE_WIDTH is what the defaults plan for each base column (the status column widens,
# up to its cap, only for the longer "no update since ..." of a quiet run)
MAX_WIDTH = {"status": 150, "name": 180, "experiment": 140, "started": 96, "duration": 72, "host": 90, "user": 80}
BASE_WIDTH = {"status": 90, "name": 180, "experiment": 140, "started": 96, "duration": 72, "host": 90, "user": 80}
DATA_MAX_WIDTH = 120


class ColumnChooser(QObject):
    def __init__(self, ctx: Any, model: RunsTableModel, table: RunsTable, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model = model
        self.table = table
        self.scope = "all"
        self.widths: dict[str, int] = {}
        self._sizing = False
        self._measured_base: int | None = None   # the base columns' real widths at the last fit
        self.chosen: dict[str, dict[str, list[str]]] = self._load()
        table.horizontalHeader().sectionResized.connect(self._on_section_resized)
        table.resized.connect(self._on_table_resized)

    def _on_table_resized(self) -> None:
        if self.scope not in self.chosen:   # the defaults follow the room there is
            self.apply()

    # -- persistence -----------------------------------------------------------------------------------------
    def _load(self) -> dict[str, dict[str, list[str]]]:
        s = self.ctx.settings
        try:
            raw = s.value(SETTINGS_KEY)
            data = json.loads(raw) if isinstance(raw, str) else {}
            chosen = {str(k): {kind: [str(x) for x in v.get(kind, [])] for kind in ("attrs", "params", "metrics")}
                      for k, v in data.items() if isinstance(v, dict)}
        except (ValueError, TypeError, AttributeError):
            chosen = {}
        if not chosen:   # the one list kept before columns were per experiment
            try:
                old = json.loads(str(s.value("experiments/columns", "")) or "null")
                if isinstance(old, dict):
                    chosen["all"] = {"attrs": [], "params": list(old.get("params", [])),
                                     "metrics": list(old.get("metrics", []))}
            except (ValueError, TypeError):
                pass
        return chosen

    def _save(self) -> None:
        self.ctx.settings.setValue(SETTINGS_KEY, json.dumps(self.chosen))

    def reload_settings(self) -> None:
        self.chosen = self._load()

    # -- choosing --------------------------------------------------------------------------------------------
    def set_scope(self, experiment_id: int | None) -> None:
        self.scope = "all" if experiment_id is None else str(experiment_id)

    def current(self) -> dict[str, list[str]]:
        """The columns for the scope: the user's pick, or the defaults for the rows loaded now."""
        pick = self.chosen.get(self.scope)
        if pick is not None:
            return pick
        attrs = ["experiment"] if self.scope == "all" else []
        base = self._measured_base if self._measured_base is not None else self._base_width(attrs)
        room = (max(self.table.viewport().width(), 640) - base) // DATA_COLUMN_WIDTH
        params, metrics = default_columns(self.model.runs, int(room))
        return {"attrs": attrs, "params": params, "metrics": metrics}

    def _base_width(self, attrs: list[str]) -> int:
        return sum(BASE_WIDTH[a] for a in ("status", "name", "started", "duration", *attrs))

    def apply(self) -> None:
        self._measured_base = None
        for _fit in range(2):   # plan with estimated widths, then again with the widths the base columns got
            cols = self.current()
            if (self.model.chosen("param"), self.model.chosen("metric"), self.model.shown_attrs()) != (
                    cols["params"], cols["metrics"], [a for a in OPTIONAL_ATTRS if a in cols["attrs"]]):
                self.model.set_columns(cols["params"], cols["metrics"], cols["attrs"])
            self.table.grouped_header.set_groups([c.kind for c in self.model.columns])
            self.size()
            if self.scope in self.chosen:
                break
            header = self.table.horizontalHeader()
            measured = sum(header.sectionSize(i) for i, c in enumerate(self.model.columns) if c.kind == "attr")
            if measured == self._measured_base:
                break
            self._measured_base = measured
        self._measured_base = None

    def toggle(self, kind: str, key: str, on: bool) -> None:
        cols = {k: list(v) for k, v in self.current().items()}
        target = cols[{"attr": "attrs", "param": "params", "metric": "metrics"}[kind]]
        if on and key not in target:
            target.append(key)
        elif not on and key in target:
            target.remove(key)
        self.chosen[self.scope] = cols
        self._save()
        self.apply()

    def reset(self) -> None:
        self.chosen.pop(self.scope, None)
        self._save()
        self.apply()

    def fill_menu(self, menu: QMenu) -> None:
        store = self.ctx.workspace.tracking
        menu.clear()
        cols = self.current()
        in_scope_params = sorted({k for r in self.model.runs for k in r.params})
        in_scope_metrics = sorted({k for r in self.model.runs for k in r.metrics})
        sections = (("attr", "Run", list(OPTIONAL_ATTRS), cols["attrs"]),
                    ("param", "Parameters", in_scope_params or store.all_param_keys(), cols["params"]),
                    ("metric", "Metrics", in_scope_metrics or store.all_metric_keys(), cols["metrics"]))
        for kind, title, keys, chosen in sections:
            menu.addSection(title)
            for key in keys[:80]:
                action = menu.addAction(OPTIONAL_ATTRS.get(key, key) if kind == "attr" else key)
                action.setCheckable(True)
                action.setChecked(key in chosen)
                action.toggled.connect(lambda on, k=key, kd=kind: self.toggle(kd, k, on))
        menu.addSeparator()
        reset = menu.addAction("Show the defaults (params that vary, metrics that exist)")
        reset.setEnabled(self.scope in self.chosen)
        reset.triggered.connect(self.reset)

    # -- widths ----------------------------------------------------------------------------------------------
    def size(self) -> None:
        """Widths the user set (remembered per column) win; other columns fit their content, capped."""
        self._sizing = True
        header = self.table.horizontalHeader()
        try:
            for c, col in enumerate(self.model.columns):
                width = self.widths.get(col.spec)
                if width is None:
                    self.table.resizeColumnToContents(c)
                    cap = MAX_WIDTH.get(col.key, 120) if col.kind == "attr" else DATA_MAX_WIDTH
                    width = max(56, min(header.sectionSize(c) + 10, cap))
                header.resizeSection(c, width)
            self._fit_data_columns()
        finally:
            self._sizing = False

    def _fit_data_columns(self) -> None:
        """With default columns, squeeze params and metrics (not below 60 px; their headers elide) so that the
        table needs no horizontal scroll; widths the user set are left alone."""
        if self.scope in self.chosen:
            return
        header = self.table.horizontalHeader()
        cols = list(enumerate(self.model.columns))
        data = [i for i, c in cols if c.kind != "attr" and c.spec not in self.widths]
        if not data:
            return
        used = sum(header.sectionSize(i) for i, _c in cols if i not in data)
        room = self.table.viewport().width() - used - 2
        wanted = sum(header.sectionSize(i) for i in data)
        if wanted <= room:
            return
        share = max(60, room // len(data))
        for i in data:
            header.resizeSection(i, min(header.sectionSize(i), share))

    def _on_section_resized(self, index: int, _old: int, new: int) -> None:
        if not self._sizing and 0 <= index < len(self.model.columns):
            self.widths[self.model.columns[index].spec] = new
