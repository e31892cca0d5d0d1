"""Which listener gets new connections while a server on the same port is replaced (handover.py)."""

from __future__ import annotations

import collections
import socket
import sys

import pytest

from mlops_desktop.serving import handover, runner

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reuseport steering is Linux's")


def _land(port: int, listeners: dict[str, socket.socket], n: int = 40) -> dict[str, int]:
    """Open n connections and count which listener's queue each one reached."""
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    seen: collections.Counter[str] = collections.Counter()
    try:
        for name, sock in listeners.items():
            sock.setblocking(False)
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                seen[name] += 1
    finally:
        for c in clients:
            c.close()
    return dict(seen)


def test_a_new_listener_holds_back_until_it_takes_over():
    old = runner.bind("127.0.0.1", 0)
    port = old.getsockname()[1]
    new = runner.bind("127.0.0.1", port)  # the restart's process, still loading its model
    try:
        assert _land(port, {"old": old, "new": new}) == {"old": 40}
        assert handover.take_over(new)  # ready: everything new goes to it
        assert _land(port, {"old": old, "new": new}) == {"new": 40}
        old.close()  # the old server's drain ends: nothing was queued on its side
        assert _land(port, {"new": new}) == {"new": 40}
        # and the next restart holds back behind this one in turn
        newer = runner.bind("127.0.0.1", port)
        try:
            assert _land(port, {"new": new, "newer": newer}) == {"new": 40}
        finally:
            newer.close()
    finally:
        old.close()
        new.close()


def test_a_restart_that_never_gets_ready_has_no_connection_to_reset():
    old = runner.bind("127.0.0.1", 0)
    port = old.getsockname()[1]
    failed = runner.bind("127.0.0.1", port)
    try:
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        failed.close()  # its model would not load: it exits without ever taking over
        # every connection made meanwhile is in the old server's queue, alive
        old.settimeout(5)
        for c in clients:
            conn, _ = old.accept()
            conn.sendall(b"x")
            assert c.recv(1) == b"x"
            conn.close()
            c.close()
    finally:
        old.close()


def test_steering_is_skipped_for_a_socket_it_does_not_apply_to():
    a, b = socket.socketpair()
    try:
        assert handover.steer(a, handover.NEWEST) is False
    finally:
        a.close()
        b.close()
