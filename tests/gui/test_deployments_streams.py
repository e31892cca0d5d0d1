"""The Deployments area's streaming pieces without an engine: the bounded line sink, the follower's stop that ends a
blocked read at once (a real socket that stays silent), and the log pane that follows only while it is shown."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from gui_helpers import wait_idle

from mlops_desktop.errors import Cancelled
from mlops_desktop.gui.views.deploy_tasks import Follower, LineSink
from mlops_desktop.progress import Progress


class SocketLines:
    """Lines read from a real socket: blocks in recv() until the peer writes, like a docker log stream; close()
    shuts the socket down so a blocked read returns (what docker's CancellableStream.close does)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.closed = False

    def __iter__(self):
        for raw in self.file:
            yield raw.decode()

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def test_line_sink_keeps_order_and_counts_what_it_drops():
    sink = LineSink(limit=3)
    for i in range(5):
        sink.put(f"line {i}\n")
    assert sink.drain() == ["line 2", "line 3", "line 4"]
    assert sink.dropped == 2
    assert sink.drain() == []


def test_follower_streams_lines_and_stop_ends_a_blocked_read_at_once():
    ours, theirs = socket.socketpair()
    stream = SocketLines(ours)
    sink = LineSink()
    follower = Follower(lambda: stream, sink)
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["count"] = follower.run(progress=Progress())
        except Cancelled:
            outcome["cancelled"] = True
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    theirs.sendall(b"replica-1 | ready\nreplica-2 | ready\n")
    deadline = time.monotonic() + 5
    got: list[str] = []
    while len(got) < 2 and time.monotonic() < deadline:
        got += sink.drain()
        time.sleep(0.01)
    assert got == ["replica-1 | ready", "replica-2 | ready"]
    # the peer is silent now: the worker sits in recv(); stop must end it without waiting for another line
    started = time.monotonic()
    follower.stop()
    thread.join(2)
    assert not thread.is_alive(), "stop() did not end the blocked read"
    assert time.monotonic() - started < 2
    assert outcome == {"cancelled": True}
    assert stream.closed
    theirs.close()


def test_follower_reports_a_stream_that_fails_by_itself():
    def broken():
        yield "first"
        raise ConnectionResetError("the engine went away")

    sink = LineSink()
    with pytest.raises(ConnectionResetError):
        Follower(broken, sink).run(progress=Progress())
    assert sink.drain() == ["first"]


def test_live_logs_pane_follows_only_while_shown(ctx, qtbot):
    from mlops_desktop.gui.views.deploy_logs import LiveLogsPane

    peers: list[socket.socket] = []
    opened: list[str] = []

    def open_stream(name: str):
        ours, theirs = socket.socketpair()
        peers.append(theirs)
        opened.append(name)
        theirs.sendall(f"{name}-r1 | serving on 8080\n".encode())
        return SocketLines(ours)

    pane = LiveLogsPane(ctx, open_stream)
    qtbot.addWidget(pane)
    pane.follow("churn-api")
    assert opened == [] and not pane.following  # hidden: nothing is opened
    pane.show()
    qtbot.waitUntil(lambda: "churn-api-r1 | serving on 8080" in pane.view.toPlainText(), timeout=5000)
    assert pane.following and pane.state.text() == "following churn-api"
    peers[0].sendall(b"churn-api-r1 | POST /invocations 200\n")
    qtbot.waitUntil(lambda: "POST /invocations 200" in pane.view.toPlainText(), timeout=5000)
    pane.hide()   # leaving the pane cancels the worker, whose read was blocked
    wait_idle(qtbot, ctx, 5000)
    assert not pane.following
    assert "stopped" in pane.state.text()
    pane.show()   # coming back follows again, with a fresh stream
    qtbot.waitUntil(lambda: len(opened) == 2 and pane.following, timeout=5000)
    pane.follow_box.setChecked(False)
    wait_idle(qtbot, ctx, 5000)
    assert pane.state.text() == "paused" and not pane.following
    for peer in peers:
        peer.close()


def test_live_logs_pane_filter_and_a_stream_that_cannot_open(ctx, qtbot):
    from mlops_desktop.errors import MlopsError
    from mlops_desktop.gui.views.deploy_logs import LiveLogsPane

    def refuse(name: str):
        raise MlopsError(f"deployment {name!r}: the engine at unix:///nowhere.sock does not answer")

    pane = LiveLogsPane(ctx, refuse)
    qtbot.addWidget(pane)
    pane.show()
    pane.follow("churn-api")
    qtbot.waitUntil(lambda: pane.state.text().startswith("stopped:"), timeout=5000)
    assert "does not answer" in pane.state.text()
    assert not pane.following
