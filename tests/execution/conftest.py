"""Fixtures for the execution tests: a private, real OpenSSH sshd on 127.0.0.1 with its own keys, and workspaces."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"  # absolute: sshd re-execs itself and refuses a relative path
FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Sshd:
    port: int
    user: str
    client_key: Path
    host_key_pub: Path
    pid: int
    log: Path

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener): kill them to drop connections."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                pids.append(int(entry.name))
        return pids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    if not os.path.exists(SSHD) or not shutil.which("ssh-keygen"):
        reason = f"{SSHD} is not installed (apt-get install openssh-server)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("sshd")
    d.chmod(0o700)
    host_key, client_key = d / "ssh_host_ed25519_key", d / "id_ed25519"
    for key, comment in ((host_key, "test-host"), (client_key, "test-client")):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], check=True)
    shutil.copy(str(client_key) + ".pub", d / "authorized_keys")
    (d / "authorized_keys").chmod(0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation dir Debian's sshd insists on
    port = _free_port()
    config = d / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
AllowTcpForwarding yes
PrintMotd no
MaxSessions 50
MaxStartups 50
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
    log = d / "sshd.log"
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited with {proc.returncode}: {log.read_text() if log.exists() else ''}")
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("sshd did not start listening within 10 s")
    yield Sshd(port=port, user=getpass.getuser(), client_key=client_key, host_key_pub=Path(str(host_key) + ".pub"),
               pid=proc.pid, log=log)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()



@pytest.fixture
def ssh_host(ws, sshd: Sshd, tmp_path: Path):
    """An SSH host `box` pointing at the private sshd (key accepted), working in a hostile directory name."""
    from mlops_desktop.execution.hosts import HostRegistry
    from mlops_desktop.execution.ssh import connect

    work = tmp_path / "remote wörk 'dir' $HOME `x`"
    registry = HostRegistry(ws)
    host = registry.add("box", hostname="127.0.0.1", port=sshd.port, user=sshd.user,
                        identity_file=str(sshd.client_key), python=sys.executable, work_dir=str(work), max_jobs=4)
    connect(host, known_hosts=registry.known_hosts, accept_new=True).close()
    return host
