"""The router's side towards the backends: pooled keep-alive connections (raw asyncio protocols with httptools'
response parser), one request at a time per connection, timeouts, and the health checks that mark a backend down.

A request is handed over as the bytes to send plus an `Exchange` whose `on_reply`/`on_fail` is called exactly once:
no task, coroutine or timer per request on the hot path (a new connection is the only thing awaited, in a task;
deadlines are checked by the router's sweep).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httptools

from mlops_desktop.serving.router_config import BackendAddress, HealthConfig

if TYPE_CHECKING:
    from mlops_desktop.serving.router_metrics import RouterMetrics

log = logging.getLogger("mlops_desktop.serving.router")

# failure kinds; the first two happen before the backend saw the request (safe to send elsewhere)
REFUSED, CONNECT_TIMEOUT, RESET, TIMEOUT, BAD_RESPONSE = "refused", "connect_timeout", "reset", "timeout", \
    "bad_response"


class Exchange:
    """One request to one backend; subclasses answer `on_reply(status, raw, body)` (`raw` is the whole response as
    the backend sent it) or `on_fail(kind)`, exactly once. Timeouts are found by the router's sweep (a deadline
    per exchange, no timer handle per request)."""

    __slots__ = ("deadline", "got_bytes", "reused", "done", "conn", "backend", "sent_at")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.deadline = 0.0
        self.got_bytes = False
        self.reused = False
        self.done = False
        self.conn: _Conn | None = None
        self.backend: Backend | None = None
        self.sent_at = 0.0

    def on_reply(self, status: int, raw: bytes, body: bytes) -> None:
        raise NotImplementedError

    def on_fail(self, kind: str) -> None:
        raise NotImplementedError

    def replied(self, status: int, raw: bytes, body: bytes) -> None:
        if not self.done:
            self.done = True
            self.on_reply(status, raw, body)

    def failed(self, kind: str) -> None:
        if not self.done:
            self.done = True
            self.on_fail(kind)

    def timed_out(self) -> None:
        if self.done:
            return
        conn = self.conn
        if conn is not None:  # its answer may still come: the connection cannot carry another request
            conn.ex = None
            conn.abandon()
        self.failed(TIMEOUT)


class _Conn(asyncio.Protocol):
    """One keep-alive connection to a backend. The response is kept as the raw bytes that came (the router relays
    them as they are) plus its decoded body (httptools calls back only for the body and the end)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.raw: list[bytes] = []
        self.body: list[bytes] = []
        self.closed = False

    # -- asyncio
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:  # nothing asked: a broken backend; never hand this connection out again
            self.abandon()
            return
        ex.got_bytes = True
        self.raw.append(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.ex = None
            self.abandon()
            ex.failed(BAD_RESPONSE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.backend.forget(self)
        ex, self.ex = self.ex, None
        if ex is not None:
            ex.failed(RESET)

    # -- httptools
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        ex, self.ex = self.ex, None
        raw = self.raw[0] if len(self.raw) == 1 else b"".join(self.raw)
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.raw = []
        self.body = []
        status = self.parser.get_status_code()
        self.backend.active.discard(self)
        if self.parser.should_keep_alive() and not self.closed:
            self.backend.release(self)
        else:
            self.abandon()
        if ex is not None:
            ex.replied(status, raw, body)

    # -- ours
    def send(self, data: bytes, ex: Exchange) -> None:
        self.ex = ex
        ex.conn = self
        self.backend.active.add(self)
        assert self.transport is not None
        self.transport.write(data)

    def abandon(self) -> None:
        self.closed = True
        self.backend.forget(self)
        if self.transport is not None:
            self.transport.close()


def split_response(raw: bytes) -> list[tuple[bytes, bytes]]:
    """The header lines of a raw response (for the rare answers that cannot be relayed as they are)."""
    head = raw[:raw.find(b"\r\n\r\n")]
    out = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out.append((name.strip(), value.strip()))
    return out


class Backend:
    """One replica of an arm: its idle connections, its health, and how to send it a request."""

    def __init__(self, arm: str, address: BackendAddress, *, connect_timeout: float, metrics: RouterMetrics,
                 max_idle: int = 1024) -> None:
        self.arm = arm
        self.address = address
        self.url = address.url
        self.connect_timeout = connect_timeout
        self.metrics = metrics
        self.max_idle = max_idle
        self.idle: list[_Conn] = []
        self.active: set[_Conn] = set()          # connections with a request in flight (the timeout sweep)
        self.connecting: set[Exchange] = set()   # requests waiting for a new connection
        self.up: bool | None = None     # None until the first health check: tried, but not yet "ready"
        self.fails = 0
        self.rises = 0
        self.last_error = ""
        self.last_check = 0.0
        self.on_up: Callable[[Backend], None] | None = None
        self._gauge = metrics.child(metrics.backend_up, arm, address.url)
        self._gauge.set(0)

    def send(self, data: bytes, ex: Exchange, timeout: float, *, fresh: bool = False) -> None:
        """Send now on an idle connection, or open one (a task) and send there."""
        ex.backend = self
        ex.sent_at = now = time.perf_counter()
        ex.deadline = now + timeout
        if not fresh:
            idle = self.idle
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    ex.reused = True
                    conn.send(data, ex)
                    return
        ex.reused = False
        self.connecting.add(ex)
        asyncio.get_running_loop().create_task(self._connect_and_send(data, ex))

    async def _connect_and_send(self, data: bytes, ex: Exchange) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(self), self.address.host, self.address.port),
                self.connect_timeout)
        except TimeoutError:
            self.connecting.discard(ex)
            self.mark_failed("connect timeout")
            ex.failed(CONNECT_TIMEOUT)
            return
        except OSError as exc:
            self.connecting.discard(ex)
            self.mark_failed(exc.strerror or str(exc))
            ex.failed(REFUSED)
            return
        self.connecting.discard(ex)
        if ex.done:  # timed out meanwhile: keep the connection for the next request
            self.release(conn)
            return
        conn.send(data, ex)

    def release(self, conn: _Conn) -> None:
        if not conn.closed and len(self.idle) < self.max_idle:
            self.idle.append(conn)
        elif not conn.closed:
            conn.abandon()

    def forget(self, conn: _Conn) -> None:
        self.active.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def sweep(self, now: float) -> None:
        """Fail the requests past their deadline (the router calls this a few times a second)."""
        for conn in [c for c in self.active if c.ex is not None and now >= c.ex.deadline]:
            if conn.ex is not None:
                conn.ex.timed_out()
        for ex in [e for e in self.connecting if now >= e.deadline]:
            self.connecting.discard(ex)
            ex.timed_out()

    def close(self) -> None:
        for conn in list(self.idle):
            conn.abandon()
        self.idle.clear()

    # -- health
    def mark_failed(self, why: str) -> None:
        """A refused connection during proxying: down at once (the health checks bring it back)."""
        self.last_error = why
        self.rises = 0
        if self.up is not False:
            log.warning("router: backend %s of arm %s is down: %s", self.url, self.arm, why)
        self.up = False
        self._gauge.set(0)

    def observe_check(self, ok: bool, why: str, health: HealthConfig) -> None:
        self.last_check = time.time()
        if ok:
            self.fails = 0
            self.rises += 1
            if self.up is not True and self.rises >= health.rise_after:
                was = self.up
                self.up = True
                self.last_error = ""
                self._gauge.set(1)
                if was is False:
                    log.warning("router: backend %s of arm %s is up again", self.url, self.arm)
                if self.on_up is not None:
                    self.on_up(self)
        else:
            self.rises = 0
            self.fails += 1
            self.last_error = why
            if self.up is not False and (self.fails >= health.fail_after or self.up is None):
                self.mark_failed(why)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "up": self.up, "error": self.last_error, "idle_connections": len(self.idle),
                "last_check": self.last_check or None}


