"""Run a real A/B router (its own event loop in a thread of the test process) and real model servers behind it."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mlops_desktop.serving.router import Router, create_router
from mlops_desktop.serving.router_config import RouterConfig, from_dict

ADMIN = "admin-token-for-router-tests-0123456789"


class RunningRouter:
    def __init__(self, router: Router, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.router, self.url, self.loop = router, url, loop

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the router's loop (to read its state without racing it)."""
        done: Any = {}
        ev = threading.Event()

        def run() -> None:
            done["v"] = fn()
            ev.set()

        self.loop.call_soon_threadsafe(run)
        assert ev.wait(10)
        return done["v"]

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.call(lambda: self.router.ready):
            assert time.monotonic() < deadline, "the router did not become ready"
            time.sleep(0.05)


def config(arms: list[dict[str, Any]], **extra: Any) -> RouterConfig:
    doc: dict[str, Any] = {"arms": arms, "health": {"interval_s": 0.2, "timeout_s": 1.0}} | extra
    return from_dict(doc)


@contextmanager
def running_router(cfg: RouterConfig, **kwargs: Any) -> Iterator[RunningRouter]:
    from mlops_desktop.serving import runner

    router = create_router(cfg.with_(port=0), **kwargs)
    sock = runner.bind("127.0.0.1", 0)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(router.start(sock))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failed.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(20) and not failed, failed
    rr = RunningRouter(router, f"http://127.0.0.1:{sock.getsockname()[1]}", loop)
    try:
        yield rr
    finally:
        asyncio.run_coroutine_threadsafe(router.stop(2.0), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        sock.close()


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def post_many(url: str, n: int, headers_for: Callable[[int], dict[str, str]] = lambda i: {},
              threads: int = 8) -> list[tuple[int, str | None]]:
    """`n` single-row predictions from `threads` keep-alive clients: (status, arm) of each."""
    local = threading.local()

    import requests

    def one(i: int) -> tuple[int, str | None]:
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        r = s.post(url + "/invocations", json={"dataframe_split": {"columns": ["p"], "data": [[0.3]]}}, headers=headers_for(i), timeout=30)
        return r.status_code, r.headers.get("x-mlops-arm")

    with cf.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


class hanging_server:  # noqa: N801 - a context manager
    """A real TCP server that accepts, reads, and never answers."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self.stop = False

        def accept() -> None:
            self.sock.settimeout(0.2)
            while not self.stop:
                try:
                    conn, _ = self.sock.accept()
                    self.conns.append(conn)
                except OSError:
                    continue

        self.thread = threading.Thread(target=accept, daemon=True)
        self.thread.start()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.stop = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()
