"""Crash handling: sys.excepthook and faulthandler write reports into the workspace; the next start shows them."""

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
    """Install once at start-up. Python exceptions that reach the event loop become a report file plus a call to
    ``on_exception`` (the notification channel); hard crashes (segfaults) are written by faulthandler."""

    def __init__(self, crash_dir: Path) -> None:
        self.crash_dir = crash_dir
        self.on_exception: Callable[[BaseException], object] | None = None
        self._fault_file: IO[str] | None = None
        self._previous_hook = sys.excepthook

    def install(self) -> None:
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        self._fault_file = open(self.crash_dir / FAULT_LOG, "a", encoding="utf-8")  # noqa: SIM115 - lives on
        faulthandler.enable(self._fault_file, all_threads=True)
        sys.excepthook = self._hook

    def uninstall(self) -> None:
        sys.excepthook = self._previous_hook
        if self._fault_file is not None:
            faulthandler.disable()
            self._fault_file.close()
            self._fault_file = None
            path = self.crash_dir / FAULT_LOG
            if path.exists() and path.stat().st_size == 0:
                path.unlink()

    def _hook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous_hook(exc_type, exc, tb)
            return
        path = self.write_report(exc)
        log.error("unexpected error, report written to %s", path)
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
