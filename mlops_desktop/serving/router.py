"""The A/B router: a small HTTP proxy in front of the replicas of two or more model versions (arms).

    python -m mlops_desktop.serving.router --config router.toml [--host H] [--port P]

Each request goes to one arm: drawn by the live weights, or by the sticky header's value (router_state.py has the
rule), or under the kill switch to the stable arm; within an arm to its next healthy backend. The backend's answer
comes back as it is, plus `x-mlops-arm`; the backend receives `x-mlops-arm` and the request id, so its prediction
log records the arm. A share can be mirrored to a shadow arm (router_shadow.py). `/health` and `/v2/health/ready`
are 200 only while the stable arm has a healthy backend; `/metrics` speaks Prometheus; `/admin/*` changes weights,
shadow, thresholds and the kill switch live, behind a bearer token (router_admin.py).

The hot path is a raw asyncio protocol (httptools parses, bytes are relayed, no JSON, no task per request) over
pooled keep-alive connections; benchmarks/router.py measures what it adds against calling a replica directly.
A refused or reset request is sent once more to another backend of the same arm: every route a model server has is
safe to repeat (a prediction is a pure function of its rows; a repeated one can appear twice in the log under one
request id). A timeout is not retried (the backend may still be scoring); it is a 504 naming the arm.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http
import logging
import random
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from mlops_desktop.serving import router_upstream as up
from mlops_desktop.serving.router_config import RouterConfig
from mlops_desktop.serving.router_metrics import RouterMetrics
from mlops_desktop.serving.router_state import ChangeEvent, ChangeLog, Selector, Settings, load_settings

log = logging.getLogger("mlops_desktop.serving.router")

REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_V2_VERSIONED = re.compile(rb"^/v2/models/[^/]+/versions/([^/]+)(?:/.*)?$")
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}
# never forwarded either way: hop-by-hop headers, framing we redo, and the headers the router itself sets
_DROP_REQUEST = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive",
                           b"proxy-connection", b"te", b"trailer", b"upgrade", b"expect", b"x-request-id",
                           b"x-mlops-arm", b"x-mlops-shadow", b"x-forwarded-for"))
_DROP_RESPONSE = frozenset((b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"trailer",
                            b"upgrade", b"x-mlops-arm"))
LOCAL_PATHS = frozenset((b"/health", b"/ping", b"/v2/health/live", b"/v2/health/ready", b"/metrics"))
OPEN_PATHS = frozenset((b"/health", b"/ping", b"/v2/health/live", b"/v2/health/ready"))
MAX_PIPELINED = 32


class _Request:
    __slots__ = ("method", "url", "headers", "body", "keep_alive", "too_big")

    def __init__(self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], body: bytes,
                 keep_alive: bool, too_big: bool) -> None:
        self.method, self.url, self.headers, self.body = method, url, headers, body
        self.keep_alive, self.too_big = keep_alive, too_big


class Router:
    """The router's state and its hot path; `start(sock)` serves on a bound socket, `stop()` drains."""

    def __init__(self, config: RouterConfig, *, on_change: Callable[[ChangeEvent], None] | None = None) -> None:
        from mlops_desktop.serving.router_shadow import ShadowMirror

        self.config = config
        self.metrics = RouterMetrics(config.name)
        self.on_change = on_change
        m = self.metrics
        self.arms: dict[str, list[up.Backend]] = {
            a.name: [up.Backend(a.name, addr, connect_timeout=config.connect_timeout_s, metrics=m)
                     for addr in a.backends] for a in config.arms}
        for backends in self.arms.values():
            for b in backends:
                b.on_up = self._backend_up
        self._rr = dict.fromkeys(self.arms, 0)
        self._arm_bytes = {a: a.encode() for a in self.arms}
        self._version_arm = {a.version.encode(): a.name for a in config.arms if a.version}
        self.changes = ChangeLog(config.state_dir, config.name)
        shadow = config.shadow
        default = Settings(weights={a.name: a.weight for a in config.arms},
                           shadow_enabled=bool(shadow and shadow.enabled),
                           shadow_percent=shadow.percent if shadow else 0.0, thresholds={})
        saved = load_settings(config.state_dir, config.arm_names)
        self.resumed = saved is not None
        self.settings = saved or default
        self.selector = Selector(config.arm_names, self.settings.weights, kill_switch=self.settings.kill_switch,
                                 stable=config.stable)
        self.shadow = ShadowMirror(self, shadow) if shadow else None
        self._shadow_share = 0.0
        self._shadow_arm = shadow.arm if shadow else None
        self.apply(self.settings)
        self._token = config.token.encode() if config.token else None
        self._admin_token = config.admin_token.encode() if config.admin_token else None
        self._backend_auth = b"Bearer " + config.backend_token.encode() if config.backend_token else None
        self._sticky = config.sticky_header.encode() if config.sticky_header else None
        self._rid_prefix = uuid.uuid4().hex[:12]
        self._seq = 0
        self._random = random.Random()  # noqa: S311 - traffic split, not security
        self.in_flight = 0
        m.in_flight_of = lambda: self.in_flight
        self.clients: set[_Client] = set()
        self.closing = False
        self.started = False
        self._server: asyncio.AbstractServer | None = None
        self._stop_health: asyncio.Event | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ settings
    def apply(self, settings: Settings) -> None:
        """Make `settings` the live ones (the admin API checked them): the arm table, the shadow share, gauges."""
        self.settings = settings
        self.selector = Selector(self.config.arm_names, settings.weights, kill_switch=settings.kill_switch,
                                 stable=self.config.stable)
        self._shadow_share = settings.shadow_percent / 100.0 if self.shadow and settings.shadow_enabled else 0.0
        m = self.metrics
        for arm, w in settings.weights.items():
            m.child(m.weight, arm).set(w)
        m.child(m.kill_switch, self.config.stable).set(1 if settings.kill_switch else 0)
        if self.shadow is not None:
            m.child(m.shadow_percent, self.shadow.arm).set(self._shadow_share * 100)

    @property
    def ready(self) -> bool:
        return self.started and not self.closing and any(b.up for b in self.arms[self.config.stable])

    def pick_backend(self, arm: str) -> up.Backend:
        """Round robin over the arm's backends that are not marked down (all of them when every one is)."""
        backends = self.arms[arm]
        n = len(backends)
        i = self._rr[arm]
        for k in range(n):
            b = backends[(i + k) % n]
            if b.up is not False:
                self._rr[arm] = (i + k + 1) % n
                return b
        self._rr[arm] = (i + 1) % n
        return backends[i % n]

    def _backend_up(self, backend: up.Backend) -> None:
        """A backend (re)joined: give it the arm's live decision threshold (reconcile, not fire and forget)."""
        if backend.arm in self.settings.thresholds:
            from mlops_desktop.serving.router_admin import push_threshold

            self.spawn(push_threshold(self, [backend], self.settings.thresholds[backend.arm], reconcile=True))

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def request_id(self) -> str:
        self._seq += 1
        return f"{self._rid_prefix}-{self._seq:x}"

    def request_bytes(self, method: bytes, url: bytes, headers: list[bytes], body: bytes, rid: str, arm: str,
                      backend: up.Backend, *, shadow: bool = False) -> bytes:
        """The request as the backend gets it: the client's end-to-end headers, our framing and routing headers."""
        if method == b"HEAD":
            method = b"GET"  # a HEAD answer has no body to frame it by; the client still gets none
        parts = [method, b" ", url, b" HTTP/1.1\r\nhost: ", backend.address.authority.encode(), b"\r\n", *headers,
                 b"content-length: ", str(len(body)).encode(), b"\r\nx-request-id: ", rid.encode(),
                 b"\r\nx-mlops-arm: ", self._arm_bytes[arm], b"\r\n"]
        if shadow:
            parts.append(b"x-mlops-shadow: 1\r\n")
        if self._backend_auth is not None:
            parts += [b"authorization: ", self._backend_auth, b"\r\n"]
        parts += [b"\r\n", body]
        return b"".join(parts)

    def count(self, arm: str, status: int) -> None:
        self.metrics.count(arm, status)

    def authorized(self, value: bytes | None, token: bytes | None) -> bool:
        if token is None:
            return True
        scheme, _, given = (value or b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, sock: socket.socket) -> None:
        from mlops_desktop.serving import router_upstream

        loop = asyncio.get_running_loop()
        if self.shadow is not None:
            await self.shadow.start()
        self._stop_health = asyncio.Event()
        backends = [b for bs in self.arms.values() for b in bs]
        self._health_task = loop.create_task(router_upstream.health_loop(backends, self.config.health,
                                                                         self._stop_health))
        self._sweep_task = loop.create_task(self._sweep())
        self._server = await loop.create_server(lambda: _Client(self), sock=sock, backlog=2048)
        self.started = True

    async def _sweep(self) -> None:
        """Time out requests past their deadline, every 50 ms (so timeouts are exact to 50 ms)."""
        backends = [b for bs in self.arms.values() for b in bs]
        while True:
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            for b in backends:
                if b.active or b.connecting:
                    b.sweep(now)

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish (up to the drain timeout), close everything."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + (self.config.drain_timeout_s if drain_timeout is None else drain_timeout)
        while self.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for c in list(self.clients):
            c.close_when_idle()
        if self.shadow is not None:
            await self.shadow.close()
        if self._stop_health is not None:
            self._stop_health.set()
        if self._health_task is not None:
            with contextlib.suppress(Exception):
                await self._health_task
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep_task
        for backends in self.arms.values():
            for b in backends:
                b.close()
        self.started = False

    def state(self) -> dict[str, Any]:
        return {"router": self.config.name, "stable": self.config.stable, "ready": self.ready,
                "sticky_header": self.config.sticky_header, "resumed_saved_settings": self.resumed,
                "settings": self.settings.to_dict(),
                "arms": {a: {"version": self.config.arm(a).version, "backends": [b.to_dict() for b in bs]}
                         for a, bs in self.arms.items()},
                "shadow": self.shadow.to_dict() if self.shadow is not None else None,
                "in_flight": self.in_flight, "changes": len(self.changes.events())}


