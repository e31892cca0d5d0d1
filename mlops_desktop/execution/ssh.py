"""SSH connections with verified host keys (paramiko): connect, run a command, SFTP; no passwords anywhere."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_desktop.execution.errors import (
    HostConfigError,
    HostKeyChangedError,
    HostKeyUnknownError,
    HostUnreachableError,
    SshAuthError,
    SshError,
)
from mlops_desktop.execution.models import CommandOutcome, Host

CONNECT_TIMEOUT_S = 10.0


def fingerprint(key: Any) -> str:
    """OpenSSH-style SHA256 fingerprint of a paramiko public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(hostname: str, port: int) -> str:
    return hostname if port == 22 else f"[{hostname}]:{port}"


def user_known_hosts() -> Path:
    return Path(os.path.expanduser("~/.ssh/known_hosts"))


def add_known_host(path: Path, name: str, key: Any) -> None:
    """Append one host key line to a known_hosts file (created 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as fh:
        fh.write(line)


def remove_known_host(path: Path, name: str) -> int:
    """Drop every line for `name` from a known_hosts file; returns how many went."""
    if not path.exists():
        return 0
    lines = path.read_text(encoding="ascii", errors="replace").splitlines(keepends=True)
    keep = [ln for ln in lines if name not in ln.split(" ", 1)[0].split(",")]
    path.write_text("".join(keep), encoding="ascii")
    return len(lines) - len(keep)


def _policy(known_hosts: Path, accept_new: bool, label: str):
    import paramiko

    class VerifyPolicy(paramiko.MissingHostKeyPolicy):
        """Unknown key: refuse, naming the fingerprint, unless the user accepted it explicitly."""

        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            fp = fingerprint(key)
            if accept_new:
                add_known_host(known_hosts, hostname, key)
                client.get_host_keys().add(hostname, key.get_name(), key)
                return
            raise HostKeyUnknownError(
                f"host {label} ({hostname}) presented an unknown {key.get_name()} key {fp}",
                fingerprint=fp,
                hint="check the fingerprint with the host's owner (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on "
                     "the host), then accept it with --accept-new-host-key")

    return VerifyPolicy()


class SshSession:
    """One authenticated connection to a host (possibly through jump hosts); use as a context manager."""

    def __init__(self, host: Host, client: Any, jumps: list[Any]) -> None:
        self.host = host
        self.client = client
        self._jumps = jumps
        self._sftp: Any = None
        self._home: str | None = None
        self._lock = threading.Lock()

    @property
    def sftp(self) -> Any:
        with self._lock:
            if self._sftp is None:
                try:
                    self._sftp = self.client.open_sftp()
                except Exception as exc:  # noqa: BLE001 - paramiko raises many kinds
                    raise _wrap_io(self.host, exc, "open SFTP") from None
            return self._sftp

    @property
    def home(self) -> str:
        if self._home is None:
            try:
                self._home = self.sftp.normalize(".")
            except Exception as exc:  # noqa: BLE001
                raise _wrap_io(self.host, exc, "find the home directory") from None
        return self._home

    @property
    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def run(self, command: str, *, timeout: float | None = 60.0, stdin: bytes | None = None) -> CommandOutcome:
        """Run `command` (already shlex-quoted by the caller) in the remote user's shell; wait for it."""
        try:
            chan = self.client.get_transport().open_session(timeout=CONNECT_TIMEOUT_S)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin is not None:
                chan.sendall(stdin)
                chan.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                else:
                    if deadline is not None and time.monotonic() > deadline:
                        chan.close()
                        raise SshError(f"command on host {self.host.name} did not finish within {timeout:.0f} s")
                    if not self.alive:
                        raise HostUnreachableError(f"lost the connection to host {self.host.name}")
                    time.sleep(0.005)
            code = chan.recv_exit_status()
            chan.close()
        except SshError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _wrap_io(self.host, exc, "run a command") from None
        return CommandOutcome.from_exit(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def close(self) -> None:
        for closer in [self._sftp, self.client, *reversed(self._jumps)]:
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001,S110 - closing a dead connection may fail; nothing to do
                    pass
        self._sftp = None

    def __enter__(self) -> SshSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wrap_io(host: Host, exc: BaseException, doing: str) -> SshError:
    return HostUnreachableError(f"lost the connection to host {host.name} ({host.address}) while trying to {doing}: "
                                f"{exc or type(exc).__name__}")


def parse_jump(spec: str) -> Host:
    """'[user@]host[:port]' -> a throwaway Host."""
    user, _, rest = spec.rpartition("@")
    hostname, port = rest, 22
    if rest.startswith("["):
        hostname, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") else 22
    elif rest.count(":") == 1:
        hostname, _, port_text = rest.partition(":")
        if not port_text.isdigit():
            raise HostConfigError(f"ProxyJump {spec!r}: port {port_text!r} is not a number")
        port = int(port_text)
    if not hostname:
        raise HostConfigError(f"ProxyJump {spec!r} names no host")
    return Host(name=spec, kind="ssh", hostname=hostname, port=port, user=user)


def connect(host: Host, *, known_hosts: Path, accept_new: bool = False,
            resolve_jump: Callable[[str], Host] | None = None, timeout: float = CONNECT_TIMEOUT_S) -> SshSession:
    """Open a verified connection to `host`, through its ProxyJump chain if any.

    Host keys are checked against ~/.ssh/known_hosts and the workspace's own `known_hosts`; an unknown key raises
    HostKeyUnknownError (with the fingerprint) unless `accept_new`, which records it in the workspace file; a changed
    key always raises HostKeyChangedError. Authentication uses the host's IdentityFile, the agent and default keys.
    """
    if host.is_local:
        raise HostConfigError("the local host needs no SSH connection")
    chain: list[Host] = []
    if host.proxy_jump and host.proxy_jump.lower() != "none":
        for part in host.proxy_jump.split(","):
            part = part.strip()
            chain.append(resolve_jump(part) if resolve_jump else parse_jump(part))
    chain.append(host)
    clients: list[Any] = []
    sock = None
    try:
        for hop in chain:
            client = _connect_one(hop, known_hosts=known_hosts, accept_new=accept_new, sock=sock, timeout=timeout,
                                  label=host.name if hop is host else f"{hop.name} (jump host for {host.name})")
            clients.append(client)
            if hop is not chain[-1]:
                nxt = chain[chain.index(hop) + 1]
                try:
                    sock = client.get_transport().open_channel(
                        "direct-tcpip", (nxt.hostname, nxt.port), ("127.0.0.1", 0), timeout=timeout)
                except Exception as exc:  # noqa: BLE001
                    raise HostUnreachableError(f"jump host {hop.name} could not reach {nxt.address}: {exc}") from None
    except BaseException:
        for client in reversed(clients):
            client.close()
        raise
    return SshSession(host, clients[-1], clients[:-1])


def _connect_one(host: Host, *, known_hosts: Path, accept_new: bool, sock: Any, timeout: float, label: str) -> Any:
    import paramiko

    client = paramiko.SSHClient()
    system = user_known_hosts()
    try:
        if system.exists():
            client.load_system_host_keys(str(system))
        if known_hosts.exists():
            client.load_system_host_keys(str(known_hosts))
    except (OSError, paramiko.SSHException) as exc:
        raise SshError(f"cannot read known_hosts: {exc}") from None
    client.set_missing_host_key_policy(_policy(known_hosts, accept_new, label))
    key_filename = None
    if host.identity_file:
        key_path = Path(os.path.expanduser(host.identity_file))
        if not key_path.is_file():
            raise HostConfigError(f"host {label}: IdentityFile {key_path} does not exist")
        key_filename = str(key_path)
    started = time.monotonic()
    try:
        client.connect(hostname=host.hostname, port=host.port, username=host.user or None, key_filename=key_filename,
                       look_for_keys=key_filename is None, allow_agent=True, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout, sock=sock,
                       password=None, passphrase=None)
    except HostKeyUnknownError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyChangedError(
            f"WARNING: the host key of {label} ({known_hosts_name(host.hostname, host.port)}) HAS CHANGED: it now "
            f"presents {exc.key.get_name()} {fingerprint(exc.key)}, but {fingerprint(exc.expected_key)} is recorded. "
            f"Someone may be intercepting the connection (man-in-the-middle); refusing to connect.",
            hint="if the host was really reinstalled, confirm the new fingerprint with its owner and remove the old "
                 "line from the workspace's ssh/known_hosts (or ~/.ssh/known_hosts)") from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise SshAuthError(f"host {label}: the private key {key_filename or '(default)'} is encrypted",
                           hint="load it into ssh-agent (ssh-add); passphrases are never asked for or stored") from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise SshAuthError(f"host {label} ({host.address}) refused our keys: {exc}",
                           hint="check User and IdentityFile, or add the key to ssh-agent") from None
    except TimeoutError as exc:
        client.close()
        raise HostUnreachableError(f"host {label} ({host.address}) did not answer within {timeout:.0f} s: "
                                   f"{exc or 'timed out'}") from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        client.close()
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            raise HostUnreachableError(f"cannot reach host {label} ({host.address}): the connection was refused "
                                       f"(is sshd running and listening on port {host.port}?)") from None
        if time.monotonic() - started >= timeout * 0.9:  # paramiko words a banner timeout "No existing session"
            raise HostUnreachableError(f"host {label} ({host.address}) did not answer within {timeout:.0f} s "
                                       "(it took the connection but said nothing)") from None
        raise HostUnreachableError(f"cannot reach host {label} ({host.address}): {exc}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(15)
    return client
