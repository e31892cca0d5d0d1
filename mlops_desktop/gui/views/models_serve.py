"""The Models area's "Serve locally" panel: start, stop and restart (with another version) a managed local server,
with its live state, request rate and latency scraped from its /metrics in a worker, and its log."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.theme import status_color
from mlops_desktop.gui.views import models_data as data
from mlops_desktop.gui.views.models_widgets import bad_color

if TYPE_CHECKING:
    from mlops_desktop.gui.views.base import AppContext
    from mlops_desktop.registry.entities import ModelVersion
    from mlops_desktop.serving.manager import ManagedServer

LIVE_INTERVAL_MS = 1500
HISTORY = 120            # points kept per plot (3 minutes at 1.5 s)
STATE_STATUS = {"running": "finished", "starting": "running", "stopped": "lost", "failed": "failed",
                "lost": "killed"}   # the colours of the runs' states with the same meaning


def _figure(caption: str) -> tuple[QWidget, QLabel]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(8, 4, 8, 4)
    value = QLabel("–")
    font = QFont(value.font())
    font.setPointSizeF(font.pointSizeF() * 1.6)
    font.setBold(True)
    value.setFont(font)
    label = QLabel(caption)
    label.setObjectName("muted")
    layout.addWidget(value)
    layout.addWidget(label)
    return box, value


def scrape_or_reason(url: str, *, progress: Any) -> data.MetricsSample | str:
    """A scrape, or why it failed in words: a failed scrape every 1.5 s is a state to show, not an error to post."""
    from mlops_desktop.errors import MlopsError

    try:
        return data.scrape(url, progress=progress)
    except MlopsError as exc:
        return exc.message


def cancel_start(ws: Any, name: str, *, progress: Any, wait_s: float = 30.0) -> None:
    """Wait for the starting server's record (it is written just after the process starts), then stop it."""
    from mlops_desktop.errors import NotFoundError
    from mlops_desktop.serving import manager

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            server = manager.get(ws, name)
        except NotFoundError:
            server = None
        if server is not None and server.state in ("starting", "running") and server.pid is not None:
            manager.stop(ws, name, timeout=10)
            return
        time.sleep(0.05)


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


