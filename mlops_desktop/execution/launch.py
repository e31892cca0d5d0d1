"""What a job runs: its argv (command, script or recipe) and the detached POSIX-sh wrapper that records its exit."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from mlops_desktop.execution.errors import JobError

LOG, SPOOL, PID, EXIT, SCRIPT = "output.log", "spool.ndjson", "pid", "exit_code", "run.sh"
CANNOT_ENTER_EXIT = 97
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def build_argv(kind: str, *, python: str, command: list[str] | None = None, script: str | None = None,
               recipe: str | None = None, params: Mapping[str, str] | None = None) -> list[str]:
    """The argv of a job. Params reach a script as --key=value, a recipe as --param key=value, and a raw command
    through {key} placeholders in its arguments (only names given as params are replaced: shell or awk braces such
    as ${HOME} or {print} stay as they are)."""
    params = dict(params or {})
    if kind == "command":
        if not command:
            raise JobError("no command given (put it after --)")
        return [_substitute(arg, params) for arg in command]
    if kind == "script":
        if not script:
            raise JobError("no script given")
        return [python, "-u", script, *[f"--{k}={v}" for k, v in params.items()]]
    if kind == "recipe":
        if not recipe:
            raise JobError("no recipe given")
        args = [python, "-u", "-m", "mlops_desktop.recipes", recipe]
        for k, v in params.items():
            args += ["--param", f"{k}={v}"]
        return args
    raise JobError(f"unknown job kind {kind!r}")


def _substitute(arg: str, params: Mapping[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(params[key]) if key in params else match.group(0)

    return _PLACEHOLDER.sub(repl, arg)


def wrapper_script(*, job_dir: str, cwd: str, argv: list[str], env: Mapping[str, str]) -> str:
    """A POSIX sh script that runs `argv` in `cwd` with `env`, output to the job log, and writes the exit code.

    It records its own pid (= the process group id: it is started with setsid); `trap : TERM` lets it outlive a
    group SIGTERM long enough to record the child's exit code; a SIGKILL leaves no exit_code (the job is then
    cancelled or lost). Every path and value is shlex-quoted: hostile names cannot inject shell code.
    """
    q = shlex.quote
    d = job_dir.rstrip("/")
    log, exit_file = q(f"{d}/{LOG}"), q(f"{d}/{EXIT}")
    lines = ["#!/bin/sh", "# MLOps Desktop job wrapper (generated)",
             f"echo $$ > {q(f'{d}/{PID}.tmp')} && mv -f {q(f'{d}/{PID}.tmp')} {q(f'{d}/{PID}')}",
             "trap : TERM INT HUP",
             f"cd {q(cwd)} || {{ echo \"mlops-desktop: cannot enter the job directory\" >> {log}; "
             f"echo {CANNOT_ENTER_EXIT} > {exit_file}; exit {CANNOT_ENTER_EXIT}; }}"]
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise JobError(f"environment variable name {name!r} is not valid")
        lines.append(f"{name}={q(value)}; export {name}")
    lines += [f"{shlex.join(argv)} >> {log} 2>&1 < /dev/null",
              "code=$?",
              f"echo $code > {q(f'{d}/{EXIT}.tmp')} && mv -f {q(f'{d}/{EXIT}.tmp')} {exit_file}",
              "exit $code", ""]
    return "\n".join(lines)


def parse_params(items: list[str] | None) -> dict[str, str]:
    """['lr=0.1', 'name=a b'] -> {'lr': '0.1', 'name': 'a b'}; errors name the bad item."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise JobError(f"--param {item!r} must look like key=value")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", key):
            raise JobError(f"--param {item!r}: key {key!r} must start with a letter or _ and hold only "
                           "letters, digits, _ . -")
        out[key] = value
    return out
