"""`python -m mlops_desktop.serving.router`: the router process (a container's PID 1, a managed local router).

Reads the config (`--config FILE` or `$MLOPS_ROUTER_CONFIG`), binds, serves until SIGTERM/SIGINT, drains, exits 0;
a bad config is refused in words with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from mlops_desktop.errors import MlopsError
from mlops_desktop.serving.router import Router, create_router

log = logging.getLogger("mlops_desktop.serving.router")


def serve_forever(router: Router, sock: socket.socket, *, status_file: Path | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then drain and return 0 (a container's PID 1, a managed local router)."""
    from mlops_desktop.serving import handover
    from mlops_desktop.serving.runner import _run, write_status

    port = sock.getsockname()[1]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await router.start(sock)
        handover.take_over(sock)
        write_status(status_file, pid=os.getpid(), port=port, host=router.config.host, state="running",
                     started_at=time.time())
        log.warning("router %s on http://%s:%d: arms %s (stable %s)", router.config.name, router.config.host, port,
                    ", ".join(f"{a}={w:g}" for a, w in router.settings.weights.items()), router.config.stable)
        await stop.wait()
        write_status(status_file, state="draining")
        await router.stop()

    write_status(status_file, pid=os.getpid(), port=port, host=router.config.host, state="starting",
                 started_at=time.time())
    code = 0
    try:
        _run(main)
    except Exception as exc:
        log.error("the router stopped: %s", exc)
        code = 1
    write_status(status_file, state="exited", exit_code=code, ended_at=time.time())
    return code


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlops_desktop.serving.router",
                                description="The A/B and shadow router in front of model servers.")
    p.add_argument("--config", metavar="FILE", help="router config, TOML or JSON (default: $MLOPS_ROUTER_CONFIG)")
    p.add_argument("--host", help="address to bind (overrides the config)")
    p.add_argument("--port", type=int, help="port to bind (overrides the config; 0 picks a free one)")
    p.add_argument("--state-dir", metavar="DIR", help="change log, live settings, shadow log (overrides the config)")
    p.add_argument("--status-file", metavar="FILE", help="write pid, port, state and exit code here (JSON)")
    p.add_argument("--check", action="store_true", help="check the config, print it (secrets masked) and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except MlopsError as exc:
        print(f"mlops-desktop router: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _main(args: argparse.Namespace) -> int:
    import json

    from mlops_desktop.serving import router_config, runner

    config = router_config.from_env_or_file(args.config)
    changes: dict[str, Any] = {}
    if args.host is not None:
        changes["host"] = args.host
    if args.port is not None:
        changes["port"] = args.port
    if args.state_dir is not None:
        changes["state_dir"] = Path(args.state_dir)
    config = config.with_(**changes)
    router_config.check_exposure(config)
    if args.check:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    if config.state_dir is None:
        log.warning("router: no state_dir: live changes are kept in memory only and a restart forgets them")
    router = create_router(config)
    sock = runner.bind(config.host, config.port)
    return serve_forever(router, sock, status_file=Path(args.status_file) if args.status_file else None)
