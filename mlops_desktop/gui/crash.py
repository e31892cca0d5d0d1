"""Crash handling: a crash (the app stopped) leaves a report in the workspace that the next start shows; an error
caught in a slot is logged and posted as a notification, and the app goes on."""

from __future__ import annotations

import faulthandler
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

log = logging.getLogger(__name__)

FAULT_LOG = "faulthandler.log"


class CrashHandler:
    """Install once at start-up.

    A Python exception that reaches the event loop (raised in a slot or a Qt virtual method) did not stop the app:
    it is logged with its traceback and handed to ``on_exception`` (the notification channel), and no crash report
    is written, since the next start must not claim the app stopped. Crashes are what stops the app: a hard crash
    (segfault, abort) is written by faulthandler, and the start-up code calls ``write_report`` for an exception that
    ends the process."""

    def __init__(self, crash_dir: Path) -> None:
        self.crash_dir = crash_dir
        self.on_exception: Callable[[BaseException], object] | None = None
        self._fault_file: IO[str] | None = None
        self._was_enabled = False
        self._previous_hook = sys.excepthook
        self.caught = 0  # errors caught in slots this session

    def install(self) -> None:
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        self._was_enabled = faulthandler.is_enabled()  # e.g. pytest's, or python -X faulthandler
        self._fault_file = open(self.crash_dir / FAULT_LOG, "a", encoding="utf-8")  # noqa: SIM115 - lives on
        faulthandler.enable(self._fault_file, all_threads=True)
        sys.excepthook = self._hook

    def uninstall(self) -> None:
        sys.excepthook = self._previous_hook
        if self._fault_file is not None:
            faulthandler.disable()
            self._fault_file.close()
            self._fault_file = None
            if self._was_enabled and sys.__stderr__ is not None:
                faulthandler.enable(sys.__stderr__, all_threads=True)  # hand a hard crash back to whoever had it
            path = self.crash_dir / FAULT_LOG
            if path.exists() and path.stat().st_size == 0:
                path.unlink()

    def _hook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous_hook(exc_type, exc, tb)
            return
        self.caught += 1
        log.error("unexpected error (the app goes on)", exc_info=(exc_type, exc, tb))
        if self.on_exception is not None:
            try:
                self.on_exception(exc)
            except Exception:  # noqa: BLE001 - the hook itself must never raise
                pass

    def write_report(self, exc: BaseException) -> Path:
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.crash_dir / f"crash-{stamp}-{os.getpid()}.txt"
        from mlops_desktop import __version__

        text = (f"MLOps Desktop {__version__} crash report\n"
                f"time: {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                f"python: {sys.version.split()[0]}  platform: {platform.platform()}\n\n"
                + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        path.write_text(text, encoding="utf-8")
        return path


def pending_reports(crash_dir: Path) -> list[Path]:
    """Reports not yet shown: crash-*.txt files and a non-empty faulthandler log from a previous process."""
    if not crash_dir.is_dir():
        return []
    reports = sorted(crash_dir.glob("crash-*.txt"))
    fault = crash_dir / FAULT_LOG
    if fault.exists() and fault.stat().st_size > 0:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(fault.stat().st_mtime))
        moved = crash_dir / f"crash-{stamp}-fatal.txt"
        fault.replace(moved)
        reports.append(moved)
    return reports


def mark_shown(reports: list[Path]) -> None:
    for path in reports:
        try:
            path.replace(path.with_suffix(".seen"))
        except OSError:
            pass
