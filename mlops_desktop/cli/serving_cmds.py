"""`serve`: run a model server in the foreground or as a managed background process; list, stop, restart, logs."""

from __future__ import annotations

import argparse
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.errors import UsageError

ACTIONS = ("list", "status", "stop", "logs", "restart")
HELP = """serve a model version over HTTP (MLflow /invocations, Open Inference Protocol v2, /health, /metrics)

  serve MODEL@ALIAS|MODEL/VERSION [--port P] [--detach]   start (in the foreground unless --detach)
  serve list                                             managed servers and their observed state
  serve status NAME                                      one server and its event history
  serve logs NAME [-n LINES]                             the end of its log
  serve stop NAME                                        drain and stop it
  serve restart NAME [--ref MODEL@ALIAS|MODEL/VERSION]   serve another version on the same port, no downtime
"""


def register(sub: Any) -> None:
    from mlops_desktop.serving.options import add_server_options

    p = command(sub, "serve", run, "serve a model over HTTP; list, stop, restart and read logs of managed servers",
                epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="MODEL@ALIAS|MODEL/VERSION|ACTION",
                   help="the model version to serve, or one of: " + ", ".join(ACTIONS))
    p.add_argument("names", nargs="*", metavar="NAME", help="the managed server an action applies to")
    p.add_argument("--detach", action="store_true", help="run as a managed background process (survives the app)")
    p.add_argument("--name", help="name of the managed server (default: the model name)")
    p.add_argument("--ref", help="restart: the version to serve instead (default: the same reference again)")
    p.add_argument("-n", "--lines", type=int, default=100, help="logs: how many lines (default 100)")
    add_server_options(p)


def run(args: argparse.Namespace) -> int:
    if args.target in ACTIONS:
        return _action(args)
    if args.names:
        raise UsageError(f"unexpected argument(s) after {args.target}: {' '.join(args.names)}")
    from mlops_desktop.serving import manager, options, source

    options.config_from_args(args, None)  # refuse bad options (a public bind without a token) before starting
    ws = open_workspace(args)
    try:
        if args.detach:
            server = manager.start(ws, args.target, name=args.name, host=args.host, port=args.port,
                                   extra=options.to_argv(args))
            return _show(args, server, f"serving {server.model}/{server.version} at {server.url} "
                                       f"(pid {server.pid}); `mlops-desktop serve logs {server.name}`")
        target = source.resolve(ws, args.target)
        home = str(ws.root)
    finally:
        ws.close()
    from mlops_desktop.serving.__main__ import main as serve_main

    log_dir = args.log_dir or str(ws.paths.serving / (args.name or target.model) / "predictions" / "foreground")
    return serve_main([*target.argv, "--host", args.host, "--port", str(args.port), "--home", home,
                       "--log-dir", log_dir, *options.to_argv(args)])


def _action(args: argparse.Namespace) -> int:
    from mlops_desktop.cli.output import emit_json, fmt_time, table
    from mlops_desktop.serving import manager

    action = args.target
    if action == "list":
        if args.names:
            raise UsageError("`serve list` takes no name")
    elif len(args.names) != 1:
        raise UsageError(f"`serve {action}` needs one server name", hint="see `mlops-desktop serve list`")
    ws = open_workspace(args)
    try:
        if action == "list":
            servers = manager.list_servers(ws)
            if args.json:
                emit_json([s.to_dict() for s in servers])
            else:
                table(["name", "model", "version", "state", "url", "pid", "started"],
                      [[s.name, s.model, s.version, s.state + (f" ({s.error})" if s.error else ""), s.url, s.pid,
                        fmt_time(s.started_at)] for s in servers])
            return 0
        name = args.names[0]
        if action == "logs":
            print(manager.logs(ws, name, args.lines))
            return 0
        if action == "stop":
            server = manager.stop(ws, name)
            return _show(args, server, f"{name}: {server.state}" + (f" ({server.error})" if server.error else ""))
        if action == "restart":
            server = manager.restart(ws, name, args.ref)
            return _show(args, server, f"{name}: now serving {server.model}/{server.version} at {server.url}")
        server = manager.get(ws, name)
        history = manager.events(ws, name)
        if args.json:
            emit_json(server.to_dict() | {"events": history})
            return 0
        print(f"{server.name}: {server.state} - {server.model}/{server.version} ({server.ref}) at {server.url}, "
              f"pid {server.pid}" + (f"; {server.error}" if server.error else ""))
        table(["when", "who", "event", "from", "to", "detail"],
              [[fmt_time(e["at"]), e["actor"], e["event"], e["from_version"], e["to_version"], e["detail"]]
               for e in history])
        return 0
    finally:
        ws.close()


def _show(args: argparse.Namespace, server: Any, line: str) -> int:
    from mlops_desktop.cli.output import emit_json

    if args.json:
        emit_json(server.to_dict())
    else:
        print(line)
    return 0 if server.state in ("running", "stopped") else 1
