"""The guard daemon: the one place that tails files, keeps time and runs ban commands.

Everything it drives is pure (filters, jails, the ban list); this module only wires them to the
outside world: it polls each jail's log files with a bounded sleep, feeds lines to the jail's
filter, turns bans into `actionban` commands and expired bans into `actionunban`, and saves log
positions, bans and ban counts to a JSON state file (written atomically) so a restart neither
re-reads old lines nor forgets who is banned.

Commands are split into arguments (no shell) and `<ip>` is substituted only with an address that
`ipaddress` accepted, so a log line cannot inject a command.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from medvault.guard.actions import run_command_action
from medvault.guard.banlist import BanList
from medvault.guard.errors import ConfigError
from medvault.guard.filterfile import load_filter, resolve_filter_path
from medvault.guard.jail import Ban, BantimeIncrement, Jail
from medvault.guard.matcher import Failure, Filter
from medvault.guard.tail import FileTail, Position


@dataclass
class JailRuntime:
    """A jail with its filter, tails and action commands."""

    jail: Jail
    filter: Filter
    tails: dict[str, FileTail]
    actionban: str | None = None
    actionunban: str | None = None


@dataclass
class GuardConfig:
    state_file: Path | None
    poll_interval: float
    jails: list[JailRuntime] = field(default_factory=list)


def _require(table: dict, key: str, kind: type, where: str):
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def load_config(path: Path) -> GuardConfig:
    """Read and validate the TOML config once, naming the key's path in every error."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    state = data.get("state_file")
    config = GuardConfig(Path(state) if state else None, float(data.get("poll_interval", 0.5)))
    jails = data.get("jails")
    if not isinstance(jails, dict) or not jails:
        raise ConfigError("jails: at least one [jails.NAME] table is required")
    for name, table in jails.items():
        where = f"jails.{name}"
        filter_path, opts = resolve_filter_path(_require(table, "filter", str, where))
        logpaths = table.get("logpath")
        logpaths = [logpaths] if isinstance(logpaths, str) else logpaths
        if not logpaths or not all(isinstance(p, str) for p in logpaths):
            raise ConfigError(f"{where}.logpath: expected a path or a list of paths")
        inc = table.get("bantime_increment")
        jail = Jail(
            name=name,
            maxretry=int(table.get("maxretry", 5)),
            findtime=float(table.get("findtime", 600)),
            bantime=float(table.get("bantime", 600)),
            bantime_increment=BantimeIncrement(**inc) if isinstance(inc, dict) else None,
            ignoreip=list(table.get("ignoreip", [])),
        )
        action = table.get("action", {})
        config.jails.append(
            JailRuntime(
                jail=jail,
                filter=Filter(load_filter(filter_path, opts)),
                tails={p: FileTail(p) for p in logpaths},
                actionban=action.get("actionban"),
                actionunban=action.get("actionunban"),
            )
        )
    return config


class Guard:
    """Drive jails from their log files; `step(now)` is one bounded polling round."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self.banlist = BanList()
        self._load_state()

    def _load_state(self) -> None:
        path = self.config.state_file
        if path is None or not path.is_file():
            return
        state = json.loads(path.read_text(encoding="utf-8"))
        self.banlist = BanList.from_json(json.dumps(state.get("banlist", {"bans": []})))
        for rt in self.config.jails:
            positions = state.get("positions", {}).get(rt.jail.name, {})
            for logpath, pos in positions.items():
                if logpath in rt.tails:
                    rt.tails[logpath] = FileTail(logpath, Position.from_dict(pos))
            rt.jail.restore_ban_counts(state.get("ban_counts", {}).get(rt.jail.name, {}))

    def save_state(self) -> None:
        path = self.config.state_file
        if path is None:
            return
        state = {
            "banlist": json.loads(self.banlist.to_json()),
            "positions": {
                rt.jail.name: {p: t.position.to_dict() for p, t in rt.tails.items()} for rt in self.config.jails
            },
            "ban_counts": {rt.jail.name: rt.jail.ban_counts for rt in self.config.jails},
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, path)

    def _ban(self, rt: JailRuntime, ban: Ban, now: float) -> None:
        if ban.until <= now or self.banlist.is_banned(ban.ip, now):
            return  # an old replayed failure, or already refused
        self.banlist.ban(ban.ip, ban.until, ban.jail)
        run_command_action(rt.actionban, ban.ip)

    def step(self, now: float) -> int:
        """Read new lines of every jail, apply bans and unbans; returns lines processed."""
        processed = 0
        for rt in self.config.jails:
            for tail in rt.tails.values():
                for line in tail.read_lines():
                    processed += 1
                    got = rt.filter.match(line, now)
                    if not isinstance(got, Failure):
                        continue
                    try:
                        ipaddress.ip_address(got.host)
                    except ValueError:
                        continue  # a host name or failure id: nothing a firewall could ban
                    ban = rt.jail.record_failure(got.host, got.time)
                    if ban is not None:
                        self._ban(rt, ban, now)
            rt.jail.expire(now)
        by_jail = {rt.jail.name: rt for rt in self.config.jails}
        for entry in self.banlist.expire(now):
            rt = by_jail.get(entry.jail)
            if rt is not None:
                run_command_action(rt.actionunban, entry.network)
        return processed

    def run(self, duration: float | None = None, *, once: bool = False) -> None:
        """Poll until `duration` seconds passed (forever if None); state is saved every round."""
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while True:
                busy = self.step(time.time())
                self.save_state()
                if once or (deadline is not None and time.monotonic() >= deadline):
                    return
                if not busy:
                    time.sleep(self.config.poll_interval)
        finally:
            for rt in self.config.jails:
                for tail in rt.tails.values():
                    tail.close()
