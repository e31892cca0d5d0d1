"""`mlops-desktop hosts ...` and `mlops-desktop jobs ...`: hosts, GPUs and jobs from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import clean_json, emit_json, fmt_duration, fmt_time, table


def register(sub: argparse._SubParsersAction) -> None:
    hosts = sub.add_parser("hosts", help="this machine and SSH hosts, with their GPUs")
    hs = hosts.add_subparsers(dest="hosts_command", metavar="COMMAND", required=True)
    command(hs, "list", cmd_hosts_list, "list hosts with what their last inspection found")
    p = command(hs, "add", cmd_hosts_add, "add an SSH host (then connect and inspect it)")
    p.add_argument("name")
    p.add_argument("--hostname", required=True, help="address or DNS name")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--user", default="")
    p.add_argument("--identity-file", default="", help="private key (no passphrase prompt: use ssh-agent for those)")
    p.add_argument("--proxy-jump", default="", help="jump host(s): a host name of this workspace or [user@]host[:port]")
    p.add_argument("--python", default="python3", help="Python interpreter on the host")
    p.add_argument("--work-dir", default="", help="folder for projects and jobs on the host (default ~/.mlops-desktop)")
    p.add_argument("--max-jobs", type=int, default=1, help="jobs that may run at once on this host")
    p.add_argument("--replace", action="store_true", help="overwrite a host of the same name")
    p.add_argument("--no-inspect", action="store_true", help="only record it; do not connect now")
    _accept_option(p)
    p = command(hs, "set", cmd_hosts_set, "change settings of a host (also `local`)")
    p.add_argument("name")
    p.add_argument("--max-jobs", type=int)
    p.add_argument("--python")
    p.add_argument("--work-dir")
    p = command(hs, "import-ssh-config", cmd_hosts_import, "add the hosts of an OpenSSH config (~/.ssh/config)")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these Host entries (default: all)")
    p.add_argument("--file", default=None, help="config file (default ~/.ssh/config)")
    p.add_argument("--replace", action="store_true", help="overwrite hosts of the same name")
    p = command(hs, "inspect", cmd_hosts_inspect, "connect and read OS, CPUs, memory, disk, Python and GPUs")
    p.add_argument("name")
    _accept_option(p)
    p = command(hs, "remove", cmd_hosts_remove, "remove an SSH host (its finished jobs stay listed)")
    p.add_argument("name")

    jobs = sub.add_parser("jobs", help="run commands, scripts and training recipes here or on SSH hosts")
    js = jobs.add_subparsers(dest="jobs_command", metavar="COMMAND", required=True)
    p = command(js, "submit", cmd_jobs_submit, "queue a job (each job is a tracked run); -- COMMAND runs a command",
                epilog="sweeps: grid:lr=0.1,0.01;depth=3,5  or  random:20:lr=loguniform(1e-4,1e-1);depth=choice(3,5)")
    p.add_argument("--host", default="local")
    p.add_argument("--gpus", type=int, default=0, help="number of GPUs the job needs (CUDA_VISIBLE_DEVICES is set)")
    p.add_argument("--priority", type=int, default=0, help="higher starts first")
    p.add_argument("--experiment", "-e", default="")
    p.add_argument("--name", default="")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--recipe", help="built-in training recipe: sklearn, torch-mlp")
    what.add_argument("--script", help="Python script, run with the tracking environment set")
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter (repeatable); scripts get --key=value, commands substitute {key}")
    p.add_argument("--register", metavar="MODEL", help="recipes: register the fitted model as the next version of "
                   "MODEL when the run succeeds")
    p.add_argument("--sweep", help="grid:... or random:N:... over parameters (one child run per point)")
    p.add_argument("--seed", type=int, help="seed of a random sweep")
    proj = p.add_mutually_exclusive_group()
    proj.add_argument("--project", help="project folder, copied to SSH hosts (default: the one holding mlops.toml "
                                        "above the current folder, else the git root, else the current folder)")
    proj.add_argument("--no-project", action="store_true", help="run without a project folder")
    p.add_argument("--yes", "-y", action="store_true",
                   help="sync the project to an SSH host even when it is above the size limit")
    p.add_argument("--follow", "-f", action="store_true", help="stream logs and wait until the jobs end")
    _accept_option(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS... (when neither --recipe nor --script)")
    p = command(js, "list", cmd_jobs_list, "list jobs, asking SSH hosts with active jobs for their state first")
    p.add_argument("--state", action="append", help="only jobs in this state (repeatable)")
    p.add_argument("--host")
    p.add_argument("--limit", "-n", type=int, default=50)
    p.add_argument("--timeout", type=float, default=3.0,
                   help="seconds an SSH host may take to answer; one that does not is marked, not waited for")
    p.add_argument("--no-refresh", action="store_true",
                   help="do not contact SSH hosts: show their jobs as of the last contact")
    p.add_argument("--refresh", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    p = command(js, "show", cmd_jobs_show, "show one job")
    p.add_argument("job", type=int)
    p = command(js, "logs", cmd_jobs_logs, "print a job's output (remote: what was streamed so far, plus new output)")
    p.add_argument("job", type=int)
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    p.add_argument("--tail", type=int, default=0, help="only the last N lines")
    p = command(js, "cancel", cmd_jobs_cancel, "cancel a job: SIGTERM to its process group, SIGKILL after --grace")
    p.add_argument("job", type=int)
    p.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    p = command(js, "attach", cmd_jobs_attach, "reconnect to a job and stream its new output and metrics to the end")
    p.add_argument("job", type=int)
    p = command(js, "work", cmd_jobs_work, "run the queue here: start jobs as hosts free up, until none is left")
    p.add_argument("--poll", type=float, default=0.5)


def _accept_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust an SSH host key seen for the first time (check its fingerprint first!)")


def _executor(ws: Any, args: argparse.Namespace) -> Any:
    from mlops_desktop.execution import Executor

    return Executor(ws, accept_new_host_key=getattr(args, "accept_new_host_key", False))


# ------------------------------------------------------------------------------------------------------ hosts
def _host_row(h: Any) -> list[Any]:
    inv = h.inventory
    gpus = "-"
    mem = "-"
    if inv is not None:
        gpus = ", ".join(f"{g.index}:{g.name}" for g in inv.gpus) or ("none" if not inv.gpu_error else "?")
        if inv.memory_total_mib:
            mem = f"{inv.memory_total_mib / 1024:.0f} GiB"
    return [h.name, h.kind, h.address, inv.cpus if inv else "-", mem, gpus, h.max_jobs,
            fmt_time(h.inventory_at) if h.inventory_at else "never"]


def cmd_hosts_list(args: argparse.Namespace) -> int:
    from mlops_desktop.execution import HostRegistry

    with open_workspace(args) as ws:
        hosts = HostRegistry(ws).list()
    if args.json:
        emit_json(clean_json([h.to_dict() for h in hosts]))
    else:
        table(["name", "kind", "address", "cpus", "memory", "gpus", "max jobs", "inspected"],
              [_host_row(h) for h in hosts])
    return 0


def cmd_hosts_add(args: argparse.Namespace) -> int:
    from mlops_desktop.execution import HostRegistry

    with open_workspace(args) as ws:
        host = HostRegistry(ws).add(args.name, hostname=args.hostname, port=args.port, user=args.user,
                                    identity_file=args.identity_file, proxy_jump=args.proxy_jump, python=args.python,
                                    work_dir=args.work_dir, max_jobs=args.max_jobs, replace=args.replace)
        print(f"added host {host.name} ({host.address})", file=sys.stderr)
        if args.no_inspect:
            return 0
        return _inspect(ws, args, host.name)


def cmd_hosts_set(args: argparse.Namespace) -> int:
    from mlops_desktop.execution import HostRegistry

    fields = {k: getattr(args, k) for k in ("max_jobs", "python", "work_dir") if getattr(args, k) is not None}
    with open_workspace(args) as ws:
        host = HostRegistry(ws).update(args.name, **fields)
    if args.json:
        emit_json(clean_json(host.to_dict()))
    else:
        table(["name", "kind", "address", "cpus", "memory", "gpus", "max jobs", "inspected"], [_host_row(host)])
    return 0


def cmd_hosts_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops_desktop.execution import HostRegistry

    with open_workspace(args) as ws:
        added = HostRegistry(ws).import_ssh_config(Path(args.file) if args.file else None, args.names or None,
                                                   replace=args.replace)
    if args.json:
        emit_json(clean_json([h.to_dict() for h in added]))
    else:
        table(["name", "address", "identity file", "proxy jump"],
              [[h.name, h.address, h.identity_file, h.proxy_jump] for h in added])
        print(f"{len(added)} host(s) imported; check each with: mlops-desktop hosts inspect NAME", file=sys.stderr)
    return 0


def cmd_hosts_inspect(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        return _inspect(ws, args, args.name)


def _inspect(ws: Any, args: argparse.Namespace, name: str) -> int:
    with _executor(ws, args) as ex:
        inv = ex.inspect(name)
    if args.json:
        emit_json(clean_json(inv.to_dict()))
        return 0
    rows = [["os", inv.os], ["kernel", inv.kernel], ["cpus", inv.cpus],
            ["cpu busy", f"{inv.cpu_busy_pct}%" if inv.cpu_busy_pct is not None else "-"],
            ["memory", _mib(inv.memory_available_mib, inv.memory_total_mib, "available")],
            ["disk", _mib(inv.disk_free_mib, inv.disk_total_mib, "free")], ["python", inv.python or "missing"]]
    for g in inv.gpus:
        rows.append([f"gpu {g.index}", f"{g.name} {_mib(g.memory_used_mib, g.memory_total_mib, 'used')} "
                                       f"util {g.utilization_pct}% {g.temperature_c}°C {g.power_w} W"])
    for proc in inv.gpu_processes:
        rows.append(["gpu process", f"pid {proc.pid} {proc.process_name} {proc.used_memory_mib} MiB on {proc.gpu_uuid}"])
    if not inv.gpus:
        rows.append(["gpus", inv.gpu_error or "none"])
    table(["field", "value"], rows, max_width=100)
    return 0


def _mib(part: float | None, total: float | None, word: str) -> str:
    if part is None or not total:
        return "-"
    return f"{part / 1024:.1f} of {total / 1024:.1f} GiB {word}"


def cmd_hosts_remove(args: argparse.Namespace) -> int:
    from mlops_desktop.execution import HostRegistry

    with open_workspace(args) as ws:
        HostRegistry(ws).remove(args.name)
    print(f"removed host {args.name}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------------------ jobs
def cmd_jobs_submit(args: argparse.Namespace) -> int:
    from mlops_desktop.errors import UsageError
    from mlops_desktop.execution import JobRequest
    from mlops_desktop.execution.launch import parse_params

    cmd = list(args.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if args.recipe or args.script:
        if cmd:
            raise UsageError("give either --recipe, --script or -- COMMAND, not several")
        kind = "recipe" if args.recipe else "script"
    elif cmd:
        kind = "command"
    else:
        raise UsageError("nothing to run: give --recipe NAME, --script FILE or -- COMMAND")
    params = parse_params(args.param)
    if args.register:  # the recipe tags its run; the recipe or the job runner registers it on success
        if kind != "recipe":
            raise UsageError("--register works with --recipe (a script registers with `models register RUN`)")
        from mlops_desktop.registry.names import check_model_name

        params["register"] = check_model_name(args.register)
    req = JobRequest(host=args.host, kind=kind, command=cmd or None, script=args.script, recipe=args.recipe,
                     params=params, sweep=args.sweep, seed=args.seed, gpus=args.gpus,
                     priority=args.priority, experiment=args.experiment, name=args.name,
                     project_dir="" if args.no_project else args.project, confirm_sync=args.yes)
    with open_workspace(args) as ws, _executor(ws, args) as ex:
        jobs = _submit(ex, req)
        ex.start_ready()
        jobs = [ex.jobs.get(j.id) for j in jobs]
        if not args.follow:
            _print_jobs(args, jobs)
            queued = sum(1 for j in jobs if j.state == "queued")
            if queued and not args.json:
                print(f"{queued} job(s) wait in the queue; they start while `mlops-desktop jobs work` or the desktop "
                      f"app runs", file=sys.stderr)
            return 1 if any(j.state == "failed" for j in jobs) else 0
        return _follow(ex, [j.id for j in jobs], args)


def _submit(ex: Any, req: Any) -> list[Any]:
    """Submit, saying first what the project sync would copy; above the limit, ask on a terminal."""
    from mlops_desktop.execution.projects import SyncTooLargeError

    def show(plan: Any) -> None:
        print(f"mlops-desktop: {plan.describe()}", file=sys.stderr)

    try:
        return ex.submit(req, on_plan=show)
    except SyncTooLargeError as exc:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise
        print(f"mlops-desktop: {exc}", file=sys.stderr)
        if input("Copy it anyway? [y/N] ").strip().lower() not in ("y", "yes"):
            raise
        req.confirm_sync = True
        return ex.submit(req)


def _follow(ex: Any, job_ids: list[int], args: argparse.Namespace, run_queue: bool = True,
            from_start: bool = True) -> int:
    multi = len(job_ids) > 1

    def on_log(job: Any, data: bytes) -> None:
        if multi:
            text = data.decode("utf-8", "replace")
            for line in text.splitlines(keepends=True):
                sys.stdout.write(f"[{job.id}] {line}")
            sys.stdout.flush()
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()

    try:
        jobs = ex.follow(job_ids, on_log if not args.json else None, run_queue=run_queue, from_start=from_start,
                         on_error=lambda msg: print(f"mlops-desktop: {msg}", file=sys.stderr))
    except KeyboardInterrupt:
        print(f"\nmlops-desktop: detached; the job(s) keep running. Resume with: mlops-desktop jobs attach "
              f"{job_ids[0]}", file=sys.stderr)
        return 130
    if args.json:
        emit_json(clean_json([j.to_dict() for j in jobs]))
    else:
        for j in jobs:
            print(f"job {j.id}: {j.state}" + (f" (exit {j.exit_code})" if j.exit_code is not None else "")
                  + (f" after {fmt_duration(j.duration)}" if j.duration is not None else "")
                  + (f": {j.error}" if j.error else ""), file=sys.stderr)
    return 0 if all(j.state == "succeeded" for j in jobs) else 1


def _print_jobs(args: argparse.Namespace, jobs: list[Any], unreachable: dict[str, str] | None = None) -> None:
    unreachable = unreachable or {}
    if args.json:
        emit_json(clean_json([j.to_dict() | {"host_answered": None if j.contact_age is None
                                             else j.host not in unreachable} for j in jobs]))
        return
    table(["id", "state", "as of", "host", "gpus", "name", "run", "exit", "duration", "created"],
          [[j.id, j.state, _as_of(j, unreachable), j.host,
            j.gpu_ids or (f"{j.gpus_requested}?" if j.gpus_requested else ""), j.name, (j.run_uuid or "")[:8],
            j.exit_code, fmt_duration(j.duration), fmt_time(j.created_at)] for j in jobs])


def _as_of(job: Any, unreachable: dict[str, str]) -> str:
    """An active SSH job's state is what its host said at the last contact: say how old that is."""
    age = job.contact_age
    if age is None:
        return ""
    when = "just now" if age < 5 else f"{fmt_duration(age)} ago"
    return f"{when} (host not answering)" if job.host in unreachable else when


