"""Start the desktop app (or render one view offscreen with --screenshot): checks, theme, crash handler, window."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlops_desktop.errors import MlopsError, UsageError

if TYPE_CHECKING:
    from mlops_desktop.gui.main_window import MainWindow
    from mlops_desktop.gui.views.base import AppContext
    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)

REQUIRED = [("PySide6", "PySide6"), ("pyqtgraph", "pyqtgraph"), ("numpy", "numpy")]


def missing_dependencies() -> list[str]:
    import importlib.util

    return [pip for module, pip in REQUIRED if importlib.util.find_spec(module) is None]


def display_problem(screenshot: bool) -> str | None:
    """A sentence saying why no window can be shown, or None."""
    if screenshot or os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return None
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return ("no display found: neither DISPLAY nor WAYLAND_DISPLAY is set. Start MLOps Desktop from a desktop "
                "session, use the commands (mlops-desktop --help), or render a view with --screenshot FILE")
    return None


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r} must look like 1280x800") from None
    if not (320 <= w <= 7680 and 240 <= h <= 4320):
        raise UsageError(f"--size {text!r} is out of range (320x240 to 7680x4320)")
    return w, h


def make_context(ws: Workspace, settings_path: Path | None = None) -> AppContext:
    """Services for the window; tests and benchmarks build the same context."""
    from PySide6.QtCore import QSettings

    from mlops_desktop.gui import collector
    from mlops_desktop.gui.notify import Notifications
    from mlops_desktop.gui.tasks import TaskRunner
    from mlops_desktop.gui.views.base import AppContext

    collector.install()  # cycles (and the widgets in them) are collected on the GUI thread, never on a worker
    notifications = Notifications()
    runner = TaskRunner(notifications)
    settings = QSettings(str(settings_path or ws.root / SETTINGS_FILE), QSettings.Format.IniFormat)
    return AppContext(workspace=ws, tasks=runner, notifications=notifications, settings=settings)


def make_window(ctx: AppContext, area_modules: list[tuple[str, str]] | None = None) -> MainWindow:
    from mlops_desktop.gui.main_window import MainWindow
    from mlops_desktop.gui.panels import QtLogHandler

    handler = QtLogHandler()
    logging.getLogger("mlops_desktop").addHandler(handler)
    logging.getLogger("mlops_desktop").setLevel(logging.INFO)
    window = MainWindow(ctx, handler, area_modules)
    window.destroyed.connect(lambda *_: logging.getLogger("mlops_desktop").removeHandler(handler))
    return window


def add_file_log(path: Path) -> logging.Handler | None:
    """Keep the session's log on disk too (rotated, 1 MB x 3), for bug reports."""
    from logging.handlers import RotatingFileHandler

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return None  # a read-only workspace still opens; the in-app log keeps working
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger("mlops_desktop").addHandler(handler)
    return handler


def route_qt_messages() -> Any:
    """Qt's own warnings go to the in-app log (and the log file), not to a terminal nobody watches."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("mlops_desktop.qt")
    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        if "propagateSizeHints" in message:  # offscreen platform noise
            return
        qt_log.log(levels.get(kind, logging.WARNING), "%s", message)

    return qInstallMessageHandler(handler)


def wait_until_idle(ctx: AppContext, timeout_s: float = 20.0) -> None:
    """Let queued work finish (queries, plot data) before a screenshot: an event loop, not processEvents spinning."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    quiet_ticks = [0]

    def tick() -> None:
        quiet_ticks[0] = quiet_ticks[0] + 1 if not ctx.tasks.running() else 0
        if quiet_ticks[0] >= 5 or time.monotonic() > deadline:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(40)
    loop.exec()
    timer.stop()


def screenshot(window: MainWindow, ctx: AppContext, path: Path, view: str | None, size: tuple[int, int]) -> None:
    area, _, sub = (view or "").partition(":")
    if area:
        if area not in window.area_ids():
            raise UsageError(f"--view {view!r}: no such view; choose from {', '.join(window.area_ids())}")
        window.navigate(area)
    window.resize(*size)
    window.show()
    wait_until_idle(ctx)
    current = window.areas.get(window.current_area_id() or "")
    if sub:
        if current is None or not hasattr(current, "show_item"):
            raise UsageError(f"--view {view!r}: the area {area!r} has no sub-views")
        current.show_item(tab=sub)
        wait_until_idle(ctx)
    image = window.grab().toImage()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):
        raise UsageError(f"cannot write the screenshot {path} (unknown image type or unwritable folder)")


