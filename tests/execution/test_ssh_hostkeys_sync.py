"""Against the real private sshd: host key checks, auth, unreachable hosts, ProxyJump, remote inventory, SFTP sync."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

from mlops_desktop.execution.errors import (
    HostConfigError,
    HostKeyChangedError,
    HostKeyUnknownError,
    HostUnreachableError,
    SshAuthError,
)
from mlops_desktop.execution.hosts import HostRegistry
from mlops_desktop.execution.inventory import collect_remote
from mlops_desktop.execution.ssh import connect, known_hosts_name
from mlops_desktop.execution.sync import MANIFEST, sync_dir

pytestmark = pytest.mark.ssh


def _host(ws, sshd, name="box", **kw):
    fields = dict(hostname="127.0.0.1", port=sshd.port, user=sshd.user, identity_file=str(sshd.client_key),
                  python=sys.executable)
    fields.update(kw)
    return HostRegistry(ws).add(name, **fields)


def _openssh_fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_unknown_key_is_refused_with_fingerprint_then_accepted(ws, sshd) -> None:
    host = _host(ws, sshd)
    reg = HostRegistry(ws)
    with pytest.raises(HostKeyUnknownError) as info:
        connect(host, known_hosts=reg.known_hosts)
    assert info.value.fingerprint == _openssh_fingerprint(sshd.host_key_pub)
    assert info.value.fingerprint in str(info.value) and "--accept-new-host-key" in str(info.value)
    assert not reg.known_hosts.exists()
    with connect(host, known_hosts=reg.known_hosts, accept_new=True) as s:
        assert s.run("echo ok").stdout == "ok\n"
    line = reg.known_hosts.read_text()
    assert line.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert oct(reg.known_hosts.stat().st_mode & 0o777) == "0o600"
    with connect(host, known_hosts=reg.known_hosts) as s:  # now known: no flag needed
        assert s.run("printf %s \"$0\" >/dev/null; echo again").stdout == "again\n"


def test_changed_key_is_refused_with_a_warning(ws, sshd) -> None:
    host = _host(ws, sshd)
    reg = HostRegistry(ws)
    recorded = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))  # any other ed25519 key
    reg.known_hosts.parent.mkdir(parents=True)
    reg.known_hosts.write_text(f"{known_hosts_name('127.0.0.1', sshd.port)} ssh-ed25519 {recorded.get_base64()}\n")
    for accept in (False, True):  # accepting new keys never overrides a changed one
        with pytest.raises(HostKeyChangedError) as info:
            connect(host, known_hosts=reg.known_hosts, accept_new=accept)
        message = str(info.value)
        assert "HAS CHANGED" in message and "man-in-the-middle" in message
        assert _openssh_fingerprint(sshd.host_key_pub) in message
    assert len(reg.known_hosts.read_text().splitlines()) == 1


def test_wrong_key_and_missing_key_file(ws, sshd, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    reg = HostRegistry(ws)
    host = _host(ws, sshd, identity_file=str(stranger))
    with pytest.raises(SshAuthError, match="refused our keys"):
        connect(host, known_hosts=reg.known_hosts, accept_new=True)
    host2 = _host(ws, sshd, name="box2", identity_file=str(tmp_path / "nope"))
    with pytest.raises(HostConfigError, match="IdentityFile .*nope does not exist"):
        connect(host2, known_hosts=reg.known_hosts, accept_new=True)


def test_encrypted_key_is_not_prompted_for(ws, sshd, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(locked)], check=True)
    host = _host(ws, sshd, identity_file=str(locked))
    with pytest.raises(SshAuthError, match="encrypted|refused"):
        connect(host, known_hosts=HostRegistry(ws).known_hosts, accept_new=True)


def test_host_that_is_down(ws) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    host = HostRegistry(ws).add("down", hostname="127.0.0.1", port=port, user="x")
    with pytest.raises(HostUnreachableError, match=f"cannot reach host down \\(x@127.0.0.1:{port}\\)"):
        connect(host, known_hosts=HostRegistry(ws).known_hosts, timeout=3)


def test_proxy_jump_through_a_registered_host(ws, sshd) -> None:
    reg = HostRegistry(ws)
    _host(ws, sshd, name="bastion")
    inner = _host(ws, sshd, name="inner", proxy_jump="bastion")
    with connect(inner, known_hosts=reg.known_hosts, accept_new=True, resolve_jump=reg.resolve_jump) as s:
        assert s.run("echo through").stdout == "through\n"
        assert s._jumps, "the connection went through the jump host"


def test_remote_inventory(ssh_host, ws) -> None:
    with connect(ssh_host, known_hosts=HostRegistry(ws).known_hosts) as s:
        inv = collect_remote(s)
    assert inv.cpus >= 1 and inv.memory_total_mib and inv.disk_total_mib
    assert inv.python == ".".join(map(str, sys.version_info[:3]))
    assert inv.os


def test_sync_uploads_only_changes_and_honours_excludes(ssh_host, ws, tmp_path: Path) -> None:
    proj = tmp_path / "prój 'x' $(y)"
    (proj / "pkg").mkdir(parents=True)
    (proj / "pkg" / "a.py").write_text("a = 1\n")
    (proj / "pkg" / "b ü.py").write_text("b = 2\n")
    (proj / "data.bin").write_bytes(bytes(range(256)) * 100)
    (proj / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (proj / "run.sh").chmod(0o755)
    (proj / ".gitignore").write_text("*.log\nbig/\n")
    (proj / "run.log").write_text("excluded")
    (proj / "big").mkdir()
    (proj / "big" / "x").write_text("excluded")
    (proj / "__pycache__").mkdir()
    (proj / "__pycache__" / "m.pyc").write_bytes(b"\0")
    remote = f"{ssh_host.work_dir}/projects/p 'q'"
    with connect(ssh_host, known_hosts=HostRegistry(ws).known_hosts) as s:
        first = sync_dir(s, proj, remote)
        assert sorted(first.uploaded_paths) == [".gitignore", "data.bin", "pkg/a.py", "pkg/b ü.py", "run.sh"]
        root = Path(remote)  # the "remote" is this machine: check the files themselves
        assert (root / "pkg" / "b ü.py").read_text() == "b = 2\n"
        assert (root / "data.bin").read_bytes() == (proj / "data.bin").read_bytes()
        assert (root / "run.sh").stat().st_mode & 0o777 == 0o755
        assert not (root / "run.log").exists() and not (root / "big").exists() and (root / MANIFEST).exists()
        again = sync_dir(s, proj, remote)
        assert again.uploaded == 0 and again.deleted == 0
        (proj / "pkg" / "a.py").write_text("a = 3\n")
        (proj / "pkg" / "b ü.py").unlink()
        (root / "data.bin").write_bytes(b"edited on the host")  # a remote edit is noticed and undone
        third = sync_dir(s, proj, remote)
        assert sorted(third.uploaded_paths) == ["data.bin", "pkg/a.py"] and third.deleted == 1
        assert (root / "pkg" / "a.py").read_text() == "a = 3\n" and not (root / "pkg" / "b ü.py").exists()
        assert (root / "data.bin").read_bytes() == (proj / "data.bin").read_bytes()
