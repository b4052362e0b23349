"""Bans persisted in the database: they survive restarts, are shared by every node on the same
database, and let the command line ban or lift an address while the server runs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from medvault.db.schema import bans


@dataclass(frozen=True)
class StoredBan:
    network: str
    jail: str
    until: float
    count: int
    reason: str | None


def _canonical(target: str) -> str:
    return str(ipaddress.ip_network(target, strict=False))


class BanStore:
    def __init__(self, engine: Engine):
        self._engine = engine

    def all(self) -> list[StoredBan]:
        with self._engine.connect() as conn:
            return [
                StoredBan(*row)
                for row in conn.execute(select(bans.c.network, bans.c.jail, bans.c.until, bans.c.count, bans.c.reason))
            ]

    def put(self, network: str, jail: str, until: float, count: int, reason: str = "") -> None:
        key = _canonical(network)
        with self._engine.begin() as conn:
            done = conn.execute(
                update(bans)
                .where(bans.c.network == key)
                .values(jail=jail, until=until, count=count, reason=reason[:200])
            )
            if done.rowcount == 0:
                conn.execute(insert(bans).values(network=key, jail=jail, until=until, count=count, reason=reason[:200]))

    def lift(self, target: str) -> bool:
        """Remove a ban now (its repeat count is forgotten too: a deliberate pardon)."""
        with self._engine.begin() as conn:
            return conn.execute(delete(bans).where(bans.c.network == _canonical(target))).rowcount > 0