def run(args: argparse.Namespace) -> int:
    missing = missing_dependencies()
    if missing:
        print(f"mlops-desktop: the desktop app needs the Python package(s) {', '.join(missing)}, which are not "
              f"installed.\n  hint: pip install {' '.join(missing)}", file=sys.stderr)
        return 1
    shot = getattr(args, "screenshot", None)
    problem = display_problem(bool(shot))
    if problem:
        print(f"mlops-desktop: {problem}", file=sys.stderr)
        return 1
    size = parse_size(getattr(args, "size", None) or "1280x800")
    if shot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtWidgets import QApplication

    from mlops_desktop.gui import collector, crash, theme
    from mlops_desktop.workspace import Workspace

    ws = Workspace.open(getattr(args, "home", None))
    previous_qt_handler = route_qt_messages()
    app = cast(QApplication, QApplication.instance() or QApplication([sys.argv[0], "-name", "mlops-desktop"]))
    app.setApplicationName("MLOps Desktop")
    app.setDesktopFileName("mlops-desktop")
    # A screenshot reads the user's GUI settings but writes only a scratch copy: the next real start must open
    # with the user's own window size, layout and area.
    scratch = scratch_settings(ws) if shot else None
    ctx = make_context(ws, Path(scratch.name) / SETTINGS_FILE if scratch is not None else None)
    file_log = add_file_log(ws.paths.logs / "desktop.log")
    theme_choice = getattr(args, "theme", None)
    theme.apply(app, theme_choice or str(ctx.settings.value("theme", ws.settings.theme)))
    handler = crash.CrashHandler(ws.paths.crash_reports)
    reports = crash.pending_reports(ws.paths.crash_reports)
    handler.install()
    handler.on_exception = lambda exc: ctx.notifications.exception("Unexpected error", exc)
    try:
        window = make_window(ctx)
        if shot:
            screenshot(window, ctx, Path(shot), getattr(args, "view", None), size)
            window.close()
            # every worker finished before the window (and what they report to) goes away, then the window
            # deleted here, on this thread, while the application still runs
            ctx.tasks.shutdown(30_000)
            window.deleteLater()
            app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            return 0
        if getattr(args, "view", None):
            area, _, sub = args.view.partition(":")
            window.navigate(area, **({"tab": sub} if sub else {}))
        window.show()
        if reports:
            window.show_crash_reports(reports)
            crash.mark_shown(reports)
        app.styleHints().colorSchemeChanged.connect(
            lambda _scheme: str(ctx.settings.value("theme", "system")) == "system" and window.set_theme("system"))
        app.setAttribute(Qt.ApplicationAttribute.AA_DontShowIconsInMenus, False)
        return int(app.exec())
    except MlopsError:
        raise  # the user's mistake (a bad --view): the command line says so, no crash report
    except BaseException as exc:
        # The app stops here: a real crash, whose report the next start shows.
        path = handler.write_report(exc)
        log.error("the app stopped on an unexpected error; report written to %s", path)
        raise
    finally:
        ctx.tasks.shutdown(3000)
        collector.uninstall(app)
        handler.uninstall()
        ws.close()
        from PySide6.QtCore import qInstallMessageHandler

        qInstallMessageHandler(previous_qt_handler)
        if file_log is not None:
            logging.getLogger("mlops_desktop").removeHandler(file_log)
            file_log.close()
        if scratch is not None:
            ctx.settings.sync()
            scratch.cleanup()


SETTINGS_FILE = "gui.ini"


def scratch_settings(ws: Workspace) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder holding a copy of the workspace's GUI settings (for runs that must not change them)."""
    scratch = tempfile.TemporaryDirectory(prefix="mlops-desktop-settings-")
    real = ws.root / SETTINGS_FILE
    if real.is_file():
        shutil.copyfile(real, Path(scratch.name) / SETTINGS_FILE)
    return scratch
