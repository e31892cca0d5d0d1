"""Disk usage as df reports it: parsing df -Pk lines and measuring this machine's disk (a real df)."""

from __future__ import annotations

import subprocess

import pytest

from mlops_desktop.execution.disk_usage import DiskUsage, measure_local, parse_df


def test_parse_df_line_and_use_fraction_like_df():
    usage = parse_df("/dev/vda1  102400000  52428800  44646400  55% /")
    assert usage is not None
    assert (usage.total_mib, usage.used_mib, usage.available_mib) == (100000.0, 51200.0, 43600.0)
    assert usage.mount == "/"
    # df's Use% leaves reserved blocks out: 52428800 / (52428800 + 44646400) = 54.01 % -> 55 % (rounded up)
    assert usage.use_fraction == 0.55
    assert 1 - usage.available_mib / usage.total_mib > 0.56  # what size - free would have claimed


def test_parse_df_with_spaces_in_the_mount_point_and_bad_lines():
    usage = parse_df("overlay 2048 1024 1024 50% /mnt/my disk")
    assert usage is not None and usage.mount == "/mnt/my disk" and usage.used_mib == 1.0
    assert parse_df("") is None and parse_df("df: /nope: No such file or directory") is None
    assert DiskUsage(0, 0, 0).use_fraction == 0.0


def test_measure_local_matches_df(tmp_path):
    usage = measure_local(str(tmp_path))
    assert usage is not None
    line = subprocess.run(["df", "-Pk", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    fields = line.splitlines()[-1].split()
    size, used, avail = (int(f) / 1024 for f in fields[1:4])
    assert usage.total_mib == pytest.approx(size, rel=0.01)
    assert usage.used_mib == pytest.approx(used, abs=256)  # the disk may change between the two reads
    assert usage.available_mib == pytest.approx(avail, abs=256)
    assert round(usage.use_fraction * 100) == pytest.approx(int(fields[4].rstrip("%")), abs=1)