class _Client(asyncio.Protocol):
    """One client connection: parse requests, answer them in order (pipelined ones wait their turn)."""

    def __init__(self, router: Router) -> None:
        self.r = router
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[_Request] = deque()
        self.busy = False
        self.paused = False
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.too_big = False
        self.peer = ""

    # -- asyncio
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        self.r.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.r.clients.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(501, "NOT_IMPLEMENTED", "the router does not upgrade connections (no WebSocket)")
        except httptools.HttpParserError as exc:
            self._refuse(400, "BAD_REQUEST", f"the request is not valid HTTP/1.1 ({exc})")

    def _refuse(self, status: int, code: str, message: str) -> None:
        if self.transport is not None:
            self.transport.write(_json_response(status, {"error_code": code, "message": message}, b"", False))
            self.transport.close()
            self.transport = None
        self.r.count("router", status)

    # -- httptools
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []
        self.size = 0
        self.too_big = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        for name, value in self.headers:
            low = name.lower()
            if low == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif low == b"content-length" and value.isdigit() and int(value) > self.r.config.max_body_bytes:
                self.too_big = True

    def on_body(self, body: bytes) -> None:
        if self.too_big:
            return
        self.size += len(body)
        if self.size > self.r.config.max_body_bytes:
            self.too_big = True
            self.body = []
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        req = _Request(self.parser.get_method(), self.url, self.headers, body, self.parser.should_keep_alive(),
                       self.too_big)
        self.body = []
        if self.busy:
            self.pending.append(req)
            if len(self.pending) >= MAX_PIPELINED and self.transport is not None and not self.paused:
                self.transport.pause_reading()
                self.paused = True
            return
        self.handle(req)

    # -- answering
    def finish(self, keep_alive: bool) -> None:
        self.busy = False
        if self.transport is None:  # the client went away: what it pipelined is not worth sending on
            self.pending.clear()
            return
        if not keep_alive:
            if self.transport is not None:
                self.transport.close()
                self.transport = None
            return
        if self.paused and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        if self.pending:
            self.handle(self.pending.popleft())
        elif self.r.closing:
            self.close_when_idle()

    def close_when_idle(self) -> None:
        if not self.busy and self.transport is not None:
            self.transport.close()
            self.transport = None

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def reply_local(self, req: _Request, status: int, body: bytes, ctype: bytes, rid: bytes) -> None:
        keep = req.keep_alive and not self.r.closing
        self.write(_response(status, body if req.method != b"HEAD" else b"", ctype, rid, keep,
                             length=len(body)))
        self.r.count("router", status)
        self.finish(keep)

    def handle(self, req: _Request) -> None:
        self.busy = True
        r = self.r
        path = req.url.partition(b"?")[0]
        rid = b""
        auth = sticky = None
        forward: list[bytes] = []
        skip_auth = r._backend_auth is not None
        for name, value in req.headers:
            low = name.lower()
            if low in _DROP_REQUEST:
                if low == b"x-request-id" and REQUEST_ID_RE.match(value):
                    rid = value
                continue
            if low == b"authorization":
                auth = value
                if skip_auth:
                    continue
            if low == r._sticky:
                sticky = value
            forward.append(name + b": " + value + b"\r\n")
        if path in LOCAL_PATHS or path.startswith((b"/admin/", b"/router/")):
            from mlops_desktop.serving import router_admin

            router_admin.local(self, req, path, rid or r.request_id().encode(), auth)
            return
        if req.too_big:
            self.reply_local(req, 413, _dumps({"error_code": "REQUEST_TOO_LARGE", "message": (
                f"the request body is over the router's limit of {r.config.max_body_bytes} bytes")}),
                b"application/json", rid)
            return
        if r._token is not None and not r.authorized(auth, r._token):
            self.reply_local(req, 401, _dumps({"error_code": "UNAUTHENTICATED", "message": (
                "this router needs 'Authorization: Bearer <token>'")}), b"application/json", rid)
            return
        if r.closing:
            self.reply_local(req, 503, _dumps({"error_code": "UNAVAILABLE", "message": "the router is shutting "
                                               "down"}), b"application/json", rid)
            return
        arm = None
        if r._version_arm and path.startswith(b"/v2/models/"):
            m = _V2_VERSIONED.match(path)
            if m is not None:
                arm = r._version_arm.get(m.group(1))
                if arm is None:
                    known = ", ".join(f"{a} (version {v.decode()})" for v, a in r._version_arm.items())
                    self.reply_local(req, 404, _dumps({"error": f"no arm serves version {m.group(1).decode()!r}; "
                                                       f"arms: {known}"}), b"application/json", rid)
                    return
        if arm is None:
            arm = r.selector.sticky(sticky) if sticky else r.selector.pick(r._random.random())
        _Proxy(self, req, rid.decode() if rid else r.request_id(), arm, forward).send()


