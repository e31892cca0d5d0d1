"""What a job runs: its argv (command, script or recipe) and the detached POSIX-sh wrapper that records its exit."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

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
    # the job's own start and end on the host's clock (GNU date: nanoseconds; elsewhere "%N" stays literal and
    # is ignored): the duration does not depend on when we look, nor on a clock difference between the machines
    lines += ["started=$(date +%s.%N 2>/dev/null)",
              f"{shlex.join(argv)} >> {log} 2>&1 < /dev/null",
              "code=$?",
              "ended=$(date +%s.%N 2>/dev/null)",
              f"printf '%s\\n%s %s\\n' \"$code\" \"$started\" \"$ended\" > {q(f'{d}/{EXIT}.tmp')} && "
              f"mv -f {q(f'{d}/{EXIT}.tmp')} {exit_file}",
              "exit $code", ""]
    return "\n".join(lines)


def parse_exit(text: str) -> tuple[int | None, float | None]:
    """(exit code, seconds the job ran) from an exit_code file: "CODE" (older wrappers, or the wrapper could not
    enter the job directory) or "CODE\\nSTART END" with the host's clock times."""
    lines = text.strip().splitlines()
    if not lines or not lines[0].strip().lstrip("-").isdigit():
        return None, None
    code = int(lines[0].strip())
    seconds = None
    if len(lines) > 1:
        parts = lines[1].split()
        try:
            start, end = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            pass
        else:
            seconds = end - start if end >= start else None
    return code, seconds


TAIL_LINES = 40
TAIL_BYTES = 8 << 10
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))(?::\s.*)?$")
_SIGNALS = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}


def output_tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """The last ``lines`` lines of a job's output, at most ``max_bytes`` (read from the end of the file)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if len(data) == max_bytes and size > max_bytes:
        text = text.split("\n", 1)[1] if "\n" in text else text  # drop the cut first line
    kept = text.splitlines()[-lines:]
    out = "\n".join(kept)
    while len(out.encode("utf-8")) > max_bytes:
        out = out[1:]
    return out


def failure_summary(exit_code: int, tail: str) -> str:
    """One line saying why a job failed: its exit code (or signal) and the exception or last line it printed."""
    what = f"the job exited with code {exit_code}"
    if exit_code > 128 and exit_code - 128 in _SIGNALS:
        name = _SIGNALS[exit_code - 128]
        what += f" (killed by {name}" + (": out of memory?" if name == "SIGKILL" else "") + ")"
    if exit_code == CANNOT_ENTER_EXIT:
        return what + ": cannot enter the job directory"
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return f"{what}: {line}"[:1000]
    if lines:
        return f"{what}; its last output: {lines[-1]}"[:1000]
    return what + " (it printed nothing)"


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
