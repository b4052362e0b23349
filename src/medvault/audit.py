"""Append-only audit trail, hash-chained so that removing or editing an entry breaks every later hash.

A chain alone does not stop someone with write access to the database from editing an entry and recomputing
every later hash. So each patient's session signs the head of the chain (sequence number and hash) with the
patient's Ed25519 key when they sign in or read their trail: a checkpoint the server cannot forge. `verify`
recomputes the chain and checks every checkpoint against it, so a recomputed chain is caught at the first
checkpoint after the edit.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, insert, select, text

from medvault.crypto.keyring import PrivateKeys
from medvault.db.schema import audit, audit_checkpoints, records, users

_CHAIN_LOCK = 0x6D76_6175_6469_74  # PostgreSQL advisory lock key of the chain's head ("mvaudit")


def _entry_hash(prev: str, at: float, actor: str | None, action: str, record: str | None, ip: str | None) -> str:
    body = json.dumps([prev, round(at, 6), actor, action, record, ip], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _checkpoint_message(user_id: str, seq: int, head: str) -> bytes:
    return f"medvault/audit-checkpoint/v1:{user_id}:{seq}:{head}".encode()


@dataclass(frozen=True)
class Verdict:
    intact: bool
    entries: int
    checkpoints: int
    problem: str = ""


class AuditTrail:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()  # one writer at a time in this process, so the chain never forks

    def append(self, action: str, actor_id: str | None, record_id: str | None = None, ip: str | None = None) -> None:
        at = time.time()
        with self._lock, self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # other nodes append too: one writer at a time across them
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
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

    def head(self) -> tuple[int, str]:
        """(sequence number, hash) of the newest entry; (0, "") for an empty trail."""
        with self._engine.connect() as conn:
            row = conn.execute(select(audit.c.seq, audit.c.entry_hash).order_by(audit.c.seq.desc()).limit(1)).first()
        return (row.seq, row.entry_hash) if row else (0, "")

    def checkpoint(self, user_id: str, keys: PrivateKeys) -> dict:
        """Sign the current head with the user's key and keep the signature."""
        seq, head = self.head()
        signature = keys.ed25519.sign(_checkpoint_message(user_id, seq, head))
        with self._engine.begin() as conn:
            conn.execute(
                insert(audit_checkpoints).values(
                    user_id=user_id, seq=seq, head=head, signature=signature, at=time.time()
                )
            )
        return {"seq": seq, "head": head}

    def verify(self) -> Verdict:
        """Recompute the chain, then check every signed checkpoint against the recomputed hashes."""
        prev = ""
        hashes = {0: ""}
        with self._engine.connect() as conn:
            for row in conn.execute(select(audit).order_by(audit.c.seq)):
                if _entry_hash(prev, row.at, row.actor_id, row.action, row.record_id, row.ip) != row.entry_hash:
                    return Verdict(False, len(hashes) - 1, 0, f"entry {row.seq} does not match its hash")
                prev = hashes[row.seq] = row.entry_hash
            checks = conn.execute(
                select(audit_checkpoints, users.c.ed25519_public, users.c.username).join(
                    users, users.c.id == audit_checkpoints.c.user_id
                )
            ).all()
        for n, cp in enumerate(checks):
            try:
                Ed25519PublicKey.from_public_bytes(cp.ed25519_public).verify(
                    cp.signature, _checkpoint_message(cp.user_id, cp.seq, cp.head)
                )
            except (InvalidSignature, ValueError, TypeError):
                return Verdict(False, len(hashes) - 1, n, f"checkpoint signed for {cp.username} does not verify")
            if hashes.get(cp.seq) != cp.head:
                return Verdict(
                    False, len(hashes) - 1, n, f"entries up to {cp.seq} differ from what {cp.username} signed"
                )
        return Verdict(True, len(hashes) - 1, len(checks))

    def for_owner(self, owner_id: str, limit: int = 200, others_only: bool = False) -> list[dict]:
        """Every access to the owner's records, newest first, with who did it ("who saw my records");
        `others_only` leaves out the owner's own, which would otherwise crowd out everyone else's."""
        own = select(records.c.id).where(records.c.owner_id == owner_id)
        query = (
            select(audit, users.c.username, users.c.role)
            .outerjoin(users, users.c.id == audit.c.actor_id)
            .where(audit.c.record_id.in_(own))
            .order_by(audit.c.seq.desc())
            .limit(limit)
        )
        if others_only:
            query = query.where(audit.c.actor_id.is_distinct_from(owner_id))
        with self._engine.connect() as conn:
            return [
                {"at": r.at, "who": r.username, "role": r.role, "action": r.action, "record_id": r.record_id}
                for r in conn.execute(query)
            ]

    def opened_by(self, actor_id: str, record_ids: list[str]) -> set[str]:
        """Those of `record_ids` the actor has ever viewed, previewed or downloaded (what "unread" is measured by:
        the trail already knows, so no read flag needs storing)."""
        if not record_ids:
            return set()
        query = select(audit.c.record_id).where(
            audit.c.actor_id == actor_id,
            audit.c.record_id.in_(record_ids),
            audit.c.action.in_(("view", "preview", "download")),
        )
        with self._engine.connect() as conn:
            return set(conn.execute(query.distinct()).scalars())
