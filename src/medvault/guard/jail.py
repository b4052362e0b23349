"""Count failures per address and decide bans: pure, with time passed in.

A jail only sees `(ip, t)` pairs where `t` is the time written in the log line, so a replayed
old log is counted in its own time: its failures can still cross `maxretry` within `findtime`, but
the resulting ban ends at `t + bantime`, which for an old log is already past — replaying last
month's log bans no one now.  Keeping the clock out makes every rule testable without sleeping.

Repeat offenders get longer bans: the n-th ban of an address lasts `bantime * factor**(n-1)`,
capped at `maxtime`, like fail2ban's `bantime.increment`.  Rate jails are the same counter with
a small `findtime` ("N events in T seconds").
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from medvault.guard.errors import ConfigError

_MAX_TRACKED = 100_000  # bounded memory under address-spraying floods


@dataclass(frozen=True)
class BantimeIncrement:
    """Growth of the ban time for addresses banned before."""

    factor: float = 2.0
    maxtime: float = 7 * 86400.0


@dataclass(frozen=True)
class Ban:
    """A decision: ban `ip` from `start` until `until` (Unix times); `count` is its n-th ban."""

    jail: str
    ip: str
    start: float
    until: float
    count: int = 1


@dataclass
class Jail:
    """`maxretry` failures within `findtime` seconds ban an address for `bantime` seconds."""

    name: str
    maxretry: int = 5
    findtime: float = 600.0
    bantime: float = 600.0
    bantime_increment: BantimeIncrement | None = None
    ignoreip: list[str] = field(default_factory=list)
    _failures: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)
    _ban_counts: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.maxretry < 1 or self.findtime <= 0 or self.bantime <= 0:
            raise ConfigError(f"jails.{self.name}: maxretry, findtime and bantime must be positive")
        try:
            self._networks = [ipaddress.ip_network(c, strict=False) for c in self.ignoreip]
        except ValueError as exc:
            raise ConfigError(f"jails.{self.name}.ignoreip: {exc}") from None

    def is_ignored(self, ip: str) -> bool:
        """True for addresses in `ignoreip` (trusted proxies, the clinic's own network)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._networks)

    def record_failure(self, ip: str, t: float, everywhere: int | None = None) -> Ban | None:
        """Count a failure of `ip` at line time `t`; return a Ban when it reaches `maxretry`, here or, when the
        caller knows it (`everywhere`: failures within `findtime` counted by every node), on all nodes together."""
        if self.is_ignored(ip):
            return None
        times = self._failures.get(ip)
        if times is None:
            if len(self._failures) >= _MAX_TRACKED:
                self.expire(t)
                if len(self._failures) >= _MAX_TRACKED:
                    del self._failures[next(iter(self._failures))]
            times = self._failures[ip] = deque(maxlen=self.maxretry)
        times.append(t)
        while times and times[0] < t - self.findtime:
            times.popleft()
        if len(times) < self.maxretry and (everywhere or 0) < self.maxretry:
            return None
        del self._failures[ip]
        count = self._ban_counts.get(ip, 0) + 1
        self._ban_counts[ip] = count
        return Ban(self.name, ip, t, t + self.ban_duration(count), count)

    def ban_duration(self, count: int) -> float:
        """Length of the `count`-th ban of one address."""
        inc = self.bantime_increment
        if inc is None or count <= 1:
            return self.bantime
        return min(self.bantime * inc.factor ** (count - 1), max(inc.maxtime, self.bantime))

    def expire(self, now: float) -> None:
        """Forget failure counts older than `findtime` (call periodically to bound memory)."""
        stale = [ip for ip, times in self._failures.items() if not times or times[-1] < now - self.findtime]
        for ip in stale:
            del self._failures[ip]

    @property
    def ban_counts(self) -> dict[str, int]:
        """How often each address was banned (persisted so growth survives restarts)."""
        return dict(self._ban_counts)

    def restore_ban_counts(self, counts: dict[str, int]) -> None:
        self._ban_counts.update(counts)
