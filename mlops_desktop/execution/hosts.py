"""The hosts of a workspace: `local` plus SSH hosts added by hand or imported from ~/.ssh/config."""

from __future__ import annotations

import builtins
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from mlops_desktop.execution.errors import HostConfigError, HostNotFoundError
from mlops_desktop.execution.models import Host, Inventory

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,99}$")
_COLUMNS = ("name, kind, hostname, port, user, identity_file, proxy_jump, python, work_dir, max_jobs, inventory, "
            "inventory_at, created_at, last_contact_at, contact_error")


def _from_row(row: tuple) -> Host:
    (name, kind, hostname, port, user, identity_file, proxy_jump, python, work_dir, max_jobs, inventory,
     inventory_at, created_at, last_contact_at, contact_error) = row
    inv = Inventory.from_dict(json.loads(inventory)) if inventory else None
    return Host(name=name, kind=kind, hostname=hostname, port=port, user=user, identity_file=identity_file,
                proxy_jump=proxy_jump, python=python, work_dir=work_dir, max_jobs=max_jobs, inventory=inv,
                inventory_at=inventory_at, created_at=created_at, last_contact_at=last_contact_at,
                contact_error=contact_error)


class HostRegistry:
    """CRUD over the `hosts` table. The `local` host always exists and cannot be removed."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @property
    def known_hosts(self) -> Path:
        """The workspace's own known_hosts file (keys accepted with --accept-new-host-key)."""
        return self.ws.paths.root / "ssh" / "known_hosts"

    def list(self) -> list[Host]:
        rows = self.ws.db.query(f"SELECT {_COLUMNS} FROM hosts ORDER BY kind = 'ssh', name")
        return [_from_row(r) for r in rows]

    def get(self, name: str) -> Host:
        rows = self.ws.db.query(f"SELECT {_COLUMNS} FROM hosts WHERE name = ?", (name,))
        if not rows:
            names = ", ".join(h.name for h in self.list())
            raise HostNotFoundError(f"no host named {name!r} in this workspace", hint=f"known hosts: {names}")
        return _from_row(rows[0])

    def add(self, name: str, *, hostname: str, port: int = 22, user: str = "", identity_file: str = "",
            proxy_jump: str = "", python: str = "python3", work_dir: str = "", max_jobs: int = 1,
            replace: bool = False) -> Host:
        validate_host_fields(name, hostname=hostname, port=port, max_jobs=max_jobs, python=python)
        if name == "local":
            raise HostConfigError("the name 'local' is reserved for this machine")

        def write(conn: Any) -> None:
            exists = conn.execute("SELECT 1 FROM hosts WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise HostConfigError(f"a host named {name!r} already exists", hint="remove it first, or pick a name")
            conn.execute("INSERT OR REPLACE INTO hosts (name, kind, hostname, port, user, identity_file, proxy_jump, "
                         "python, work_dir, max_jobs, created_at) VALUES (?, 'ssh', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (name, hostname, port, user, identity_file, proxy_jump, python, work_dir, max_jobs,
                          time.time()))

        self.ws.db.write(write)
        return self.get(name)

    def update(self, name: str, **fields: Any) -> Host:
        host = self.get(name)
        allowed = {"max_jobs", "python", "work_dir", "identity_file", "proxy_jump", "user", "port", "hostname"}
        bad = set(fields) - allowed
        if bad:
            raise HostConfigError(f"cannot change {', '.join(sorted(bad))} of host {name}")
        merged = {k: getattr(host, k) for k in allowed} | fields
        if not host.is_local:
            validate_host_fields(name, hostname=merged["hostname"], port=merged["port"], max_jobs=merged["max_jobs"],
                                 python=merged["python"])
        elif merged["max_jobs"] < 1:
            raise HostConfigError(f"host {name}: max_jobs must be at least 1")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.ws.db.write(lambda c: c.execute(f"UPDATE hosts SET {sets} WHERE name = ?", (*fields.values(), name)))
        return self.get(name)

    def remove(self, name: str) -> None:
        if name == "local":
            raise HostConfigError("the local host cannot be removed")
        self.get(name)
        active = self.ws.db.query("SELECT count(*) FROM jobs WHERE host = ? AND state IN ('queued', 'starting', "
                                  "'running')", (name,))[0][0]
        if active:
            raise HostConfigError(f"host {name} still has {active} queued or running job(s)",
                                  hint="cancel them first (mlops-desktop jobs cancel JOB)")
        self.ws.db.write(lambda c: c.execute("DELETE FROM hosts WHERE name = ?", (name,)))

    def save_inventory(self, name: str, inventory: Inventory) -> None:
        payload = json.dumps(inventory.to_dict(), allow_nan=False)
        self.ws.db.write(lambda c: c.execute("UPDATE hosts SET inventory = ?, inventory_at = ? WHERE name = ?",
                                             (payload, inventory.collected_at, name)))

    def note_contact(self, name: str, error: str = "") -> None:
        """Record that host ``name`` answered now (``error`` empty) or why it did not (the last answer stays)."""
        if error:
            self.ws.db.write(lambda c: c.execute("UPDATE hosts SET contact_error = ? WHERE name = ?",
                                                 (error[:500], name)))
        else:
            self.ws.db.write(lambda c: c.execute("UPDATE hosts SET last_contact_at = ?, contact_error = '' "
                                                 "WHERE name = ?", (time.time(), name)))

    def resolve_jump(self, spec: str) -> Host:
        """A ProxyJump entry: the name of a registered host, else '[user@]host[:port]'."""
        from mlops_desktop.execution.ssh import parse_jump

        rows = self.ws.db.query(f"SELECT {_COLUMNS} FROM hosts WHERE name = ? AND kind = 'ssh'", (spec,))
        return _from_row(rows[0]) if rows else parse_jump(spec)

    def import_ssh_config(self, path: Path | None = None, names: builtins.list[str] | None = None,
                          replace: bool = False) -> builtins.list[Host]:
        """Add every concrete `Host` alias of an OpenSSH config (wildcards skipped); returns the hosts added."""
        entries = read_ssh_config(path, names)
        added = []
        for entry in entries:
            if entry["name"] == "local":
                continue
            existing = self.ws.db.query("SELECT 1 FROM hosts WHERE name = ?", (entry["name"],))
            if existing and not replace:
                continue
            added.append(self.add(replace=replace, **entry))
        return added