class ServePanel(QWidget):
    """One model's local server. The area calls ``set_model(name)`` and ``set_version(mv)``."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model = ""
        self.version: ModelVersion | None = None
        self.server: ManagedServer | None = None
        self.busy = False
        self.samples: deque[data.MetricsSample] = deque(maxlen=2)
        self.history: deque[data.Rates] = deque(maxlen=HISTORY)
        self._scraping = False
        self._listing = False
        self._starting: str | None = None   # the server name a start in progress records
        self._cancelling = False

        self.state = QLabel("")
        self.state.setTextFormat(Qt.TextFormat.RichText)
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(0)
        self.port.setSpecialValueText("any free port")
        self.port.setToolTip("the port on 127.0.0.1 (0: any free port)")
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(lambda: self.start())
        self.restart_button = QPushButton("Restart with…")
        self.restart_button.setToolTip("start the selected version on the same port, then drain the old process")
        self.restart_button.clicked.connect(lambda: self.restart())
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(lambda: self.stop())
        self.message = QLabel("")
        self.message.setObjectName("muted")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Port"))
        bar.addWidget(self.port)
        for button in (self.start_button, self.restart_button, self.stop_button):
            bar.addWidget(button)
        bar.addWidget(self.message, 1)

        figures = QHBoxLayout()
        rate_box, self.rate_value = _figure("requests / s")
        p50_box, self.p50_value = _figure("latency p50")
        p95_box, self.p95_value = _figure("latency p95")
        err_box, self.err_value = _figure("errors / s (4xx, 5xx)")
        flight_box, self.flight_value = _figure("in flight")
        for box in (rate_box, p50_box, p95_box, err_box, flight_box):
            figures.addWidget(box)
        figures.addStretch(1)

        import pyqtgraph as pg

        from mlops_desktop.gui import theme

        theme.configure_pyqtgraph()
        self.rate_plot = pg.PlotWidget()
        self.latency_plot = pg.PlotWidget()
        for plot, title, unit in ((self.rate_plot, "Request rate", "req/s"), (self.latency_plot, "Latency", "ms")):
            plot.setMinimumHeight(140)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setTitle(title)
            plot.setLabel("left", unit)
            plot.setLabel("bottom", "seconds ago")
            plot.showGrid(x=True, y=True, alpha=0.2)
            theme.style_plot(plot)
        self.rate_curve = self.rate_plot.plot(pen=pg.mkPen("#4e79a7", width=2))
        self.p50_curve = self.latency_plot.plot(pen=pg.mkPen("#59a14f", width=2), name="p50")
        self.p95_curve = self.latency_plot.plot(pen=pg.mkPen("#e15759", width=2), name="p95")
        self.latency_plot.addLegend(offset=(-10, 10))
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log.setFont(mono)
        self.log.setPlaceholderText("the server's log shows here")

        grid = QGridLayout()
        grid.addWidget(self.rate_plot, 0, 0)
        grid.addWidget(self.latency_plot, 0, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addLayout(bar)
        layout.addLayout(figures)
        layout.addLayout(grid, 3)
        log_title = QLabel("Server log")
        log_title.setObjectName("muted")
        layout.addWidget(log_title)
        layout.addWidget(self.log, 2)

        self.timer = QTimer(self)
        self.timer.setInterval(LIVE_INTERVAL_MS)
        self.timer.timeout.connect(self.tick)
        self._show_server(None)

    # ------------------------------------------------------------------------------------------------ inputs
    def set_model(self, name: str) -> None:
        if name != self.model:
            self.model = name
            self.server = None
            self._reset_figures()
            self.log.clear()
            self._show_server(None)
        self.reload()

    def set_version(self, mv: ModelVersion | None) -> None:
        self.version = mv
        self._update_buttons()

    def on_theme_changed(self) -> None:
        from mlops_desktop.gui import theme

        for plot in (self.rate_plot, self.latency_plot):
            theme.style_plot(plot)
        self._show_server(self.server)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.timer.start()
        self.reload()
        super().showEvent(event)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.timer.stop()
        super().hideEvent(event)

    # ------------------------------------------------------------------------------------------------ reading
    def reload(self) -> None:
        if not self.model or self._listing:
            return
        self._listing = True
        model = self.model

        def done(servers: list[ManagedServer]) -> None:
            self._listing = False
            if model != self.model:
                return
            running = [s for s in servers if s.state in ("running", "starting")]
            chosen = running[0] if running else (servers[0] if servers else None)
            self._show_server(chosen)

        self.ctx.tasks.submit(data.list_servers, self.ctx.workspace, model, title=f"Servers of {model}",
                              quiet=True, owner=self, on_done=done, on_error=lambda _e: self._list_failed())

    def _list_failed(self) -> None:
        self._listing = False

    def tick(self) -> None:
        """Every LIVE_INTERVAL_MS while shown: re-observe the server (a killed one shows at once), scrape it."""
        self.reload()
        server = self.server
        if server is None or server.state != "running" or self._scraping:
            return
        self._scraping = True
        url = server.url
        self.ctx.tasks.submit(scrape_or_reason, url, title=f"Scrape {url}", quiet=True, owner=self,
                              on_done=lambda r, u=url: self._scraped(u, r))
        self.ctx.tasks.submit(data.server_log, self.ctx.workspace, server.name, title=f"Log of {server.name}",
                              quiet=True, owner=self, key=f"serve-log-{id(self)}", on_done=self._show_log)

    def _scraped(self, url: str, outcome: data.MetricsSample | str) -> None:
        self._scraping = False
        if self.server is None or self.server.url != url:
            return
        if isinstance(outcome, str):   # a server going away: said here, the next check shows its state
            self.message.setText(outcome)
            return
        sample = outcome
        if self.message.text().startswith("cannot read"):
            self.message.setText("")
        if self.samples:
            rates = data.rates(self.samples[-1], sample)
            self.history.append(rates)
            self._show_rates(rates)
        self.samples.append(sample)

    def _show_log(self, text: str) -> None:
        if self.log.toPlainText() != text:
            self.log.setPlainText(text)
            self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    # ------------------------------------------------------------------------------------------------ showing
    def _reset_figures(self) -> None:
        self.samples.clear()
        self.history.clear()
        for label in (self.rate_value, self.p50_value, self.p95_value, self.err_value, self.flight_value):
            label.setText("–")
        for curve in (self.rate_curve, self.p50_curve, self.p95_curve):
            curve.setData([], [])

    def _show_rates(self, rates: data.Rates) -> None:
        self.rate_value.setText(f"{rates.requests_per_s:.1f}")
        self.p50_value.setText(fmt_ms(rates.p50_s))
        self.p95_value.setText(fmt_ms(rates.p95_s))
        self.err_value.setText(f"{rates.errors_per_s:.1f}")
        self.flight_value.setText(f"{rates.in_flight:.0f}")
        now = rates.at
        xs = [r.at - now for r in self.history]
        self.rate_curve.setData(xs, [r.requests_per_s for r in self.history])
        lat = [(r.at - now, r.p50_s, r.p95_s) for r in self.history if r.p50_s is not None]
        self.p50_curve.setData([x for x, _a, _b in lat], [(a or 0.0) * 1000 for _x, a, _b in lat])
        self.p95_curve.setData([x for x, _a, _b in lat], [(b or 0.0) * 1000 for _x, _a, b in lat])

    def _show_server(self, server: ManagedServer | None) -> None:
        from html import escape

        changed = (server is None) != (self.server is None) or (
            server is not None and self.server is not None
            and (server.pid, server.version) != (self.server.pid, self.server.version))
        self.server = server
        if changed:
            self._reset_figures()
        if server is None:
            self.state.setText(f"<b>No local server for {escape(self.model or 'this model')}.</b> "
                               "Select a version and press Start: it runs on 127.0.0.1, keeps running when the app "
                               "closes, and shows here with its live request rate and latency.")
        else:
            color = status_color(STATE_STATUS.get(server.state, "lost")).name()
            up = ""
            if server.state == "running" and server.started_at:
                up = f" · up {_age(time.time() - server.started_at)}"
            detail = f" · pid {server.pid}" if server.state == "running" else ""
            error = f"<br><span style='color:{bad_color()}'>{escape(server.error)}</span>" if server.error else ""
            self.state.setText(f"<b><span style='color:{color}'>● {escape(server.state)}</span></b> &nbsp; "
                               f"<b>{escape(server.model)} v{escape(server.version)}</b> at "
                               f"<a href='{escape(server.url)}'>{escape(server.url)}</a>{detail}{up} · "
                               f"server {escape(server.name)}{error}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        server = self.server
        running = server is not None and server.state in ("running", "starting")
        v = self.version
        self.start_button.setText(f"Start v{v.version}" if v is not None else "Start")
        self.start_button.setEnabled(not self.busy and not running and v is not None)
        self.restart_button.setText(f"Restart with v{v.version}" if v is not None else "Restart with…")
        self.restart_button.setEnabled(not self.busy and running and v is not None)
        starting = self.busy and self._starting is not None
        self.stop_button.setText("Cancel start" if starting else "Stop")
        self.stop_button.setEnabled((not self.busy and running) or (starting and not self._cancelling))
        self.port.setEnabled(not self.busy and not running)

    # ------------------------------------------------------------------------------------------------ actions
    def _run(self, fn: Any, args: tuple, title: str, message: str) -> None:
        from mlops_desktop.gui.notify import describe

        self.busy = True
        self.message.setText(message)
        self._update_buttons()

        def done(server: ManagedServer) -> None:
            self.busy = False
            self._starting, self._cancelling = None, False
            self.message.setText("")
            self._show_server(server)
            self.ctx.notifications.success(title, f"{server.model} v{server.version}: {server.state} at {server.url}")

        def failed(exc: BaseException) -> None:
            self.busy = False
            cancelled = self._cancelling
            self._starting, self._cancelling = None, False
            self.message.setText("start cancelled: the server process was stopped before it was ready" if cancelled
                                 else describe(exc).splitlines()[0])
            self._update_buttons()
            self.reload()

        task = self.ctx.tasks.submit(fn, *args, title=title, owner=self, quiet=True, on_done=done, on_error=failed)
        task.progressed.connect(lambda _f, m: self.message.setText(m))

    def start(self) -> None:
        v = self.version
        if v is None or self.busy:
            return
        name = self.server.name if self.server is not None else v.name
        self._starting = name
        self._run(data.start_server, (self.ctx.workspace, v.ref, name, self.port.value()), f"Serve {v.ref}",
                  f"starting {v.ref} (loading the model)…")

    def stop(self) -> None:
        if self.busy and self._starting is not None:
            self.cancel_start()
            return
        if self.server is None or self.busy:
            return
        self._run(data.stop_server, (self.ctx.workspace, self.server.name), f"Stop {self.server.name}",
                  "stopping (draining requests, flushing the prediction log)…")

    def cancel_start(self) -> None:
        """Stop the process a start is waiting for: the start then fails, and says it was cancelled."""
        if self._starting is None or self._cancelling:
            return
        self._cancelling = True
        self.message.setText("cancelling the start…")
        self._update_buttons()
        self.ctx.tasks.submit(cancel_start, self.ctx.workspace, self._starting, title=f"Cancel {self._starting}",
                              quiet=True, owner=self)

    def restart(self) -> None:
        v = self.version
        if v is None or self.server is None or self.busy:
            return
        self._run(data.restart_server, (self.ctx.workspace, self.server.name, v.ref),
                  f"Restart {self.server.name} with {v.ref}", f"starting {v.ref} beside v{self.server.version}…")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
