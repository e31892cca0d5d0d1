"""Icons from resources/icons, tinted to the current theme; a standard Qt icon stands in when a file is missing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QStyle

ICON_DIR = Path(__file__).resolve().parents[2] / "resources" / "icons"


def icon(name: str, color: str | None = None, size: int = 24) -> QIcon:
    path = ICON_DIR / f"{name}.svg"
    if not name or not path.exists():
        style = QApplication.style()
        return style.standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView) if style else QIcon()
    svg = path.read_text(encoding="utf-8")
    if color is None:
        from mlops_desktop.gui.theme import current_mode

        color = "#c9d1d9" if current_mode() == "dark" else "#444c56"
    if name != "app":
        svg = svg.replace('stroke="#000000"', f'stroke="{color}"')
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg.encode()))
    result = QIcon()
    for px in (size, size * 2):
        pixmap = QPixmap(px, px)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
        result.addPixmap(pixmap)
    return result
