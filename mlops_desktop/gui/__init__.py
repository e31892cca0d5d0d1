"""The desktop app: a thin Qt face (PySide6 + pyqtgraph) over the core packages."""
