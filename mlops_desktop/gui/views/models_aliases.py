"""The Models area's alias actions: where the aliases point, their timeline, Promote and Roll back (with the reason
the audit log keeps), and "where did an alias point at a given time"; mixed into the area (models_view.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from mlops_desktop.gui.views import models_data as data
from mlops_desktop.gui.views.models_widgets import ReasonDialog

if TYPE_CHECKING:
    from PySide6.QtWidgets import QComboBox, QDateTimeEdit, QLabel, QPushButton, QWidget

    from mlops_desktop.gui.views.base import AppContext
    from mlops_desktop.gui.views.models_widgets import AliasTimeline
    from mlops_desktop.registry.entities import ModelVersion


class AliasActions:
    """Needs the area's page, selection, context and the Aliases tab's widgets (built by the area)."""

    ctx: AppContext
    page: data.ModelPage | None
    dialog: ReasonDialog | None
    timeline: AliasTimeline
    current_aliases: QLabel
    when_alias: QComboBox
    when: QDateTimeEdit
    when_button: QPushButton
    when_answer: QLabel

    if TYPE_CHECKING:
        def selected_version(self) -> ModelVersion | None: ...

        def refresh(self) -> None: ...

    def _show_aliases(self, page: data.ModelPage) -> None:
        from html import escape

        from mlops_desktop.gui.views.models_widgets import alias_color

        entries = []
        for change in reversed(page.history):
            head, tail = data.describe_change(change)
            entries.append((change.alias, head, tail, change.kind == "rollback"))
        self.timeline.set_entries(entries)
        known = sorted({c.alias for c in page.history})
        if [self.when_alias.itemText(i) for i in range(self.when_alias.count())] != known:
            current = self.when_alias.currentText()
            self.when_alias.clear()
            self.when_alias.addItems(known)
            if current in known:
                self.when_alias.setCurrentText(current)
            elif "production" in known:
                self.when_alias.setCurrentText("production")
        self.when_button.setEnabled(bool(known))
        if not page.model.aliases:
            self.current_aliases.setText("<i>No aliases yet.</i>")
            return
        since = {c.alias: c for c in page.history}
        rows = []
        for alias, version in sorted(page.model.aliases.items()):
            last = since.get(alias)
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last.ts)) if last else ""
            lock = " <span style='color:gray'>(protected)</span>" if alias in page.protected else ""
            rows.append(f"<tr><td><span style='background:{alias_color(alias).name()}; color:white; "
                        f"font-weight:600'>&nbsp;{escape(alias)}&nbsp;</span>{lock}</td>"
                        f"<td>&nbsp;→ <b>v{version}</b></td><td>&nbsp;since {when}</td></tr>")
        self.current_aliases.setText("<table cellspacing='4'>" + "".join(rows) + "</table>"
                                     "<p style='color:gray'>Moving a protected alias needs a reason; a rollback "
                                     "always does.</p>")


    def open_promote(self) -> ReasonDialog | None:
        mv = self.selected_version()
        if mv is None or self.page is None:
            return None
        page = self.page
        names = ["production", "champion", "challenger"]
        names += [a for a in sorted(page.model.aliases) if a not in names]

        def effect(alias: str) -> str:
            current = page.model.aliases.get(alias)
            if current == mv.version:
                return f"{alias} already points at v{mv.version}"
            return f"{alias}: v{current} → v{mv.version}" if current is not None else f"{alias}: new, → v{mv.version}"

        dialog = ReasonDialog(f"Promote {mv.ref}", names, page.protected, describe=effect, parent=cast("QWidget", self))
        dialog.submitted.connect(lambda alias, reason, d=dialog: self.promote(alias, mv.version, reason, d))
        return self._open(dialog)

    def open_rollback(self) -> ReasonDialog | None:
        if self.page is None or not self.page.model.aliases:
            return None
        page = self.page

        def effect(alias: str) -> str:
            current = page.model.aliases.get(alias)
            target = data.rollback_target(page.history, alias)
            if target is None:
                return f"{alias} has pointed only at v{current}: nothing to roll back to"
            return f"{alias}: v{current} → v{target} (the version before)"

        names = sorted(page.model.aliases, key=lambda a: (a not in page.protected, a))
        dialog = ReasonDialog(f"Roll back {page.model.name}", names, page.protected, describe=effect,
                              rollback=True, parent=cast("QWidget", self))
        dialog.submitted.connect(lambda alias, reason, d=dialog: self.roll_back(alias, reason, d))
        return self._open(dialog)

    def _open(self, dialog: ReasonDialog) -> ReasonDialog:
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = dialog
        dialog.finished.connect(lambda _r, d=dialog: self._dialog_closed(d))
        dialog.open()
        return dialog

    def _dialog_closed(self, dialog: ReasonDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    def promote(self, alias: str, version: int, reason: str, dialog: ReasonDialog | None = None) -> None:
        """Point `alias` at `version` (the same core call as `models alias set`)."""
        if self.page is None:
            return
        name = self.page.model.name
        self._alias_task(data.set_alias, (self.ctx.workspace, name, alias, version, reason),
                         f"Promote {name}/{version} to {alias}", dialog)

    def roll_back(self, alias: str, reason: str, dialog: ReasonDialog | None = None) -> None:
        """Move `alias` back (the same core call as `models rollback`)."""
        if self.page is None:
            return
        name = self.page.model.name
        self._alias_task(data.rollback, (self.ctx.workspace, name, alias, reason), f"Roll back {name}@{alias}", dialog)

    def _alias_task(self, fn: Any, args: tuple, title: str, dialog: ReasonDialog | None) -> None:
        from mlops_desktop.gui.notify import describe

        def done(change: Any) -> None:
            if dialog is not None:
                dialog.accept()
            head, tail = data.describe_change(change)
            self.ctx.notifications.success(head, tail)
            self.refresh()

        def failed(exc: BaseException) -> None:
            if dialog is not None:
                dialog.failed(describe(exc))

        self.ctx.tasks.submit(fn, *args, title=title, owner=cast("QWidget", self), quiet=True, on_done=done,
                              on_error=failed)

    def look_up_alias(self) -> None:
        """'production pointed at v2 on 2026-12-01 12:00' (mlflow#2169's question), from the audit log."""
        if self.page is None or not self.when_alias.currentText():
            return
        name, alias = self.page.model.name, self.when_alias.currentText()
        when = self.when.dateTime().toSecsSinceEpoch() + 59.999   # the whole minute shown
        label = self.when.dateTime().toString("yyyy-MM-dd HH:mm")

        def done(version: int | None) -> None:
            self.when_answer.setText(f"{alias} pointed at v{version} on {label}" if version is not None else
                                     f"{alias} pointed at no version on {label}")

        self.ctx.tasks.submit(data.alias_at, self.ctx.workspace, name, alias, float(when), title=f"{name}@{alias}",
                              quiet=True, owner=cast("QWidget", self), key=f"alias-at-{id(self)}",
                              on_done=done)

