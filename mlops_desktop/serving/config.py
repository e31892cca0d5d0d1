"""The model server's settings: what a server binds, how it batches, validates, authenticates and logs predictions."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_desktop.errors import UsageError

DEFAULT_MAX_BODY = 64 << 20  # MLflow's nginx front caps bodies at 5 MB (mlflow#6825); a 100-row batch is ~40 KB
TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,512}$")


@dataclass(frozen=True)
class BatchConfig:
    """Adaptive batching of one model: concurrent requests become one predict call.

    A batch leaves as soon as the model is free and every request that has reached the server is in it (so a lone
    caller never waits); `max_wait_ms` bounds how long a batch below `max_rows` may wait for more requests while
    others are still being read. A request larger than `max_rows` is scored on its own, never split.
    """

    max_rows: int = 256
    max_wait_ms: float = 2.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise UsageError(f"max batch size must be at least 1 row (got {self.max_rows})")
        if not 0 <= self.max_wait_ms <= 1000:
            raise UsageError(f"max batch wait must be between 0 and 1000 ms (got {self.max_wait_ms})")


@dataclass(frozen=True)
class LogConfig:
    """The prediction log: sampled, bounded in memory, written as segment files, optionally committed to the lake."""

    enabled: bool = True
    directory: Path | None = None       # segment files; None = no log at all
    sample_rate: float = 1.0            # fraction of requests logged (by request, all rows of a request together)
    max_queue_rows: int = 200_000       # rows waiting for the writer; beyond it, records are dropped and counted
    flush_interval_s: float = 5.0       # writer wakes this often (or sooner when many rows wait): rows are
                                        # read from closed segments only, so this bounds memory, not delay
    segment_max_rows: int = 200_000     # a segment file is closed at this many rows ...
    segment_max_age_s: float = 60.0     # ... or this old, whichever comes first
    retain_bytes: int = 2 << 30         # closed segments kept at most (oldest removed first, counted)
    dataset: str | None = None          # lake dataset to commit segments to (needs a workspace)
    commit_interval_s: float = 600.0    # one lake version at most this often (plus one at shutdown)

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise UsageError(f"the prediction log sample rate must be between 0 and 1 (got {self.sample_rate})")
        if self.max_queue_rows < 1 or self.segment_max_rows < 1:
            raise UsageError("the prediction log queue and segment sizes must be at least 1 row")
        if not self.segment_max_age_s > 0:
            raise UsageError(f"the prediction log segment age must be positive (got {self.segment_max_age_s:g} s)")
        if self.commit_interval_s < 1:
            raise UsageError("the prediction log commit interval must be at least 1 s "
                             "(each commit is a lake version)")

    @property
    def active(self) -> bool:
        return self.enabled and self.directory is not None and self.sample_rate > 0


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    token: str | None = None            # bearer token; required for a bind beyond loopback unless insecure
    insecure: bool = False              # explicitly allow a non-loopback bind without a token
    max_body_bytes: int = DEFAULT_MAX_BODY
    batch: BatchConfig = field(default_factory=BatchConfig)
    log: LogConfig = field(default_factory=LogConfig)
    drain_timeout_s: float = 20.0       # SIGTERM: how long in-flight requests may take to finish
    # SIGTERM: keep serving this long first, every answer saying `Connection: close`, so keep-alive clients move to
    # the process that replaces this one (same port, SO_REUSEPORT) instead of meeting a closed idle connection
    handover_grace_s: float = 1.0
    access_log: bool = False
    admin_token: str | None = None      # bearer token of /admin/settings; without one the admin API is closed
    threshold: float | None = None      # a classifier's decision threshold at start (decision.py; live after)
    positive_class: str | None = None   # ... and the class it is for (default: a binary model's second class)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UsageError(f"port {self.port} is out of range", hint="use 1-65535, or 0 for any free port")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if self.max_body_bytes < 1024:
            raise UsageError("the request body limit must be at least 1 KB")
        if self.token is not None and not TOKEN_RE.match(self.token):
            raise UsageError("the bearer token must be 16-512 characters of letters, digits and ._~+/=-",
                             hint="e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if self.admin_token is not None and not TOKEN_RE.match(self.admin_token):
            raise UsageError("the admin token must be 16-512 characters of letters, digits and ._~+/=-")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise UsageError(f"--threshold must be a probability from 0 to 1 (got {self.threshold})")
        if not is_loopback(self.host) and self.token is None and not self.insecure:
            raise UsageError(f"binding to {self.host} exposes the model beyond this machine without a token",
                             hint="set a bearer token (--token-file or $MLOPS_SERVE_TOKEN), or pass --insecure "
                                  "to serve without one (for a network you trust, e.g. inside a cluster)")

    def with_(self, **changes: Any) -> ServeConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["token"] = "***" if self.token else None  # never print or store a secret
        out["admin_token"] = "***" if self.admin_token else None
        out["log"]["directory"] = str(self.log.directory) if self.log.directory else None
        return out


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: str | Path) -> str:
    """A token from a file (first line), so it never shows in `ps` or the shell history."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not text:
        raise UsageError(f"the token file {path} is empty")
    return text[0].strip()