def cmd_jobs_list(args: argparse.Namespace) -> int:
    unreachable: dict[str, str] = {}
    with open_workspace(args) as ws, _executor(ws, args) as ex:
        if args.no_refresh:
            result = ex.tick(connect=False, start=False)
            errors = result.errors
        else:
            survey = ex.survey(timeout_s=args.timeout)
            unreachable, errors = survey.unreachable, survey.errors
        for err in [*unreachable.values(), *errors]:
            print(f"mlops-desktop: {err}", file=sys.stderr)
        jobs = ex.jobs.list(states=tuple(args.state) if args.state else None, host=args.host, limit=args.limit)
    _print_jobs(args, jobs, unreachable)
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws, _executor(ws, args) as ex:
        job = ex.jobs.get(args.job)
    if args.json:
        emit_json(clean_json(job.to_dict()))
    else:
        import shlex

        d = job.to_dict()
        d["argv"] = shlex.join(job.argv)
        d["params"] = " ".join(f"{k}={v}" for k, v in job.params.items())
        for key in ("created_at", "started_at", "ended_at"):
            d[key] = fmt_time(d[key])
        d["duration"] = fmt_duration(job.duration)
        table(["field", "value"], list(d.items()), max_width=120)
    return 0


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    from mlops_desktop.execution.backends import local_job_dir
    from mlops_desktop.execution.errors import SshError
    from mlops_desktop.execution.launch import LOG

    with open_workspace(args) as ws, _executor(ws, args) as ex:
        job = ex.jobs.get(args.job)
        if job.remote_dir and not job.is_final:
            try:
                job = ex.refresh(job)  # fetch what is new (appended to the local copy)
            except SshError as exc:
                print(f"mlops-desktop: {exc} (showing what was fetched before)", file=sys.stderr)
        path = local_job_dir(ws, job.id) / LOG
        full = path.read_bytes() if path.exists() else b""
        data = full
        if args.tail:
            data = b"".join(data.splitlines(keepends=True)[-args.tail:])
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        if not args.follow or job.is_final:
            return 0
        ex._local_log_pos[job.id] = len(full)
        return _follow(ex, [job.id], args, run_queue=False)


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws, _executor(ws, args) as ex:
        job = ex.cancel(args.job, grace_s=args.grace)
    _print_jobs(args, [job])
    return 0


def cmd_jobs_attach(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws, _executor(ws, args) as ex:
        job = ex.jobs.get(args.job)
        if job.is_final:
            print(f"job {job.id} already ended: {job.state}", file=sys.stderr)
            return 0 if job.state == "succeeded" else 1
        # print only what is new: remote jobs resume from the stored offsets, exactly where the stream stopped
        return _follow(ex, [job.id], args, run_queue=False, from_start=False)


def cmd_jobs_work(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws, _executor(ws, args) as ex:
        try:
            while True:
                result = ex.tick()
                for j in result.started:
                    print(f"job {j.id}: {j.state} on {j.host}", file=sys.stderr)
                for j in result.finished:
                    print(f"job {j.id}: {j.state}" + (f" (exit {j.exit_code})" if j.exit_code is not None else ""),
                          file=sys.stderr)
                for err in result.errors:
                    print(f"mlops-desktop: {err}", file=sys.stderr)
                if not ex.jobs.list(states=("queued", "starting", "running"), limit=1):
                    return 0
                time.sleep(args.poll)
        except KeyboardInterrupt:
            print("\nmlops-desktop: stopped running the queue; started jobs keep running", file=sys.stderr)
            return 130
