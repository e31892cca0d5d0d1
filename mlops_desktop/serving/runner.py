"""Run a server process: bind, serve with uvicorn (httptools, uvloop), drain on SIGTERM, report where and how it ended.

The socket is bound here with SO_REUSEPORT, so a restart with another version starts the new process on the same
port and stops the old one only once the new one is ready (no refused connection in between); handover.py steers new
connections to the old listener until the new one is ready, and to the new one after, so neither the start nor the
end of the swap resets a connection queued on the wrong side. With `workers` > 1,
that many processes accept on the one socket; each has its own batcher and prediction log (one folder each).
A status file (JSON) tells a managing process the pid, the bound port, readiness and, at the end, the exit code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.serving import handover
from mlops_desktop.serving.config import ServeConfig

log = logging.getLogger("mlops_desktop.serving")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it a response
    # written in two parts (head, body) waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        hint = "pick another --port, or stop what listens there (`mlops-desktop serve list`)" \
            if exc.errno in (98, 48) else None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", hint=hint) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    handover.hold(sock)  # new connections stay with a server already running on this port until this one is ready
    return sock


def write_status(path: Path | None, **fields: Any) -> None:
    if path is None:
        return
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    current.update(fields)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(current), encoding="utf-8")
    os.replace(tmp, path)


def uvicorn_server(app: Any, config: ServeConfig, log_level: str = "warning") -> Any:
    import threading

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises a caught SIGTERM after its graceful shutdown, so the process dies by the signal
        (exit -15). A drained server is a clean exit: 0, what a container runtime and our manager expect."""

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

        draining_since: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            # the first SIGTERM starts the hand-over grace; a second signal (or the grace's end) stops as uvicorn does
            if self.draining_since is None and config.handover_grace_s > 0 and not self.should_exit:
                self.draining_since = time.monotonic()
                self._close_after_answer()
                return
            super().handle_exit(sig, frame)

        def _close_after_answer(self) -> None:
            headers = self.server_state.default_headers
            if (b"connection", b"close") not in headers:
                self.server_state.default_headers = [*headers, (b"connection", b"close")]

        async def on_tick(self, counter: int) -> bool:
            stop = await super().on_tick(counter)
            if self.draining_since is not None:
                self._close_after_answer()  # on_tick rebuilds the default headers every second
                if time.monotonic() - self.draining_since >= config.handover_grace_s:
                    return True
            return bool(stop)

    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    uconfig = uvicorn.Config(app, lifespan="on", loop=loop, http=http, log_level=log_level,
                             access_log=config.access_log, timeout_graceful_shutdown=int(config.drain_timeout_s),
                             timeout_keep_alive=30, server_header=False, date_header=False,
                             backlog=2048, limit_concurrency=None,
                             proxy_headers=False)  # nothing here reads the client address; ~1 % of a request
    return Server(uconfig)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def serve_forever(app: Any, config: ServeConfig, sock: socket.socket, *, status_file: Path | None = None) -> int:
    """Serve on `sock` until SIGTERM/SIGINT; then drain (uvicorn waits for in-flight requests, the app's lifespan
    flushes the batcher and the prediction log) and return 0."""
    server = uvicorn_server(app, config)
    port = sock.getsockname()[1]
    write_status(status_file, pid=os.getpid(), port=port, host=config.host, state="starting",
                 started_at=time.time())

    async def serve() -> None:
        import asyncio

        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            handover.take_over(sock)
            freeze_heap()
            write_status(status_file, state="running")
            log.warning("serving %s on http://%s:%d", ", ".join(f"{m.name}/{m.version}" for m in app.models),
                        config.host, port)
        await task

    code = 0
    try:
        _run(serve)
        if not server.started:
            code = 1
    except Exception as exc:  # start-up failed (the model would not load in the lifespan, say)
        log.error("the server stopped: %s", exc)
        code = 1
    write_status(status_file, state="exited", exit_code=code, ended_at=time.time())
    return code


def freeze_heap() -> None:
    """Move everything alive after start-up (the model, numpy, pandas, scikit-learn: ~130,000 tracked objects) out
    of the cyclic collector's reach. A full collection over that heap stops the event loop for 40-90 ms; under load
    one ran every few seconds and was the whole p99 at 64 connections. Objects made per request are still
    collected as before."""
    import gc

    gc.collect()
    gc.freeze()


def _run(coro_fn: Any) -> None:
    import asyncio

    if _has("uvloop"):
        import uvloop

        uvloop.run(coro_fn())
    else:
        asyncio.run(coro_fn())


def supervise(argv: list[str], workers: int, sock: socket.socket, status_file: Path | None) -> int:
    """`--workers N`: N child processes accept on one socket; SIGTERM is passed on and their drains awaited."""
    fd = sock.fileno()
    children = []
    for i in range(workers):
        cmd = [sys.executable, "-m", "mlops_desktop.serving", *argv, "--fd", str(fd), "--worker-index", str(i)]
        children.append(subprocess.Popen(cmd, pass_fds=(fd,)))
    write_status(status_file, pid=os.getpid(), port=sock.getsockname()[1], state="running", workers=workers,
                 worker_pids=[c.pid for c in children], started_at=time.time())

    def forward(signum: int, _frame: Any) -> None:
        for c in children:
            with contextlib.suppress(ProcessLookupError):
                c.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [c.wait() for c in children]
    code = 0 if all(c == 0 for c in codes) else 1
    write_status(status_file, state="exited", exit_code=code, ended_at=time.time())
    return code
