"""Ban actions outside the process: a command like fail2ban's `actionban`/`actionunban` (with `<ip>`
substitution), and nftables (its own `table inet medvault`, sets whose elements expire by themselves).

Commands are run without a shell, with an address that was parsed and re-printed by `ipaddress`, so a
log line can never smuggle anything into them. In the server they run on one background thread, so a slow
firewall never stalls a request.
"""

from __future__ import annotations

import ipaddress
import logging
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor

from medvault.guard.errors import GuardError

log = logging.getLogger("medvault.guard")
COMMAND_TIMEOUT = 10

NFT_TABLE = """
table inet medvault {
    set banned4 { type ipv4_addr; flags interval, timeout; }
    set banned6 { type ipv6_addr; flags interval, timeout; }
    chain input {
        type filter hook input priority -10; policy accept;
        ip saddr @banned4 drop
        ip6 saddr @banned6 drop
    }
}
"""


def _address(network: str) -> str:
    """The canonical text of an address or network; single addresses without their /32 or /128."""
    text = str(ipaddress.ip_network(network, strict=False))
    return text.removesuffix("/32").removesuffix("/128")


def run_command_action(template: str | None, network: str) -> None:
    if not template:
        return
    argv = [arg.replace("<ip>", _address(network)) for arg in shlex.split(template)]
    try:
        subprocess.run(argv, check=False, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuardError(f"action {argv[0]!r} failed: {exc}") from None


class Nftables:
    """Bans as elements of nftables sets with timeouts: dropped by the kernel before they reach us."""

    def __init__(self, nft: str = "nft"):
        self.nft = nft

    def _run(self, script: str) -> None:
        result = subprocess.run(
            [self.nft, "-f", "-"], input=script, text=True, capture_output=True, timeout=COMMAND_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise GuardError(f"nft failed: {result.stderr.strip()[:200]}")

    def install(self) -> None:
        """(Re)create the table, empty: the server re-adds its current bans right after."""
        self._run("add table inet medvault\ndelete table inet medvault\n" + NFT_TABLE)

    @staticmethod
    def _set(network: str) -> str:
        return "banned6" if ipaddress.ip_network(network, strict=False).version == 6 else "banned4"

    def ban(self, network: str, seconds: float) -> None:
        self._run(
            f"add element inet medvault {self._set(network)} "
            f"{{ {_address(network)} timeout {max(int(seconds), 1)}s }}\n"
        )

    def unban(self, network: str) -> None:
        self._run(f"delete element inet medvault {self._set(network)} {{ {_address(network)} }}\n")


class ActionRunner:
    """Applies bans and lifts to the configured outside actions on one background thread."""

    def __init__(self, nftables: Nftables | None = None, actionban: str | None = None, actionunban: str | None = None):
        self.nftables = nftables
        self.actionban = actionban
        self.actionunban = actionunban
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard-action")
        if nftables is not None:
            nftables.install()

    def _safely(self, fn, *args) -> None:
        try:
            fn(*args)
        except GuardError as exc:
            log.error("guard action failed: %s", exc)

    def banned(self, network: str, seconds: float) -> None:
        if self.nftables is not None:
            self._thread.submit(self._safely, self.nftables.ban, network, seconds)
        if self.actionban:
            self._thread.submit(self._safely, run_command_action, self.actionban, network)

    def lifted(self, network: str) -> None:
        if self.nftables is not None:
            self._thread.submit(self._safely, self.nftables.unban, network)
        if self.actionunban:
            self._thread.submit(self._safely, run_command_action, self.actionunban, network)