async def fetch(address: BackendAddress, method: str, path: str, *, body: bytes = b"",
                headers: list[tuple[str, str]] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """One request on a connection of its own (health checks, admin calls to the backends): (status, body).
    Raises OSError or TimeoutError when the backend does not answer."""
    parts: dict[str, Any] = {"headers": [], "body": [], "done": False}

    class _Sink:
        def on_body(self, chunk: bytes) -> None:
            parts["body"].append(chunk)

        def on_message_complete(self) -> None:
            parts["done"] = True

    async def run() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(address.host, address.port)
        try:
            head = [f"{method} {path} HTTP/1.1", f"host: {address.authority}", "connection: close",
                    f"content-length: {len(body)}"]
            head += [f"{k}: {v}" for k, v in headers or []]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            parser = httptools.HttpResponseParser(_Sink())
            while not parts["done"]:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionResetError("the backend closed the connection before answering")
                parser.feed_data(chunk)
            return parser.get_status_code(), b"".join(parts["body"])
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(run(), timeout)
    except httptools.HttpParserError as exc:
        raise ConnectionResetError(f"the backend's answer cannot be read ({exc})") from None


async def health_loop(backends: list[Backend], health: HealthConfig, stop: asyncio.Event) -> None:
    """Check every backend each `interval_s` (all at once), until `stop` is set."""

    async def check(b: Backend) -> None:
        try:
            status, _ = await fetch(b.address, "GET", health.path, timeout=health.timeout_s)
            ok, why = status == 200, f"{health.path} answered {status}"
        except TimeoutError:
            ok, why = False, f"no answer to {health.path} within {health.timeout_s:g} s"
        except OSError as exc:
            ok, why = False, exc.strerror or str(exc) or type(exc).__name__
        b.observe_check(ok, why, health)

    while not stop.is_set():
        await asyncio.gather(*(check(b) for b in backends), return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), health.interval_s)
