"""The contract every main-window area follows, and the AppContext of services handed to each one.

An area is a QWidget subclass with class attributes ``area_id``, ``title``, ``icon_name`` and the constructor
``__init__(self, ctx: AppContext, parent=None)``. It may define ``refresh()`` (called when the area is shown or
the user asks for a refresh) and ``on_workspace_changed()`` (called after ``ctx.workspace`` was replaced).
Its module lives in ``mlops_desktop/gui/views/`` and is listed in AREA_MODULES; the sidebar shows an area only
when its module imports. A module names its area class in ``AREA = MyView`` (or defines exactly one QWidget
subclass with an ``area_id``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from mlops_desktop.gui.notify import Notifications
    from mlops_desktop.gui.tasks import TaskRunner
    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)

# Sidebar order. (area_id, module). A missing module hides its area.
AREA_MODULES: list[tuple[str, str]] = [
    ("data", "mlops_desktop.gui.views.data_view"),
    ("experiments", "mlops_desktop.gui.views.experiments_view"),
    ("jobs", "mlops_desktop.gui.views.jobs_view"),
    ("hosts", "mlops_desktop.gui.views.hosts_view"),
    ("models", "mlops_desktop.gui.views.models_view"),
    ("deployments", "mlops_desktop.gui.views.deployments_view"),
    ("monitoring", "mlops_desktop.gui.views.monitoring_view"),
    ("approvals", "mlops_desktop.gui.views.approvals_view"),
    ("backtests", "mlops_desktop.gui.views.backtest_view"),
]


@dataclass
class AppContext:
    """Services shared by every area: pass this in, never reach for globals."""

    workspace: Workspace
    tasks: TaskRunner
    notifications: Notifications
    settings: QSettings
    # Set by the main window: navigate("experiments", run_uuid=...) shows an area and forwards the keywords
    # to its ``show_item(**kwargs)`` when it has one.
    navigate: Callable[..., None] = field(default=lambda area_id, **kw: None)
    # Set by the main window: clears the status bar's message. Areas call it when the user moves on (picks another
    # item or tab), so an error about what was shown before does not linger.
    clear_status: Callable[[], None] = field(default=lambda: None)
    # Commands an area offers to the command palette: (label, callback); areas append in their constructor.
    actions: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def add_action(self, label: str, callback: Callable[[], object]) -> None:
        self.actions.append((label, callback))


class AreaView(QWidget):
    """Optional convenience base class; any QWidget with the same attributes and constructor works too."""

    area_id: str = ""
    title: str = ""
    icon_name: str = ""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def refresh(self) -> None:
        """Re-read what the area shows (called when it becomes visible)."""

    def on_workspace_changed(self) -> None:
        """``self.ctx.workspace`` was replaced; drop everything read from the old one."""
        self.refresh()


def area_class_of(module: Any) -> type[AreaView] | None:
    cls = getattr(module, "AREA", None)
    if cls is not None:
        return cast("type[AreaView]", cls)
    found = [obj for obj in vars(module).values()
             if isinstance(obj, type) and issubclass(obj, QWidget) and bool(getattr(obj, "area_id", None))
             and obj.__module__ == module.__name__]
    # duck-typed areas (a QWidget with the same attributes and constructor) are typed as AreaView
    return cast("type[AreaView]", found[0]) if len(found) == 1 else None


def available_areas(modules: list[tuple[str, str]] | None = None) -> list[type[AreaView]]:
    """Area classes whose module exists, in sidebar order. A module that exists but fails to import is logged."""
    areas: list[type[AreaView]] = []
    for area_id, name in modules if modules is not None else AREA_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            log.error("area %s cannot be shown: missing module %s", area_id, exc.name)
            continue
        except Exception:
            log.exception("area %s failed to import", area_id)
            continue
        cls = area_class_of(module)
        if cls is None:
            log.error("module %s defines no area class (set AREA = YourView)", name)
            continue
        areas.append(cls)
    return areas