class _Proxy(up.Exchange):
    """One proxied request: send, retry once where that is safe, relay the answer, offer the shadow a copy."""

    __slots__ = ("client", "req", "rid", "arm", "forward", "tried", "stale_retry", "started")

    def __init__(self, client: _Client, req: _Request, rid: str, arm: str, forward: list[bytes]) -> None:
        super().__init__()
        self.client, self.req, self.rid, self.arm, self.forward = client, req, rid, arm, forward
        self.tried: list[up.Backend] = []
        self.stale_retry = False
        self.started = time.time()
        client.r.in_flight += 1

    def send(self, backend: up.Backend | None = None, fresh: bool = False) -> None:
        r = self.client.r
        if backend is None:
            backend = r.pick_backend(self.arm)
        self.tried.append(backend)
        req = self.req
        data = r.request_bytes(req.method, req.url, self.forward, req.body, self.rid, self.arm, backend)
        backend.send(data, self, r.config.timeout_s, fresh=fresh)

    def on_reply(self, status: int, raw: bytes, body: bytes) -> None:
        r = self.client.r
        latency = time.perf_counter() - self.sent_at
        r.in_flight -= 1
        req = self.req
        keep = req.keep_alive and not r.closing
        arm = r._arm_bytes[self.arm]
        head_end = raw.find(b"\r\n\r\n")
        low = raw[:head_end].lower()
        if keep and req.method != b"HEAD" and head_end > 0 and b"\nconnection:" not in low \
                and b"\ntransfer-encoding:" not in low and b"\nkeep-alive:" not in low \
                and b"\nx-mlops-arm:" not in low:
            line = raw.find(b"\r\n") + 2  # the backend's answer as it came, with the arm after the status line
            self.client.write(b"".join((raw[:line], b"x-mlops-arm: ", arm, b"\r\n", raw[line:])))
        else:
            out = [b"HTTP/1.1 ", str(status).encode(), b" ", _REASONS.get(status, b"Unknown"), b"\r\n"]
            for name, value in up.split_response(raw):
                if name.lower() not in _DROP_RESPONSE:
                    out += [name, b": ", value, b"\r\n"]
            out += [b"content-length: ", str(len(body)).encode(), b"\r\nx-mlops-arm: ", arm, b"\r\n"]
            if not keep:
                out.append(b"connection: close\r\n")
            out.append(b"\r\n")
            if req.method != b"HEAD":
                out.append(body)
            self.client.write(b"".join(out))
        r.metrics.observe(self.arm, status, latency)
        share = r._shadow_share
        if share and self.arm != r._shadow_arm and r._random.random() < share:
            assert r.shadow is not None
            r.shadow.offer((req.method, req.url, self.forward, req.body, self.rid, self.arm, status, latency, body,
                            self.started))
        self.client.finish(keep)

    def on_fail(self, kind: str) -> None:
        r = self.client.r
        backend = self.backend
        assert backend is not None
        unseen = not self.got_bytes and kind in (up.REFUSED, up.CONNECT_TIMEOUT, up.RESET)
        if unseen and kind == up.RESET and self.reused and not self.stale_retry:
            self.stale_retry = True  # a keep-alive connection the backend had closed: once more on a fresh one
            self.tried.pop()
            self.reset()
            self.send(backend, fresh=True)
            return
        r.metrics.child(r.metrics.upstream_errors, self.arm, backend.url, kind).inc()
        if unseen and r.config.retry and len(self.tried) < 2:
            others = [b for b in r.arms[self.arm] if b not in self.tried and b.up is not False]
            if others:
                r.metrics.child(r.metrics.retries, self.arm).inc()
                self.reset()
                self.send(others[0])
                return
        r.in_flight -= 1
        n = len(r.arms[self.arm])
        down = sum(1 for b in r.arms[self.arm] if b.up is False)
        where = f"arm {self.arm!r}: backend {backend.url}"
        if kind == up.TIMEOUT:
            status, code = 504, "GATEWAY_TIMEOUT"
            message = f"{where} did not answer within {r.config.timeout_s:g} s"
        else:
            status, code = 502, "BAD_GATEWAY"
            what = {up.REFUSED: "refused the connection", up.CONNECT_TIMEOUT: "could not be reached in time",
                    up.RESET: "closed the connection before answering",
                    up.BAD_RESPONSE: "sent an answer that is not valid HTTP"}.get(kind, kind)
            message = f"{where} {what}"
            if len(self.tried) > 1:
                message += f" (also tried {', '.join(b.url for b in self.tried[:-1])})"
        if down:
            message += f"; {down} of the arm's {n} backend(s) are marked down"
        doc = {"error_code": code, "message": message, "arm": self.arm, "backend": backend.url}
        keep = self.req.keep_alive and not r.closing
        self.client.write(_json_response(status, doc, self.rid.encode(), keep, arm=r._arm_bytes[self.arm]))
        r.count(self.arm, status)
        self.client.finish(keep)