def validate_host_fields(name: str, *, hostname: str, port: int, max_jobs: int, python: str) -> None:
    if not _NAME.match(name):
        raise HostConfigError(f"host name {name!r} is not valid: use letters, digits and . _ - @ : + "
                              f"(at most 100, starting with a letter or digit)")
    if not hostname or any(c.isspace() for c in hostname) or hostname.startswith("-"):
        raise HostConfigError(f"host {name}: HostName {hostname!r} is not a valid host name or address")
    if not 1 <= int(port) <= 65535:
        raise HostConfigError(f"host {name}: Port {port} is out of range 1..65535")
    if int(max_jobs) < 1:
        raise HostConfigError(f"host {name}: max_jobs must be at least 1, got {max_jobs}")
    if not python.strip():
        raise HostConfigError(f"host {name}: python interpreter must not be empty")


def read_ssh_config(path: Path | None = None, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Concrete hosts of an OpenSSH client config as `HostRegistry.add` keyword arguments."""
    import paramiko

    path = Path(os.path.expanduser(str(path or "~/.ssh/config")))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HostConfigError(f"no SSH config at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HostConfigError(f"cannot read the SSH config {path}: {exc}") from None
    try:
        config = paramiko.SSHConfig.from_text(text)
    except Exception as exc:  # noqa: BLE001 - paramiko raises bare exceptions on syntax errors
        raise HostConfigError(f"{path}: {exc}") from None
    aliases = [a for a in sorted(config.get_hostnames()) if not any(ch in a for ch in "*?!")]
    if names:
        missing = [n for n in names if n not in aliases]
        if missing:
            raise HostConfigError(f"{path} has no Host entry for {', '.join(missing)}",
                                  hint=f"entries: {', '.join(aliases) or '(none)'}")
        aliases = [a for a in aliases if a in names]
    out = []
    for alias in aliases:
        try:
            cfg = config.lookup(alias)
        except Exception as exc:  # noqa: BLE001 - e.g. a Match exec that fails
            raise HostConfigError(f"{path}: Host {alias}: {exc}") from None
        port_text = cfg.get("port", "22")
        if not str(port_text).isdigit():
            raise HostConfigError(f"{path}: Host {alias}: Port {port_text!r} is not a number")
        identity = cfg.get("identityfile") or []
        out.append({"name": alias, "hostname": cfg.get("hostname", alias), "port": int(port_text),
                    "user": cfg.get("user", ""), "identity_file": identity[0] if identity else "",
                    "proxy_jump": cfg.get("proxyjump", "")})
    return out
