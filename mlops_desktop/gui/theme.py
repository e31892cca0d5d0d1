"""Light and dark themes (Fusion palettes) that follow the system colour scheme unless the settings pin one."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

STATUS_COLORS = {
    "light": {"running": "#1565c0", "finished": "#2e7d32", "failed": "#c62828", "killed": "#ef6c00",
              "lost": "#757575"},
    "dark": {"running": "#64b5f6", "finished": "#81c784", "failed": "#ef5350", "killed": "#ffb74d",
             "lost": "#9e9e9e"},
}

# Distinct line colours readable on both backgrounds (Tableau 10).
SERIES_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac"]


def run_color(index: int) -> str:
    """The colour of the index-th selected run: the same chip in the charts, the legend and Compare."""
    return SERIES_COLORS[index % len(SERIES_COLORS)]


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value == Qt.ColorScheme.Dark:
            return True
        if value == Qt.ColorScheme.Light:
            return False
    window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


def resolve(choice: str) -> str:
    """'system' | 'light' | 'dark' -> 'light' | 'dark'."""
    if choice in ("light", "dark"):
        return choice
    return "dark" if system_is_dark() else "light"


def _palette(mode: str) -> QPalette:
    p = QPalette()
    if mode == "dark":
        colors = {
            QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e8eaed",
            QPalette.ColorRole.Base: "#17181a", QPalette.ColorRole.AlternateBase: "#232427",
            QPalette.ColorRole.ToolTipBase: "#303134", QPalette.ColorRole.ToolTipText: "#e8eaed",
            QPalette.ColorRole.Text: "#e8eaed", QPalette.ColorRole.Button: "#2b2c2f",
            QPalette.ColorRole.ButtonText: "#e8eaed", QPalette.ColorRole.BrightText: "#ff6e6e",
            QPalette.ColorRole.Highlight: "#3b6fb6", QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Link: "#8ab4f8", QPalette.ColorRole.PlaceholderText: "#8a8d91",
            QPalette.ColorRole.Mid: "#3c3d40", QPalette.ColorRole.Dark: "#121314",
            QPalette.ColorRole.Light: "#3a3b3e", QPalette.ColorRole.Midlight: "#333437",
        }
    else:
        colors = {
            QPalette.ColorRole.Window: "#f5f6f7", QPalette.ColorRole.WindowText: "#1f2328",
            QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f6f8fa",
            QPalette.ColorRole.ToolTipBase: "#ffffff", QPalette.ColorRole.ToolTipText: "#1f2328",
            QPalette.ColorRole.Text: "#1f2328", QPalette.ColorRole.Button: "#eef0f2",
            QPalette.ColorRole.ButtonText: "#1f2328", QPalette.ColorRole.BrightText: "#c62828",
            QPalette.ColorRole.Highlight: "#2f6fd0", QPalette.ColorRole.HighlightedText: "#ffffff",
            QPalette.ColorRole.Link: "#0969da", QPalette.ColorRole.PlaceholderText: "#8c959f",
            QPalette.ColorRole.Mid: "#d0d7de", QPalette.ColorRole.Dark: "#8c959f",
            QPalette.ColorRole.Light: "#ffffff", QPalette.ColorRole.Midlight: "#e6e8eb",
        }
    for role, value in colors.items():
        p.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7d8590"))
    return p


def stylesheet(mode: str) -> str:
    border = "#3c3d40" if mode == "dark" else "#d0d7de"
    side = "#1a1b1d" if mode == "dark" else "#eceef0"
    sel = "#2d3e57" if mode == "dark" else "#dbe7f8"
    muted = "#9aa0a6" if mode == "dark" else "#57606a"
    return f"""
    QListWidget#sidebar {{ background: {side}; border: none; border-right: 1px solid {border};
                           padding-top: 6px; font-size: 10.5pt; }}
    QListWidget#sidebar::item {{ padding: 8px 10px; border-radius: 6px; margin: 1px 6px; }}
    QListWidget#sidebar::item:selected {{ background: {sel}; color: palette(text); }}
    QListWidget#experiments::item {{ padding: 3px 4px; }}
    QLabel#muted {{ color: {muted}; }}
    QLabel#heading {{ font-size: 12pt; font-weight: 600; }}
    QLabel#error {{ color: #e5534b; }}
    QLineEdit#query {{ padding: 4px 6px; }}
    QLineEdit#query[invalid="true"] {{ border: 1px solid #e5534b; }}
    QTableView {{ gridline-color: {border}; }}
    QHeaderView::section {{ padding: 3px 6px; }}
    QSplitter::handle {{ background: {border}; }}
    QSplitter::handle:horizontal {{ width: 1px; }}
    QSplitter::handle:vertical {{ height: 1px; }}
    QStatusBar QLabel {{ padding: 0 6px; }}
    """


def apply(app: QApplication, choice: str = "system") -> str:
    """Apply the theme; returns 'light' or 'dark'."""
    mode = resolve(choice)
    app.setStyle("Fusion")
    app.setPalette(_palette(mode))
    app.setStyleSheet(stylesheet(mode))
    app.setProperty("mlops_theme", mode)
    if "pyqtgraph" in sys.modules:  # imported on first use of a plot, not at start-up (0.3 s)
        configure_pyqtgraph()
        restyle_plots(app)
    return mode


def configure_pyqtgraph() -> None:
    """pyqtgraph's default colours for the current theme (called by plot widgets before they are built)."""
    import pyqtgraph as pg

    pal = _palette(current_mode())
    pg.setConfigOptions(background=pal.color(QPalette.ColorRole.Base).name(),
                        foreground=pal.color(QPalette.ColorRole.Text).name(), antialias=False)


def plot_colors(mode: str | None = None) -> dict[str, str]:
    """The colours every plot uses: background, foreground (axes, text), muted (secondary text)."""
    mode = mode or current_mode()
    if mode == "dark":
        return {"background": "#17181a", "foreground": "#c9d1d9", "muted": "#8b949e"}
    return {"background": "#ffffff", "foreground": "#444c56", "muted": "#6e7781"}


def style_plot(widget: object) -> None:
    """Put a pyqtgraph PlotWidget (or GraphicsLayoutWidget) in the current theme's colours, axes and title too."""
    import pyqtgraph as pg

    colors = plot_colors()
    if not isinstance(widget, pg.GraphicsView):
        return
    widget.setBackground(colors["background"])
    plot_item = widget.getPlotItem() if isinstance(widget, pg.PlotWidget) else None
    if plot_item is None:
        return
    for name in ("left", "bottom", "right", "top"):
        axis = plot_item.getAxis(name)
        axis.setPen(colors["foreground"])
        axis.setTextPen(colors["foreground"])
        if axis.label is not None and axis.labelText:
            axis.setLabel(axis.labelText, units=axis.labelUnits or None, color=colors["foreground"])
    title = plot_item.titleLabel
    if title is not None and title.text:
        title.setText(title.text, color=colors["foreground"])


def restyle_plots(app: QApplication) -> None:
    """Every plot on screen follows a theme switch at once (not only the ones built after it)."""
    import pyqtgraph as pg

    for widget in app.allWidgets():
        hook = getattr(widget, "apply_theme", None)
        if callable(hook):
            hook()
        elif isinstance(widget, pg.PlotWidget):
            style_plot(widget)


def current_mode() -> str:
    app = QApplication.instance()
    mode = app.property("mlops_theme") if app is not None else None
    return mode if mode in ("light", "dark") else "light"


def status_color(status: str) -> QColor:
    return QColor(STATUS_COLORS[current_mode()].get(status, "#888888"))