def _dumps(doc: Any) -> bytes:
    import orjson

    return orjson.dumps(doc)


def _response(status: int, body: bytes, ctype: bytes, rid: bytes, keep: bool, *, length: int | None = None,
              arm: bytes | None = None) -> bytes:
    head = [b"HTTP/1.1 ", str(status).encode(), b" ", _REASONS.get(status, b"Unknown"), b"\r\ncontent-type: ", ctype,
            b"\r\ncontent-length: ", str(len(body) if length is None else length).encode(), b"\r\n"]
    if rid:
        head += [b"x-request-id: ", rid, b"\r\n"]
    if arm:
        head += [b"x-mlops-arm: ", arm, b"\r\n"]
    if not keep:
        head.append(b"connection: close\r\n")
    head += [b"\r\n", body]
    return b"".join(head)


def _json_response(status: int, doc: Any, rid: bytes, keep: bool, arm: bytes | None = None) -> bytes:
    return _response(status, _dumps(doc), b"application/json", rid, keep, arm=arm)


# ----------------------------------------------------------------------------- the process

def create_router(config: RouterConfig, *, on_change: Callable[[ChangeEvent], None] | None = None) -> Router:
    """The router for `config` (no module-level state: tests run several in one process)."""
    return Router(config, on_change=on_change)


if __name__ == "__main__":
    from mlops_desktop.serving.router_process import main

    raise SystemExit(main())
