"""Host registry, ~/.ssh/config import, sweep expansion and job argv building (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_desktop.execution import sweeps
from mlops_desktop.execution.errors import HostConfigError, HostNotFoundError, JobError
from mlops_desktop.execution.hosts import HostRegistry
from mlops_desktop.execution.launch import build_argv, parse_exit, parse_params, wrapper_script


def test_local_host_always_exists_and_cannot_be_removed(ws) -> None:
    reg = HostRegistry(ws)
    assert [h.name for h in reg.list()] == ["local"]
    with pytest.raises(HostConfigError, match="cannot be removed"):
        reg.remove("local")
    with pytest.raises(HostConfigError, match="reserved"):
        reg.add("local", hostname="x")


def test_add_validates_and_refuses_duplicates(ws) -> None:
    reg = HostRegistry(ws)
    reg.add("gpu1", hostname="10.0.0.5", port=2200, user="ml", max_jobs=2)
    assert reg.get("gpu1").address == "ml@10.0.0.5:2200"
    with pytest.raises(HostConfigError, match="already exists"):
        reg.add("gpu1", hostname="10.0.0.6")
    with pytest.raises(HostConfigError, match="out of range"):
        reg.add("bad", hostname="h", port=70000)
    with pytest.raises(HostConfigError, match="not a valid host name"):
        reg.add("bad", hostname="-oProxyCommand=evil")
    with pytest.raises(HostConfigError, match="not valid"):
        reg.add("bad name; rm", hostname="h")
    with pytest.raises(HostNotFoundError, match="no host named 'nope'"):
        reg.get("nope")
    reg.remove("gpu1")
    assert [h.name for h in reg.list()] == ["local"]


def test_import_ssh_config(ws, tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("""
Host *
    ServerAliveInterval 30
Host bastion
    HostName bastion.example.org
    User jump
Host gpu-a gpu-b
    HostName 10.1.2.3
    User alice
    Port 2222
    IdentityFile ~/.ssh/id_gpu
    ProxyJump bastion
Host *.internal
    User bob
""")
    added = HostRegistry(ws).import_ssh_config(cfg)
    by_name = {h.name: h for h in added}
    assert sorted(by_name) == ["bastion", "gpu-a", "gpu-b"]
    a = by_name["gpu-a"]
    assert (a.hostname, a.user, a.port, a.proxy_jump) == ("10.1.2.3", "alice", 2222, "bastion")
    assert a.identity_file.endswith(".ssh/id_gpu") and "~" not in a.identity_file
    assert by_name["bastion"].port == 22
    # importing again adds nothing; selecting a name that is not there is an error naming it
    assert HostRegistry(ws).import_ssh_config(cfg) == []
    with pytest.raises(HostConfigError, match="no Host entry for nothere"):
        HostRegistry(ws).import_ssh_config(cfg, ["nothere"])


def test_import_ssh_config_bad_port(ws, tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("Host x\n    HostName h\n    Port twenty\n")
    with pytest.raises(HostConfigError, match="Port 'twenty' is not a number"):
        HostRegistry(ws).import_ssh_config(cfg)
    with pytest.raises(HostConfigError, match="no SSH config"):
        HostRegistry(ws).import_ssh_config(tmp_path / "missing")


def test_grid_and_random_sweeps() -> None:
    points = sweeps.expand("grid:lr=0.1,0.01;depth=3,5,7")
    assert len(points) == 6 and {"lr": "0.01", "depth": "7"} in points
    r1 = sweeps.expand("random:5:lr=loguniform(1e-4,1e-1);units=randint(8,16);act=choice(relu,tanh)", seed=3)
    r2 = sweeps.expand("random:5:lr=loguniform(1e-4,1e-1);units=randint(8,16);act=choice(relu,tanh)", seed=3)
    assert r1 == r2 and len(r1) == 5
    for p in r1:
        assert 1e-4 <= float(p["lr"]) <= 1e-1 and 8 <= int(p["units"]) <= 16 and p["act"] in ("relu", "tanh")


@pytest.mark.parametrize("spec, message", [
    ("lr=1,2", "must start with grid: or random:"),
    ("grid:lr", "must look like name=values"),
    ("grid:lr=1,,2", "empty value"),
    ("random:x:lr=uniform(0,1)", "positive count"),
    ("random:3:lr=normal(0,1)", "is not one of"),
    ("random:3:lr=uniform(2,1)", "2.0 > 1.0"),
    ("random:3:lr=loguniform(0,1)", "must be > 0"),
    ("grid:a=1;a=2", "names a parameter twice"),
])
def test_bad_sweeps_are_named(spec: str, message: str) -> None:
    with pytest.raises(JobError, match=message):
        sweeps.expand(spec)


def test_argv_and_params() -> None:
    assert parse_params(["lr=0.1", "name=a=b"]) == {"lr": "0.1", "name": "a=b"}
    with pytest.raises(JobError, match="key=value"):
        parse_params(["oops"])
    argv = build_argv("command", python="py", command=["echo", "{lr}", "${HOME}", "{print}"], params={"lr": "0.5"})
    assert argv == ["echo", "0.5", "${HOME}", "{print}"]
    assert build_argv("script", python="py", script="t.py", params={"a": "1"}) == ["py", "-u", "t.py", "--a=1"]
    assert build_argv("recipe", python="py", recipe="sklearn", params={"a": "1"})[-2:] == ["--param", "a=1"]


def test_wrapper_quotes_hostile_values(tmp_path: Path) -> None:
    import subprocess

    job_dir = tmp_path / "j ob's $(touch pwned) `x`"
    job_dir.mkdir()
    script = wrapper_script(job_dir=str(job_dir), cwd=str(job_dir), argv=["sh", "-c", 'echo "$V"'],
                            env={"V": "it's $(touch pwned2) ; \"q\" ü"})
    (job_dir / "run.sh").write_text(script)
    subprocess.run(["/bin/sh", str(job_dir / "run.sh")], check=True, cwd=tmp_path)
    assert (job_dir / "output.log").read_text() == "it's $(touch pwned2) ; \"q\" ü\n"
    code, seconds = parse_exit((job_dir / "exit_code").read_text())  # the code, then the job's start and end
    assert code == 0 and seconds is not None and 0 <= seconds < 5
    assert not list(tmp_path.rglob("pwned*"))
