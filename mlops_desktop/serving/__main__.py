"""`python -m mlops_desktop.serving --bundle DIR`: the server process itself (a container's PID 1, a detached server).

Needs no workspace: with `--bundle` and `--log-dir` it reads only the bundle and writes only log segments. With
`--home` (what `mlops-desktop serve` passes) the prediction log is also committed to the workspace's lake.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from mlops_desktop.errors import MlopsError
from mlops_desktop.serving.options import add_server_options, config_from_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlops_desktop.serving",
                                description="Serve one model version over HTTP (MLflow /invocations, v2 protocol).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bundle", metavar="DIR", help="a model bundle folder")
    src.add_argument("--factory", metavar="MODULE:CALLABLE", help="a callable returning a Predictor")
    p.add_argument("--bundle-hash", metavar="SHA256", help="refuse the bundle unless its manifest has this hash")
    p.add_argument("--no-fast-path", action="store_true",
                   help="serve with the model's own flavor even where a verified ONNX fast path exists")
    p.add_argument("--name", help="model name (default: the bundle's)")
    p.add_argument("--version", help="model version (default: the bundle's)")
    p.add_argument("--home", metavar="DIR", help="workspace: also commit the prediction log to its lake")
    p.add_argument("--status-file", metavar="FILE", help="write pid, port, state and exit code here (JSON)")
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)            # worker of a --workers supervisor
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    add_server_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    try:
        return _main(args, raw)
    except MlopsError as exc:
        print(f"mlops-desktop serve: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _main(args: argparse.Namespace, raw: list[str]) -> int:
    from mlops_desktop.serving import runner, source
    from mlops_desktop.serving.app import create_app

    status = Path(args.status_file) if args.status_file else None
    log_dir = Path(args.log_dir) if args.log_dir else None
    if log_dir is not None and args.worker_index is not None:
        log_dir = log_dir / f"worker-{args.worker_index}"
    config = config_from_args(args, log_dir)
    if args.workers > 1 and args.fd is None:  # the supervisor: bind once, start the workers
        sock = runner.bind(config.host, config.port)
        return runner.supervise(_without_workers(raw), args.workers, sock, status)
    served = source.from_bundle(args.bundle, name=args.name, version=args.version, expected_hash=args.bundle_hash,
                                prefer_onnx=not args.no_fast_path) if args.bundle else \
        source.from_factory(args.factory, name=args.name, version=args.version)
    workspace = None
    if args.home and config.log.active:
        from mlops_desktop.workspace import Workspace

        workspace = Workspace.open(args.home)
    app = create_app(served, config, workspace=workspace)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
        status = None  # the supervisor reports for its workers
    else:
        sock = runner.bind(config.host, config.port)
    try:
        return runner.serve_forever(app, config, sock, status_file=status)
    finally:
        if workspace is not None:
            workspace.close()


def _without_workers(raw: list[str]) -> list[str]:
    out, skip = [], False
    for i, item in enumerate(raw):
        if skip:
            skip = False
            continue
        if item == "--workers":
            skip = i + 1 < len(raw)
            continue
        if item.startswith("--workers=") or item.startswith("--status-file"):
            if item == "--status-file":
                skip = True
            continue
        out.append(item)
    return [*out, "--workers", "1"]


if __name__ == "__main__":
    raise SystemExit(main())
