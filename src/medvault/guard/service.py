"""The guard inside the server: jails fed in-process by the access log and security events.

Two kinds of refusal, kept apart on purpose:
- *edge bans* (scanners, floods, TLS noise, slow clients) go to the ban list that the connection
  protocol checks before the TLS handshake and the gate middleware checks on every request;
- *login refusals* (password guessing) act only on login attempts, in the application, and exempt a
  browser whose signed device cookie shows it signed in to that account before, so one attacker
  behind a clinic's NAT address cannot lock the clinic out.

Bans are written to the database (shared by every node and by the CLI) and re-read every few seconds;
with Redis (guard/shared.py) failures are counted over all nodes and a ban reaches every node at once.
Time comes from the event, so tests and replays need no clock tricks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from medvault.guard.actions import ActionRunner
from medvault.guard.banlist import BanList
from medvault.guard.filterfile import load_filter
from medvault.guard.jail import BantimeIncrement, Jail
from medvault.guard.matcher import Failure, Filter
from medvault.guard.policy import GuardPolicy
from medvault.guard.refusal import Refused
from medvault.guard.shared import SharedState
from medvault.guard.store import BanStore

log = logging.getLogger("medvault.guard")

NOISE_EVENTS = {"tls-handshake-failure", "request-incomplete", "header-timeout", "connection-cap"}
HISTORY_MINUTES = 24 * 60


@dataclass(frozen=True)
class SecurityEvent:
    at: float
    jail: str
    ip: str
    what: str


def _opaque(name: str) -> str:
    """A user name as Redis holds it: the shared counters need equality, not the name."""
    return hashlib.blake2b(name.encode(), digest_size=12, person=b"medvault-guard").hexdigest()


class _LoginCounter:
    """Failures per key within a window, with the time of the last one (for growing delays).

    Counted here always, and over every node when Redis is shared; the shared count wins while Redis answers.
    """

    def __init__(self, findtime: float, name: str, shared: SharedState | None):
        self.findtime = findtime
        self._name = name
        self._shared = shared
        self._times: dict[str, deque[float]] = {}

    def add(self, key: str, t: float) -> None:
        self._times.setdefault(key, deque(maxlen=64)).append(t)
        if self._shared is not None:
            self._shared.add(self._name, key, t, self.findtime)

    def state(self, key: str, now: float) -> tuple[int, float]:
        """(failures within the window, time of the last one)."""
        if self._shared is not None and (everywhere := self._shared.window(self._name, key, now, self.findtime)):
            return everywhere
        times = self._times.get(key)
        if not times:
            return 0, 0.0
        while times and times[0] < now - self.findtime:
            times.popleft()
        return len(times), (times[-1] if times else 0.0)

    def clear(self, key: str) -> None:
        self._times.pop(key, None)
        if self._shared is not None:
            self._shared.forget(self._name, key)


class ServerGuard:
    def __init__(
        self,
        store: BanStore,
        policy: GuardPolicy | None = None,
        ignoreip: tuple[str, ...] = (),
        actions: ActionRunner | None = None,
        snapshot: Path | None = None,
        redis_url: str = "",
    ):
        self.policy = p = policy or GuardPolicy()
        self.store = store
        self.actions = actions
        self.snapshot = snapshot
        self.banlist = BanList(ipv6_prefix=64)
        self._banlist_lock = threading.Lock()  # the Redis listener adds bans from its own thread
        self._announcements: deque[tuple[float, str, float, str]] = deque(maxlen=1000)
        self.shared = SharedState(redis_url, self._announced) if redis_url else None
        inc = BantimeIncrement(p.bantime_factor, p.bantime_max)
        self.jails = {
            "scan": Jail("scan", p.scan_maxretry, p.scan_findtime, p.bantime, inc, list(ignoreip)),
            "errors": Jail("errors", p.errors_maxretry, p.errors_findtime, p.bantime, inc, list(ignoreip)),
            "flood": Jail("flood", p.flood_maxretry, p.flood_findtime, p.bantime, inc, list(ignoreip)),
            "noise": Jail("noise", p.noise_maxretry, p.noise_findtime, p.bantime, inc, list(ignoreip)),
            "probe": Jail("probe", p.probe_maxretry, p.probe_findtime, p.bantime, inc, list(ignoreip)),
        }
        self.scan_filter = Filter(load_filter(files("medvault.guard") / "filters" / "medvault-scan.conf"))
        self._login_ip = _LoginCounter(p.login_findtime, "login-ip", self.shared)
        self._login_users: dict[str, dict[str, float]] = {}
        self._login_user = _LoginCounter(p.user_findtime, "login-user", self.shared)
        self.history: Counter[tuple[str, int]] = Counter()  # (jail, minute) -> events
        self.recent: deque[SecurityEvent] = deque(maxlen=200)
        self.sync(time.time())

    # --- state shared through the database ------------------------------------------------------

    def sync(self, now: float) -> None:
        """Rebuild the in-memory ban list from the store (CLI bans, other nodes, restarts)."""
        started = time.monotonic()
        fresh = BanList(ipv6_prefix=64)
        counts: dict[str, dict[str, int]] = {}
        for row in self.store.all():
            if row.until > now:
                fresh.ban(row.network, row.until, row.jail)
            counts.setdefault(row.jail, {})[row.network.split("/")[0]] = row.count
        if self.actions is not None:  # bans made or lifted elsewhere (CLI, other nodes, before a restart)
            before = {e.network for e in self.banlist.entries() if e.until > now}
            after = {e.network: e.until for e in fresh.entries()}
            for network in before - after.keys():
                self.actions.lifted(network)
            for network in after.keys() - before:
                self.actions.banned(network, after[network] - now)
        with self._banlist_lock:
            for arrived, network, until, jail in self._announcements:  # those the database read may have missed
                if arrived >= started:
                    fresh.ban(network, until, jail)
            self.banlist = fresh
        for name, jail in self.jails.items():
            jail.restore_ban_counts(counts.get(name, {}))
            jail.expire(now)
        oldest = int(now // 60) - HISTORY_MINUTES
        for key in [k for k in self.history if k[1] < oldest]:
            del self.history[key]
        if self.snapshot is not None:  # for `medvault guard status`, which runs in another process
            tmp = self.snapshot.with_suffix(".tmp")
            tmp.write_text(json.dumps({**self.status(now), "written_at": now}))
            os.replace(tmp, self.snapshot)

    def _note(self, jail: str, ip: str, what: str, t: float) -> None:
        self.history[(jail, int(t // 60))] += 1
        self.recent.append(SecurityEvent(t, jail, ip, what))

    def _count(self, jail_name: str, ip: str, t: float, what: str) -> None:
        self._note(jail_name, ip, what, t)
        jail = self.jails[jail_name]
        if jail.is_ignored(ip):  # trusted proxies, the clinic's own network
            return
        everywhere = self.shared.add(jail_name, ip, t, jail.findtime) if self.shared is not None else None
        ban = jail.record_failure(ip, t, everywhere)
        if ban is not None:
            if self.shared is not None:
                self.shared.forget(jail_name, ip)
            self.ban(ip, ban.until, jail_name, ban.count, what)

    def ban(self, target: str, until: float, jail: str = "manual", count: int = 1, reason: str = "") -> None:
        with self._banlist_lock:
            entry = self.banlist.ban(target, until, jail)
        self.store.put(entry.network, jail, until, count, reason)
        if self.shared is not None:
            self.shared.announce(entry.network, until, jail)
        log.warning("ban %s jail=%s until=%d reason=%s", entry.network, jail, until, reason)
        if self.actions is not None:
            self.actions.banned(entry.network, until - time.time())

    def _announced(self, network: str, until: float, jail: str) -> None:
        """A ban another node made (already in the database; its firewall action runs at the next sync)."""
        with self._banlist_lock:
            self.banlist.ban(network, until, jail)
            self._announcements.append((time.monotonic(), network, until, jail))

    def unban(self, target: str) -> bool:
        entry = self.banlist.unban(target)
        lifted = self.store.lift(target) or entry is not None
        if lifted and self.actions is not None:
            self.actions.lifted(target)
        return lifted

    def is_banned(self, ip: str, now: float | None = None) -> bool:
        return self.banlist.is_banned(ip, time.time() if now is None else now)

    # --- feeds ------------------------------------------------------------------------------------

    def on_access(self, line: str, ip: str, status: int, t: float, signed_in: bool = False) -> None:
        """One access-log line: flood counting, 4xx bursts (of anonymous requests), scanner signatures."""
        self._rate(ip, t)
        if not signed_in and 400 <= status < 500 and status not in (401, 429):
            self._count("errors", ip, t, f"status {status}")
        if isinstance(self.scan_filter.match(line, t), Failure):
            self._count("scan", ip, t, "scanner signature or probe")

    def _rate(self, ip: str, t: float) -> None:
        ban = self.jails["flood"].record_failure(ip, t)
        if ban is not None:
            self._note("flood", ip, "request flood", t)
            self.ban(ip, ban.until, "flood", ban.count, "request flood")

    def on_event(self, kind: str, ip: str, t: float) -> None:
        if kind == "tls-probe":
            self._count("probe", ip, t, kind)
        elif kind in NOISE_EVENTS:
            self._count("noise", ip, t, kind)

    # --- logins -------------------------------------------------------------------------------------

    def check_login(self, ip: str, username: str, trusted_device: bool, now: float | None = None) -> None:
        """Raise Refused when this attempt must not reach the password check."""
        now = time.time() if now is None else now
        p = self.policy
        if self.is_banned(ip, now):
            raise Refused(403, "Your address is blocked after suspicious activity")
        if trusted_device:
            return
        failures, since = self._login_ip.state(ip, now)
        if failures >= p.login_ip_maxretry or self._users_tried(ip, now) > p.login_ip_users:
            raise Refused(
                403,
                "Too many failed sign-ins from your network; sign in from a device you used before, or try again later",
                int(max(since + p.login_bantime - now, 1)),
            )
        failures, last = self._login_user.state(_opaque(username.casefold()), now)
        if failures >= p.user_free_failures:
            wait = min(2.0 ** (failures - p.user_free_failures + 1), p.user_delay_max)
            remaining = last + wait - now
            if remaining > 0:
                raise Refused(
                    429, "Too many failed sign-ins for this account; please wait and try again", math.ceil(remaining)
                )

    def login_failed(self, ip: str, username: str, trusted_device: bool, t: float | None = None) -> None:
        t = time.time() if t is None else t
        self._note("login", ip, "failed sign-in", t)
        if not trusted_device:
            self._login_ip.add(ip, t)
            users = self._login_users.setdefault(ip, {})
            if len(users) < 1000:
                users[_opaque(username.casefold())] = t
            if self.shared is not None:
                self.shared.add("login-users", ip, t, self.policy.login_findtime, _opaque(username.casefold()))
        self._login_user.add(_opaque(username.casefold()), t)

    def login_succeeded(self, ip: str, username: str) -> None:
        self._login_user.clear(_opaque(username.casefold()))

    def _users_tried(self, ip: str, now: float) -> int:
        """How many different accounts `ip` failed to sign in to within the window (on every node if shared)."""
        span = self.policy.login_findtime
        if self.shared is not None and (everywhere := self.shared.window("login-users", ip, now, span)):
            return everywhere[0]
        return sum(1 for seen in self._login_users.get(ip, {}).values() if seen > now - span)

    # --- reporting ----------------------------------------------------------------------------------

    def status(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        since = int(now // 60) - 60
        per_jail: dict[str, list[int]] = {}
        for (jail, minute), n in self.history.items():
            if minute > since:
                per_jail.setdefault(jail, [0] * 60)[minute - since - 1] += n
        return {
            "bans": [
                {"network": e.network, "jail": e.jail, "until": e.until}
                for e in self.banlist.entries()
                if e.until > now
            ],
            "jails": {name: {"events_last_hour": sum(per_jail.get(name, []))} for name in (*self.jails, "login")},
            "timeline": {"minutes": 60, "end": now, "series": per_jail},
            "recent": [e.__dict__ for e in list(self.recent)[-50:]],
            **({"shared": self.shared.status()} if self.shared is not None else {}),
        }
