"""Sharing records with specialists without re-encrypting anything.

Sharing wraps each record's data key to the specialist's X25519 key, after checking that key's signature by
the specialist's own signing key (the patient is shown the fingerprint to compare). A chart share also covers
records uploaded later: at upload the patient's session wraps the new key to every live chart share whose
slice (dates of service, facility) the record falls in. The slice itself is health data, so it is sealed to
the patient's own key. Revoking deletes the specialist's wrapped keys; an expired share's keys stop counting
at once (see `usable_key`) and the server's housekeeping deletes them within a minute. Each share also gets
a copy of the patient's chart key (mar/chart.py), made in the same transaction and deleted with the share's
record keys.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, insert, select, update

from medvault.audit import AuditTrail
from medvault.crypto.envelope import open_sealed_to, seal_to
from medvault.crypto.keyring import PrivateKeys, PublicKeys
from medvault.db.schema import record_keys, records, shares, users
from medvault.mar import facilities
from medvault.mar.chart import drop_expired, drop_for_share, wrap_for_share
from medvault.vault import RecordNotFound, VaultError
from medvault.vault.records import Vault

ACCESS = ("read", "annotate")


@dataclass(frozen=True)
class Scope:
    """A slice of a chart: dates of service from/to (YYYY[-MM[-DD]]) and a facility, all optional.

    The facility covers a record that spells the same name in other words ("St. Mary's Hosp." for "Saint
    Marys Hospital": facilities.words), never more: neither a place the name leaves out nor anyone's merge
    widens what the patient chose to share."""

    date_from: str | None = None
    date_to: str | None = None
    facility: str | None = None

    def covers(self, meta: dict) -> bool:
        """Very restricted records are never part of a chart share: only an explicit share by record."""
        if meta.get("confidentiality") == "very-restricted":
            return False
        date = meta.get("service_date")
        if self.date_from and (date is None or _last_day(date) < _first_day(self.date_from)):
            return False
        if self.date_to and (date is None or _first_day(date) > _last_day(self.date_to)):
            return False
        if not self.facility:
            return True
        wanted = facilities.words(self.facility)
        return bool(wanted[0]) and facilities.words(meta.get("facility") or "") == wanted


def _first_day(date: str) -> str:
    """A partial date's first day, so that `2024` matches any date in 2024 (dates keep their precision)."""
    return (date + "-01-01")[:10] if len(date) == 4 else (date + "-01")[:10]


def _last_day(date: str) -> str:
    return (date + "-12-31")[:10] if len(date) == 4 else (date + "-31")[:10]


def _scope_info(share_id: str) -> bytes:
    return f"medvault/share-scope/v1:{share_id}".encode()


class Sharing:
    def __init__(self, engine: Engine, vault: Vault, audit: AuditTrail):
        self._engine = engine
        self._vault = vault
        self._audit = audit

    def _specialist(self, conn, username: str) -> tuple[str, PublicKeys]:
        row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None or row.role != "specialist" or row.status != "active":
            raise VaultError(f"No active specialist {username!r}")
        public = PublicKeys(row.x25519_public, row.ed25519_public, row.public_signature)
        if not public.verify():
            raise VaultError(f"The keys of {username!r} do not verify: not sharing")
        return row.id, public

    def share(
        self,
        patient_id: str,
        keys: PrivateKeys,
        specialist: str,
        record_ids: list[str] | None = None,
        scope: Scope | None = None,
        access: str = "read",
        expires_at: float | None = None,
        ip: str | None = None,
    ) -> dict:
        """Share chosen records, or the chart (present and future, optionally a slice) when `scope` is given."""
        if access not in ACCESS:
            raise VaultError(f"access must be one of {', '.join(ACCESS)}")
        if (record_ids is None) == (scope is None):
            raise VaultError("Share either a list of records or the chart")
        now = time.time()
        if expires_at is not None and expires_at <= now:
            raise VaultError("The expiry must be in the future")
        share_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            specialist_id, public = self._specialist(conn, specialist)
            owned = set(conn.execute(select(records.c.id).where(records.c.owner_id == patient_id)).scalars())
            if record_ids is not None:
                if not set(record_ids) <= owned:
                    raise RecordNotFound
                chosen = list(dict.fromkeys(record_ids))
            else:
                chosen = [rid for rid in owned if scope.covers(self._vault.open(rid, patient_id, keys).metadata)]
            sealed = None
            if scope is not None:
                sealed = seal_to(keys.public().x25519, json.dumps(scope.__dict__).encode(), _scope_info(share_id))
            conn.execute(
                insert(shares).values(
                    id=share_id,
                    patient_id=patient_id,
                    specialist_id=specialist_id,
                    kind="chart" if scope is not None else "records",
                    access=access,
                    sealed_scope=sealed,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            wrap_for_share(conn, patient_id, keys, specialist_id, public.x25519, share_id)  # the chart workspace
            held = set(
                conn.execute(select(record_keys.c.record_id).where(record_keys.c.reader_id == specialist_id)).scalars()
            )
            for rid in chosen:
                if rid not in held:  # already readable through another share: that one keeps it
                    key = self._vault.data_key(rid, patient_id, keys)
                    self._vault.grant(conn, rid, specialist_id, public.x25519, key, share_id, now)
        for rid in chosen:
            self._audit.append("share", patient_id, rid, ip)
        return {
            "id": share_id,
            "specialist": specialist,
            "fingerprint": public.fingerprint,
            "records": len(chosen),
            "kind": "chart" if scope is not None else "records",
        }

    def revoke(self, patient_id: str, share_id: str, ip: str | None = None) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(shares)
                .where(shares.c.id == share_id, shares.c.patient_id == patient_id, shares.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            if done.rowcount != 1:
                raise VaultError("No such share")
            revoked = list(
                conn.execute(select(record_keys.c.record_id).where(record_keys.c.share_id == share_id)).scalars()
            )
            conn.execute(delete(record_keys).where(record_keys.c.share_id == share_id))
            drop_for_share(conn, share_id)
        for rid in revoked:
            self._audit.append("revoke", patient_id, rid, ip)

    def sweep_expired(self) -> int:
        """Delete the wrapped keys (record and chart keys) of expired shares; return how many went."""
        now = time.time()
        with self._engine.begin() as conn:
            expired = select(shares.c.id).where(shares.c.expires_at.is_not(None), shares.c.expires_at <= now)
            gone = conn.execute(delete(record_keys).where(record_keys.c.share_id.in_(expired))).rowcount
            return gone + drop_expired(conn, now)

    def readers_for_new_record(self, patient_id: str, keys: PrivateKeys, meta: dict) -> list[tuple[str, str]]:
        """(specialist, share) pairs of the patient's live chart shares whose slice covers this record."""
        now = time.time()
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(shares.c.id, shares.c.specialist_id, shares.c.sealed_scope).where(
                    shares.c.patient_id == patient_id,
                    shares.c.kind == "chart",
                    shares.c.revoked_at.is_(None),
                    (shares.c.expires_at.is_(None)) | (shares.c.expires_at > now),
                )
            ).all()
        readers: dict[str, str] = {}
        for row in rows:
            scope = Scope(**json.loads(open_sealed_to(keys.x25519, row.sealed_scope, _scope_info(row.id))))
            if scope.covers(meta):
                readers.setdefault(row.specialist_id, row.id)
        return list(readers.items())

    def list_for(self, user_id: str, role: str) -> list[dict]:
        """The patient's shares, or the shares made to a specialist, with names and how many records each shares.

        A summary's author holds its key through the share it was written under, but the patient did not share
        it: keys to records their reader wrote are not counted."""
        mine = shares.c.patient_id if role == "patient" else shares.c.specialist_id
        other = shares.c.specialist_id if role == "patient" else shares.c.patient_id
        counts = (
            select(record_keys.c.share_id, func.count().label("n"))
            .join(records, records.c.id == record_keys.c.record_id)
            .where(records.c.uploader_id != record_keys.c.reader_id)
            .group_by(record_keys.c.share_id)
            .subquery()
        )
        query = (
            select(shares, users.c.username, users.c.profession, counts.c.n)
            .join(users, users.c.id == other)
            .outerjoin(counts, counts.c.share_id == shares.c.id)
            .where(mine == user_id, shares.c.revoked_at.is_(None))
            .order_by(shares.c.created_at.desc())
        )
        now = time.time()
        with self._engine.connect() as conn:
            return [
                {
                    "id": r.id,
                    "with": r.username,
                    "with_id": r.patient_id if role == "specialist" else r.specialist_id,
                    "profession": r.profession,
                    "kind": r.kind,
                    "access": r.access,
                    "records": r.n or 0,
                    "created_at": r.created_at,
                    "expires_at": r.expires_at,
                    "expired": r.expires_at is not None and r.expires_at <= now,
                }
                for r in conn.execute(query)
            ]

    def specialists(self) -> list[dict]:
        """Registered specialists a patient may share with, with the fingerprint to compare."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(users)
                .where(and_(users.c.role == "specialist", users.c.status == "active"))
                .order_by(users.c.username)
            )
            return [
                {
                    "username": r.username,
                    "profession": r.profession,
                    "fingerprint": PublicKeys(r.x25519_public, r.ed25519_public, r.public_signature).fingerprint,
                }
                for r in rows
            ]
