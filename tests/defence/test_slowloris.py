"""slowhttptest (slowloris) against a real server of its own: a wrk storm just before can leave the kernel's
NAT table (our way of giving the tool its own source address) refusing the tool's first connections."""

from __future__ import annotations

import re

from tests.attackers import is_refused, run_as, snat_group
from tests.defence.test_attack_tools import LegitimateUser, record_numbers
from tests.support import require_tool


def test_slowloris_does_not_starve_users(server):
    """slowhttptest in slowloris mode: users keep being served; the slow client is cut and banned."""
    user = LegitimateUser(server, "slowvictim", source="127.0.0.3")
    user.start()
    with snat_group(69) as gid:
        for _ in range(2):  # a tool that could not connect at all (a loaded CI host) gets one more go
            out = run_as(
                gid,
                [
                    require_tool("slowhttptest"),
                    "-H",
                    "-c",
                    "400",
                    "-r",
                    "100",
                    "-i",
                    "5",
                    "-l",
                    "25",
                    "-u",
                    f"{server.base}/login",
                    "-p",
                    "3",
                ],
                timeout=45,
            ).stdout
            if _peak_connected(out) > 0:
                break
    legit = user.finish()
    assert legit["user_ok"] == legit["user_requests"] > 0, legit
    assert _peak_connected(out) > 0, out[-2000:]
    assert is_refused(server, "127.0.0.69"), out[-2000:]
    record_numbers("slowhttptest", slow_connections=_peak_connected(out), **legit)


def _peak_connected(report: str) -> int:
    """The most connections slowhttptest held open at once, read from its status lines."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", report)
    return max((int(n) for n in re.findall(r"connected:\s+(\d+)", plain)), default=0)
