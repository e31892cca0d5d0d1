"""Run a real uvicorn server on 127.0.0.1 (a free port) in a thread of the test process."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlops_desktop.serving.app import ModelServer, create_app
from mlops_desktop.serving.config import ServeConfig


class Running:
    def __init__(self, app: ModelServer, url: str, server: Any, thread: threading.Thread) -> None:
        self.app, self.url, self.server, self.thread = app, url, server, thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the server did not stop"


@contextmanager
def running(models: Any, config: ServeConfig | None = None, **kwargs: Any) -> Iterator[Running]:
    from mlops_desktop.serving import runner

    config = (config or ServeConfig()).with_(port=0)
    app = create_app(models, config, **kwargs)
    sock = runner.bind("127.0.0.1", 0)
    server = runner.uvicorn_server(app, config)
    server.config.loop = "asyncio"

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    srv = Running(app, f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread)
    try:
        yield srv
    finally:
        if thread.is_alive():
            srv.stop()
        sock.close()
