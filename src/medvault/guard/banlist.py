"""The ban list: which addresses are refused right now.

Checked on every request, so lookup must be O(1) and independent of list size: single addresses
live in a dict keyed by the address's integer, IPv6 can be banned per /64 (one attacker gets a
whole /64 from any provider, so banning single v6 addresses is pointless), and CIDR bans are
kept per prefix length so a lookup costs one dict probe per distinct length in use (a handful).
Expiry is by the `now` argument; the list serialises to JSON so the runner can persist it and a
cluster can share it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from medvault.guard.errors import GuardError

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Entry:
    """One ban: the network (a /32 or /128 for single addresses), its end time and its origin."""

    network: str
    until: float
    jail: str = ""


class BanList:
    """Bans keyed by (version, prefix length, network integer)."""

    def __init__(self, *, ipv6_prefix: int = 128) -> None:
        if not 1 <= ipv6_prefix <= 128:
            raise GuardError("ipv6_prefix must be between 1 and 128")
        self.ipv6_prefix = ipv6_prefix
        self._bans: dict[tuple[int, int, int], Entry] = {}
        self._lengths: dict[int, dict[int, int]] = {4: {}, 6: {}}  # version -> length -> users

    def _network(self, target: str) -> _Net:
        net = ipaddress.ip_network(target, strict=False)
        if net.version == 6 and net.prefixlen > self.ipv6_prefix:
            net = net.supernet(new_prefix=self.ipv6_prefix)
        return net

    def ban(self, target: str, until: float, jail: str = "") -> Entry:
        """Ban an address or CIDR until `until`; an existing longer ban is kept."""
        net = self._network(target)
        key = (net.version, net.prefixlen, int(net.network_address))
        old = self._bans.get(key)
        if old is not None and old.until >= until:
            return old
        entry = Entry(str(net), until, jail)
        if old is None:
            lengths = self._lengths[net.version]
            lengths[net.prefixlen] = lengths.get(net.prefixlen, 0) + 1
        self._bans[key] = entry
        return entry

    def unban(self, target: str) -> Entry | None:
        net = self._network(target)
        entry = self._bans.pop((net.version, net.prefixlen, int(net.network_address)), None)
        if entry is not None:
            lengths = self._lengths[net.version]
            lengths[net.prefixlen] -= 1
            if not lengths[net.prefixlen]:
                del lengths[net.prefixlen]
        return entry

    def lookup(self, ip: str, now: float) -> Entry | None:
        """The ban covering `ip` at `now`, if any (expired entries do not count)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        value, bits = int(addr), addr.max_prefixlen
        for length in self._lengths[addr.version]:
            mask = ((1 << length) - 1) << (bits - length) if length else 0
            entry = self._bans.get((addr.version, length, value & mask))
            if entry is not None and entry.until > now:
                return entry
        return None

    def is_banned(self, ip: str, now: float) -> bool:
        return self.lookup(ip, now) is not None

    def expire(self, now: float) -> list[Entry]:
        """Remove and return bans that ended at or before `now` (for unban actions)."""
        ended = [e for e in self._bans.values() if e.until <= now]
        for entry in ended:
            self.unban(entry.network)
        return ended

    def __len__(self) -> int:
        return len(self._bans)

    def entries(self) -> list[Entry]:
        return list(self._bans.values())

    def to_json(self) -> str:
        return json.dumps(
            {"ipv6_prefix": self.ipv6_prefix, "bans": [[e.network, e.until, e.jail] for e in self._bans.values()]}
        )

    @classmethod
    def from_json(cls, text: str) -> BanList:
        try:
            data = json.loads(text)
            banlist = cls(ipv6_prefix=int(data.get("ipv6_prefix", 128)))
            for network, until, jail in data["bans"]:
                banlist.ban(network, float(until), jail)
        except (ValueError, KeyError, TypeError) as exc:
            raise GuardError(f"corrupt ban list: {exc}") from None
        return banlist
