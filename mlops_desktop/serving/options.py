"""The server's command-line options, shared by `mlops-desktop serve` and `python -m mlops_desktop.serving`."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_desktop import envvars
from mlops_desktop.errors import UsageError
from mlops_desktop.serving.config import DEFAULT_MAX_BODY, BatchConfig, LogConfig, ServeConfig, read_token


def add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else needs a token or --insecure)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the port (default 1)")
    p.add_argument("--token-file", metavar="FILE",
                   help="require 'Authorization: Bearer <token>' with the token in FILE "
                        "(or $MLOPS_SERVE_TOKEN); health probes stay open")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback bind without a token (a network you trust)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY / (1 << 20),
                   help=f"largest request body in MiB (default {DEFAULT_MAX_BODY >> 20}); larger ones get 413")
    p.add_argument("--max-batch", type=int, default=BatchConfig.max_rows,
                   help=f"most rows per model call (default {BatchConfig.max_rows})")
    p.add_argument("--max-wait-ms", type=float, default=BatchConfig.max_wait_ms,
                   help=f"longest a batch waits for requests still being read (default {BatchConfig.max_wait_ms})")
    p.add_argument("--no-batching", action="store_true", help="one model call per request")
    p.add_argument("--log-dir", metavar="DIR", help="prediction-log segment folder (default: in the workspace; "
                                                    "required for --bundle without a workspace)")
    p.add_argument("--no-log", action="store_true", help="keep no prediction log")
    p.add_argument("--sample-rate", type=float, default=1.0, help="fraction of requests logged (default 1)")
    p.add_argument("--log-dataset", metavar="NAME", help="lake dataset of the log (default predictions_<model>)")
    p.add_argument("--segment-age", type=float, default=LogConfig.segment_max_age_s,
                   help="seconds after which the open log segment is closed, so collectors can pull it "
                        f"(default {LogConfig.segment_max_age_s:g}; lower: fresher monitoring, more files)")
    p.add_argument("--commit-interval", type=float, default=LogConfig.commit_interval_s,
                   help=f"seconds between lake commits of the log (default {LogConfig.commit_interval_s:g})")
    p.add_argument("--drain-timeout", type=float, default=20.0,
                   help="seconds in-flight requests may take after SIGTERM (default 20)")
    p.add_argument("--handover-grace", type=float, default=1.0,
                   help="seconds to keep answering after SIGTERM, closing each connection after its answer, so "
                        "clients move to a replacement on the same port (default 1; 0 stops at once)")
    p.add_argument("--access-log", action="store_true", help="print one line per request")
    p.add_argument("--admin-token-file", metavar="FILE",
                   help="open PUT /admin/settings (the live decision threshold) to 'Authorization: Bearer <token>' "
                        "with the token in FILE (or $MLOPS_ADMIN_TOKEN); closed without one")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="a classifier's decision threshold at start: label the positive class when its probability "
                        "is at least P (changes live through /admin/settings)")
    p.add_argument("--positive-class", metavar="LABEL",
                   help="the class --threshold is for (default: a binary model's second class)")


def config_from_args(args: argparse.Namespace, log_dir: Path | None) -> ServeConfig:
    token = None
    if getattr(args, "token_file", None):
        token = read_token(args.token_file)
    elif envvars.MLOPS_SERVE_TOKEN.get():
        token = envvars.MLOPS_SERVE_TOKEN.get()
    if args.max_body_mb <= 0:
        raise UsageError("--max-body-mb must be positive")
    admin_token = None
    if getattr(args, "admin_token_file", None):
        admin_token = read_token(args.admin_token_file)
    elif envvars.MLOPS_ADMIN_TOKEN.get():
        admin_token = envvars.MLOPS_ADMIN_TOKEN.get()
    batch = BatchConfig(max_rows=args.max_batch, max_wait_ms=args.max_wait_ms, enabled=not args.no_batching)
    log = LogConfig(enabled=not args.no_log, directory=log_dir, sample_rate=args.sample_rate,
                    dataset=args.log_dataset, commit_interval_s=args.commit_interval,
                    segment_max_age_s=getattr(args, "segment_age", LogConfig.segment_max_age_s))
    return ServeConfig(host=args.host, port=args.port, workers=args.workers, token=token, insecure=args.insecure,
                       max_body_bytes=int(args.max_body_mb * (1 << 20)), batch=batch, log=log,
                       drain_timeout_s=args.drain_timeout,
                       handover_grace_s=getattr(args, "handover_grace", 1.0), access_log=args.access_log, admin_token=admin_token,
                       threshold=getattr(args, "threshold", None), positive_class=getattr(args, "positive_class", None))


def to_argv(args: argparse.Namespace) -> list[str]:
    """The server options of parsed `args` back as command-line words (for the server process), minus host/port."""
    out: list[str] = []
    defaults = {"workers": 1, "max_body_mb": DEFAULT_MAX_BODY / (1 << 20), "max_batch": BatchConfig.max_rows,
                "max_wait_ms": BatchConfig.max_wait_ms, "sample_rate": 1.0,
                "commit_interval": LogConfig.commit_interval_s, "segment_age": LogConfig.segment_max_age_s,
                "drain_timeout": 20.0, "handover_grace": 1.0}
    for key, default in defaults.items():
        value = getattr(args, key, default)
        if value != default:
            out += [f"--{key.replace('_', '-')}", str(value)]
    for key in ("token_file", "log_dataset", "admin_token_file", "threshold", "positive_class"):
        value = getattr(args, key, None)
        if value is not None and value != "":
            out += [f"--{key.replace('_', '-')}",
                    str(Path(value).resolve()) if key.endswith("token_file") else str(value)]
    for flag in ("insecure", "no_batching", "no_log", "access_log"):
        if getattr(args, flag, False):
            out.append(f"--{flag.replace('_', '-')}")
    return out
