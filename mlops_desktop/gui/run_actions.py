"""Managing runs from the runs table: rename, tag, move to another experiment, delete (each in a worker)."""

from __future__ import annotations

from typing import Any, cast

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QInputDialog, QMenu, QMessageBox, QWidget

from mlops_desktop.tracking.entities import Run


class RunActions:
    """Mixed into the Experiments area; needs ``ctx``, ``table``, ``tabs``, ``model``, ``detail``,
    ``selected_runs()`` and ``_fill_experiments()`` from it."""

    ctx: Any
    table: Any
    tabs: Any
    model: Any
    detail: Any

    def _as_widget(self) -> QWidget:
        return cast(QWidget, self)

    def selected_runs(self) -> list[Run]:
        raise NotImplementedError

    def _fill_experiments(self) -> None:
        raise NotImplementedError

    # -- managing runs ---------------------------------------------------------------------------------------
    def _context_menu(self, pos: Any) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        menu = QMenu(self._as_widget())
        if len(runs) == 1:
            menu.addAction("Rename…", lambda: self.rename_run(runs[0]))
        menu.addAction("Add tag…", lambda: self.tag_runs(runs))
        menu.addAction("Move to experiment…", lambda: self.move_runs(runs))
        menu.addAction("Copy run id" + ("s" if len(runs) > 1 else ""),
                       lambda: QGuiApplication.clipboard().setText("\n".join(r.uuid for r in runs)))
        if len(runs) >= 2:
            menu.addAction("Compare", lambda: self.tabs.setCurrentIndex(2))   # the Compare tab
        if len(runs) == 1:
            from mlops_desktop.gui.notebook_action import open_in_notebook

            menu.addAction("Open in notebook", lambda: open_in_notebook(self.ctx, "run", runs[0].uuid,
                                                                        sorted(runs[0].metrics)[:4]))
        menu.addSeparator()
        menu.addAction(f"Delete {len(runs)} run{'s' if len(runs) > 1 else ''}…", self.delete_selected)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _write(self, title: str, fn: Any) -> None:
        def job(*, progress: Any) -> None:
            fn(self.ctx.workspace.tracking)

        self.ctx.tasks.submit(job, title=title, on_done=lambda _r: self._after_write())

    def _after_write(self) -> None:
        self._fill_experiments()
        self.model.reload(keep_loaded=True)
        self.detail.reload()

    def rename_run(self, run: Run) -> None:
        name, ok = QInputDialog.getText(self._as_widget(), "Rename run", "Name:", text=run.name)
        if ok and name.strip():
            self._write("Rename run", lambda s: s.update_run(run.uuid, name=name.strip()))

    def tag_runs(self, runs: list[Run]) -> None:
        text, ok = QInputDialog.getText(self._as_widget(), "Add tag", "Tag as key=value:")
        if not ok or not text.strip():
            return
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            self.ctx.notifications.error("Tag not added", f"{text!r} is not key=value")
            return
        self._write("Tag runs", lambda s: [s.set_tags(r.uuid, {key.strip(): value.strip()}) for r in runs])

    def move_runs(self, runs: list[Run]) -> None:
        exps = self.ctx.workspace.tracking.list_experiments()
        names = [e.name for e in exps]
        name, ok = QInputDialog.getItem(self._as_widget(), "Move runs", f"Move {len(runs)} run(s) to experiment:", names, 0, True)
        if not ok or not name.strip():
            return

        def move(store: Any) -> None:
            exp = store.get_or_create_experiment(name.strip())
            for r in runs:
                store.update_run(r.uuid, experiment_id=exp.id)

        self._write("Move runs", move)

    def delete_selected(self) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        names = ", ".join(r.name or r.uuid[:8] for r in runs[:5]) + (" …" if len(runs) > 5 else "")
        answer = QMessageBox.question(self._as_widget(), "Delete runs", f"Delete {len(runs)} run(s)?\n{names}\n\n"
                                      "Deleted runs are hidden and can be restored from the command line "
                                      "until the workspace is purged.")
        if answer == QMessageBox.StandardButton.Yes:
            self._write(f"Delete {len(runs)} run(s)", lambda s: [s.delete_run(r.uuid) for r in runs])

