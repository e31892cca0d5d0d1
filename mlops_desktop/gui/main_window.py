"""The main window: sidebar of areas, command palette, tasks/notifications/log docks, remembered layout."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import cast

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from mlops_desktop.gui import theme
from mlops_desktop.gui.icons import icon
from mlops_desktop.gui.notify import Notification
from mlops_desktop.gui.palette import CommandPalette, PaletteEntry
from mlops_desktop.gui.panels import LogView, NotificationsPanel, QtLogHandler, TasksPanel
from mlops_desktop.gui.shortcuts import RefocusAfterDialogs, ShortcutsDialog, collect
from mlops_desktop.gui.views.base import AppContext, available_areas

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, log_handler: QtLogHandler | None = None,
                 area_modules: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        ctx.navigate = self.navigate
        ctx.clear_status = self.clear_status
        self.setWindowTitle(f"MLOps Desktop — {ctx.workspace.root}")
        self.setWindowIcon(icon("app"))
        self.area_classes = available_areas(area_modules)
        self.areas: dict[str, QWidget] = {}

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setFixedWidth(172)
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stack = QStackedWidget()
        self.placeholders: dict[str, QWidget] = {}
        for cls in self.area_classes:
            item = QListWidgetItem(icon(cls.icon_name), cls.title)
            item.setData(Qt.ItemDataRole.UserRole, cls.area_id)
            item.setToolTip(cls.title)
            self.sidebar.addItem(item)
            holder = QWidget()
            self.placeholders[cls.area_id] = holder
            self.stack.addWidget(holder)
        if not self.area_classes:
            empty = QLabel("No areas are available in this build.")
            empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.stack.addWidget(empty)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.sidebar.currentRowChanged.connect(self._on_sidebar_row)

        # docks
        self.tasks_panel = TasksPanel(ctx.tasks)
        self.notifications_panel = NotificationsPanel(ctx.notifications)
        self.log_handler = log_handler or QtLogHandler()
        self.log_view = LogView(self.log_handler)
        self.docks: dict[str, QDockWidget] = {}
        for name, title, widget in (("tasks", "Tasks", self.tasks_panel),
                                    ("notifications", "Notifications", self.notifications_panel),
                                    ("log", "Log", self.log_view)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{name}")
            dock.setWidget(widget)
            dock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
            self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
            dock.hide()
            self.docks[name] = dock
        self.tabifyDockWidget(self.docks["tasks"], self.docks["notifications"])
        self.tabifyDockWidget(self.docks["notifications"], self.docks["log"])

        self._build_status_bar()
        self._build_menus()
        self.palette_shortcut = QShortcut(QKeySequence("Ctrl+K"), self)
        self.palette_shortcut.setWhatsThis("Go to any area, experiment, run or action (command palette)")
        self.palette_shortcut.activated.connect(lambda: self.open_palette())
        self.refocus = RefocusAfterDialogs(self)
        ctx.notifications.posted.connect(self._on_notification)
        ctx.tasks.task_added.connect(self._update_task_button)
        ctx.tasks.task_ended.connect(self._update_task_button)
        self._restore_layout()

    # -- building --------------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_message = QLabel("")
        self.status_message.setTextFormat(Qt.TextFormat.PlainText)
        self.status_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.task_button = QPushButton("No tasks")
        self.task_button.setFlat(True)
        self.task_button.clicked.connect(lambda: self.toggle_dock("tasks"))
        hint = QLabel("Ctrl+K: go to…")
        hint.setObjectName("muted")
        ws_label = QLabel(str(self.ctx.workspace.root))
        ws_label.setObjectName("muted")
        self.ws_label = ws_label
        bar.addWidget(self.status_message, 1)
        bar.addPermanentWidget(ws_label)
        bar.addPermanentWidget(hint)
        bar.addPermanentWidget(self.task_button)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(lambda: self.clear_status(errors_only=False))
        self.status_level = ""

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        open_ws = file_menu.addAction("Open workspace…")
        open_ws.triggered.connect(lambda: self.choose_workspace())
        demo = file_menu.addAction("Fill with demo data")
        demo.triggered.connect(lambda: self.fill_demo())
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit")
        quit_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Quit)] if QKeySequence(
            QKeySequence.StandardKey.Quit).count() else [QKeySequence("Ctrl+Q")])  # some platforms define none
        quit_action.triggered.connect(lambda: self.close())

        view_menu = menu.addMenu("&View")
        palette_action = view_menu.addAction("Go to…")
        palette_action.setShortcut(QKeySequence("Ctrl+K"))
        palette_action.setWhatsThis("Go to any area, experiment, run or action (command palette)")
        palette_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # the QShortcut handles it
        palette_action.triggered.connect(lambda: self.open_palette())
        for i, cls in enumerate(self.area_classes):
            action = view_menu.addAction(cls.title)
            if i < 9:
                action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _c=False, a=cls.area_id: self.navigate(a))
        view_menu.addSeparator()
        for name, dock in self.docks.items():
            action = dock.toggleViewAction()
            action.setText(name.capitalize())
            view_menu.addAction(action)
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("Theme")
        group = QActionGroup(self)
        current = self.ctx.settings.value("theme", self.ctx.workspace.settings.theme)
        for choice in ("system", "light", "dark"):
            action = QAction(choice.capitalize(), self, checkable=True)
            action.setChecked(choice == current)
            action.triggered.connect(lambda _c=False, ch=choice: self.set_theme(ch))
            group.addAction(action)
            theme_menu.addAction(action)
        refresh = view_menu.addAction("Refresh")
        refresh.setShortcut(QKeySequence.StandardKey.Refresh)
        refresh.triggered.connect(lambda: self.refresh_current())

        help_menu = menu.addMenu("&Help")
        keys = help_menu.addAction("Keyboard shortcuts")
        keys.setShortcuts([QKeySequence(QKeySequence.StandardKey.HelpContents), QKeySequence("Ctrl+/")])
        keys.triggered.connect(lambda: self.show_shortcuts())
        about = help_menu.addAction("About MLOps Desktop")
        about.triggered.connect(lambda: self.show_about())
        crash = help_menu.addAction("Crash reports folder")
        crash.triggered.connect(lambda: self.ctx.notifications.info(
            "Crash reports are kept in", str(self.ctx.workspace.paths.crash_reports)))

    # -- navigation ------------------------------------------------------------------------------------------
    def area_ids(self) -> list[str]:
        return [cls.area_id for cls in self.area_classes]

    def area(self, area_id: str) -> QWidget:
        """The area widget, created on first use (keeps start-up to the area actually shown)."""
        if area_id not in self.areas:
            cls = next(c for c in self.area_classes if c.area_id == area_id)
            widget: QWidget
            try:
                widget = cls(self.ctx)
            except Exception as exc:  # noqa: BLE001 - one broken area must not take the window down
                note = self.ctx.notifications.exception(f"The {cls.title} area could not open", exc)
                label = QLabel(f"The {cls.title} area could not open:\n{note.message}\n\n"
                               "Details are in the notifications and the log.")
                label.setTextFormat(Qt.TextFormat.PlainText)
                label.setAlignment(Qt.AlignmentFlag.AlignCenter)
                label.setWordWrap(True)
                widget = label
            holder = self.placeholders[area_id]
            index = self.stack.indexOf(holder)
            self.stack.removeWidget(holder)
            holder.deleteLater()
            self.stack.insertWidget(index, widget)
            self.areas[area_id] = widget
        return self.areas[area_id]

    def navigate(self, area_id: str, **kwargs: object) -> None:
        if area_id not in self.area_ids():
            self.ctx.notifications.warning("Not available", f"the area {area_id!r} is not part of this build")
            return
        row = self.area_ids().index(area_id)
        if self.sidebar.currentRow() != row:
            self.sidebar.setCurrentRow(row)  # -> _on_sidebar_row
        widget = self.area(area_id)
        if kwargs and hasattr(widget, "show_item"):
            widget.show_item(**kwargs)

    def current_area_id(self) -> str | None:
        item = self.sidebar.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _on_sidebar_row(self, row: int) -> None:
        if row < 0 or row >= len(self.area_classes):
            return
        area_id = self.area_classes[row].area_id
        widget = self.area(area_id)
        if self.stack.currentWidget() is not widget:
            self.clear_status()  # an error about the area the user left is stale now
        self.stack.setCurrentWidget(widget)
        self.ctx.settings.setValue("main/last_area", area_id)
        if hasattr(widget, "refresh"):
            try:
                widget.refresh()
            except Exception as exc:  # noqa: BLE001 - one broken area must not take the window down
                self.ctx.notifications.exception(f"{self.area_classes[row].title} could not refresh", exc)

    def fill_demo(self) -> None:
        """Real scikit-learn and PyTorch runs plus a lake dataset, made in a worker (progress and cancel)."""
        from mlops_desktop.demo import fill_demo

        def done(_result: object) -> None:
            for widget in self.areas.values():
                if hasattr(widget, "refresh"):
                    widget.refresh()

        self.ctx.tasks.submit(fill_demo, self.ctx.workspace.root, title="Fill with demo data", key="demo",
                              on_done=done)

    def refresh_current(self) -> None:
        area_id = self.current_area_id()
        widget = self.areas.get(area_id) if area_id else None
        refresh = getattr(widget, "refresh", None)
        if callable(refresh):
            refresh()

    # -- palette ---------------------------------------------------------------------------------------------
    def palette_providers(self) -> list:
        def areas(_text: str) -> list[PaletteEntry]:
            return [PaletteEntry(f"Go to {c.title}", "area", lambda a=c.area_id: self.navigate(a))
                    for c in self.area_classes]

        def actions(_text: str) -> list[PaletteEntry]:
            base = [PaletteEntry(label, "action", cb) for label, cb in self.ctx.actions]
            base += [PaletteEntry("Show tasks", "action", lambda: self.show_dock("tasks")),
                     PaletteEntry("Show notifications", "action", lambda: self.show_dock("notifications")),
                     PaletteEntry("Show log", "action", lambda: self.show_dock("log")),
                     PaletteEntry("Open workspace…", "action", self.choose_workspace)]
            for choice in ("system", "light", "dark"):
                base.append(PaletteEntry(f"Theme: {choice}", "action", lambda c=choice: self.set_theme(c)))
            return base

        providers = [areas, actions]
        for widget_cls in self.area_classes:
            provider = getattr(widget_cls, "palette_entries", None)
            if provider is not None:
                providers.append(lambda text, p=provider, a=widget_cls.area_id: p(self.ctx, text))
        return providers

    def open_palette(self) -> CommandPalette:
        dialog = CommandPalette(self.palette_providers(), self)
        dialog.open()
        self.command_palette = dialog
        return dialog

    # -- docks, notifications --------------------------------------------------------------------------------
    def show_dock(self, name: str) -> None:
        dock = self.docks[name]
        dock.show()
        dock.raise_()

    def toggle_dock(self, name: str) -> None:
        dock = self.docks[name]
        if dock.isVisible():
            dock.hide()
        else:
            self.show_dock(name)

    def _update_task_button(self, _task: object = None) -> None:
        running = self.ctx.tasks.running()
        visible = [t for t in running if not (t.key or "").startswith("_")]
        self.task_button.setText(f"{len(visible)} running task{'s' if len(visible) != 1 else ''}"
                                 if visible else "No tasks")

    def _on_notification(self, note: Notification) -> None:
        color = {"error": "#e5534b", "warning": "#d29922", "success": "#3fb950"}.get(note.level)
        self.status_level = note.level
        text = note.title + (f": {note.message.splitlines()[0]}" if note.message else "")
        self.status_message.setText(text if len(text) < 200 else text[:199] + "…")
        self.status_message.setStyleSheet(f"color: {color};" if color else "")
        self.status_message.setToolTip(note.message)
        self._message_timer.start(15_000 if note.level == "error" else 6_000)

    def clear_status(self, errors_only: bool = True) -> None:
        """Clear the status bar's message (by default only an error or a warning: a completion may stay)."""
        if errors_only and self.status_level not in ("error", "warning"):
            return
        self._message_timer.stop()
        self.status_level = ""
        self.status_message.setText("")
        self.status_message.setToolTip("")
        self.status_message.setStyleSheet("")

    # -- workspace and theme ---------------------------------------------------------------------------------
    def choose_workspace(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open workspace", str(self.ctx.workspace.root))
        if path:
            self.switch_workspace(Path(path))

    def switch_workspace(self, root: Path) -> None:
        from mlops_desktop.workspace import Workspace

        try:
            new = Workspace.open(root)
        except Exception as exc:  # noqa: BLE001 - shown in words
            self.ctx.notifications.exception(f"Cannot open the workspace {root}", exc)
            return
        self.ctx.tasks.cancel_all()
        old, self.ctx.workspace = self.ctx.workspace, new
        self.setWindowTitle(f"MLOps Desktop — {new.root}")
        self.ws_label.setText(str(new.root))
        for widget in self.areas.values():
            if hasattr(widget, "on_workspace_changed"):
                widget.on_workspace_changed()
        old.close()
        self.ctx.notifications.info("Workspace opened", str(new.root))

    def set_theme(self, choice: str) -> None:
        self.ctx.settings.setValue("theme", choice)
        theme.apply(cast(QApplication, QApplication.instance()), choice)
        for i, cls in enumerate(self.area_classes):
            self.sidebar.item(i).setIcon(icon(cls.icon_name))
        for widget in self.areas.values():
            if hasattr(widget, "on_theme_changed"):
                widget.on_theme_changed()

    def show_about(self) -> None:
        from mlops_desktop import __version__

        QMessageBox.about(self, "About MLOps Desktop",
                          f"MLOps Desktop {__version__}\nWorkspace: {self.ctx.workspace.root}")

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(collect(self), self)
        dialog.open()
        self.shortcuts_dialog = dialog
        return dialog

    def show_crash_reports(self, reports: list[Path]) -> None:
        if not reports:
            return
        text = reports[-1].read_text(encoding="utf-8", errors="replace")
        box = QMessageBox(QMessageBox.Icon.Warning, "MLOps Desktop stopped unexpectedly last time",
                          f"{len(reports)} crash report(s) were written in {reports[-1].parent}. "
                          f"The latest is shown below; please attach it to a bug report.", parent=self)
        box.setDetailedText(text)
        box.open()
        self.crash_box = box
        self.ctx.notifications.warning("Crash report from the last session", str(reports[-1]))

    # -- layout persistence ----------------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        s = self.ctx.settings
        geometry = s.value("main/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = s.value("main/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        last = s.value("main/last_area")
        ids = self.area_ids()
        if ids:
            self.sidebar.setCurrentRow(ids.index(last) if last in ids else
                                       (ids.index("experiments") if "experiments" in ids else 0))

    def save_layout(self) -> None:
        s = self.ctx.settings
        s.setValue("main/geometry", self.saveGeometry())
        s.setValue("main/state", self.saveState())
        for widget in self.areas.values():
            if hasattr(widget, "save_state"):
                widget.save_state()
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.save_layout()
        started = time.monotonic()
        if not self.ctx.tasks.shutdown(3000):
            log.warning("some background tasks did not stop within %.1fs", time.monotonic() - started)
        super().closeEvent(event)
