"""Append-only audit trail, hash-chained so that removing or editing an entry breaks every later hash."""

from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import Engine, insert, select

from medvault.db.schema import audit, records, users


def _entry_hash(prev: str, at: float, actor: str | None, action: str, record: str | None, ip: str | None) -> str:
    body = json.dumps([prev, round(at, 6), actor, action, record, ip], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class AuditTrail:
    def __init__(self, engine: Engine):
        self._engine = engine

    def append(self, action: str, actor_id: str | None, record_id: str | None = None, ip: str | None = None) -> None:
        at = time.time()
        with self._engine.begin() as conn:
            prev = conn.execute(select(audit.c.entry_hash).order_by(audit.c.seq.desc()).limit(1)).scalar()
            conn.execute(
                insert(audit).values(
                    at=at,
                    actor_id=actor_id,
                    action=action,
                    record_id=record_id,
                    ip=ip,
                    entry_hash=_entry_hash(prev or "", at, actor_id, action, record_id, ip),
                )
            )

    def verify(self) -> tuple[bool, int]:
        """Recompute the chain; return (intact, entries checked)."""
        prev = ""
        count = 0
        with self._engine.connect() as conn:
            for row in conn.execute(select(audit).order_by(audit.c.seq)):
                if _entry_hash(prev, row.at, row.actor_id, row.action, row.record_id, row.ip) != row.entry_hash:
                    return False, count
                prev = row.entry_hash
                count += 1
        return True, count

    def for_owner(self, owner_id: str, limit: int = 200) -> list[dict]:
        """Every access to the owner's records, newest first, with who did it ("who saw my records")."""
        own = select(records.c.id).where(records.c.owner_id == owner_id)
        query = (
            select(audit, users.c.username, users.c.role)
            .outerjoin(users, users.c.id == audit.c.actor_id)
            .where(audit.c.record_id.in_(own))
            .order_by(audit.c.seq.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                {"at": r.at, "who": r.username, "role": r.role, "action": r.action, "record_id": r.record_id}
                for r in conn.execute(query)
            ]
