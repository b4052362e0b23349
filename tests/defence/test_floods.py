"""A wrk flood against a real server, from its own loopback address.

Once wrk is banned it reconnects ~10,000 times a second; the kernel's NAT (our way of giving a tool its
own source address) then lets some of those connections leave unrewritten from 127.0.0.1. So here the
legitimate user lives on 127.0.0.2, and this module has a server of its own.
"""

from __future__ import annotations

from tests.attackers import is_refused, run_as, snat_group
from tests.defence.test_attack_tools import LegitimateUser, record_numbers, requests_from
from tests.support import require_tool


def test_wrk_flood_is_banned_while_users_are_served(server):
    """A wrk flood is banned; the legitimate user's requests all succeed (p50/p99 recorded)."""
    user = LegitimateUser(server, "floodvictim", source="127.0.0.2")
    user.start()
    with snat_group(68) as gid:
        out = run_as(
            gid, [require_tool("wrk"), "-t", "2", "-c", "32", "-d", "8s", f"{server.base}/login"], timeout=30
        ).stdout
    legit = user.finish()
    assert is_refused(server, "127.0.0.68")
    assert legit["user_ok"] == legit["user_requests"] > 0, legit
    record_numbers(
        "wrk", requests_before_ban=requests_from(server, "127.0.0.68"), wrk_summary=" ".join(out.split()[-12:]), **legit
    )
