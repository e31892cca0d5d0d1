"""The host check's normalisation: idle iptables tables are left out, anything that filters is kept."""

from __future__ import annotations

import subprocess

from engines.common import INFRA


def drop_idle(text: str) -> str:
    return subprocess.run(["bash", "-c", f". {INFRA / 'lib.sh'} && drop_idle_tables"], input=text, text=True,
                          capture_output=True, check=True).stdout


IDLE_FILTER = "*filter\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n"


def test_an_idle_table_is_left_out():
    assert drop_idle(IDLE_FILTER + "*nat\n:PREROUTING ACCEPT\n:INPUT ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\nCOMMIT\n") == ""


def test_a_policy_a_rule_or_a_chain_keeps_the_table():
    drop_policy = "*filter\n:INPUT ACCEPT\n:FORWARD DROP\n:OUTPUT ACCEPT\nCOMMIT\n"
    assert drop_idle(drop_policy) == drop_policy
    rule = "*filter\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n-A INPUT -j ACCEPT\nCOMMIT\n"
    assert drop_idle(IDLE_FILTER.replace("filter", "raw") + rule) == rule
    chain = "*nat\n:PREROUTING ACCEPT\n:INPUT ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\n:DOCKER -\nCOMMIT\n"
    assert drop_idle(chain) == chain
