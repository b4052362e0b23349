"""Sessions whose cookie carries the only key to the user's private keys for that session.

At login the private keys are re-wrapped under a key derived from a random token that lives only in the
user's cookie; the server stores the wrapped copy and the token's hash. A database dump plus the server's
disk therefore reveal no key. The CSRF token is derived from the session token, so it needs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from medvault.crypto import CryptoError
from medvault.crypto.keyring import PrivateKeys, unwrap_private_keys, wrap_private_keys
from medvault.crypto.passwords import derive_subkey
from medvault.db.schema import sessions, users

COOKIE = "mv_session"


@dataclass(frozen=True)
class Session:
    id: bytes
    user_id: str
    username: str
    role: str
    keys: PrivateKeys
    csrf_token: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session_id(token: bytes) -> bytes:
    return hashlib.sha256(b"medvault/session-id/v1:" + token).digest()


def _csrf(token: bytes) -> str:
    return _b64(derive_subkey(token, "session/csrf/v1", 24))


class Sessions:
    def __init__(self, engine: Engine, idle_minutes: int, max_hours: int):
        self._engine = engine
        self._idle = idle_minutes * 60
        self._max = max_hours * 3600

    def create(self, user_id: str, keys: PrivateKeys, ip: str) -> tuple[str, str]:
        """Start a session; return (cookie value, CSRF token)."""
        token = os.urandom(32)
        now = time.time()
        wrapped = wrap_private_keys(keys, derive_subkey(token, "session/keys/v1"), user_id)
        with self._engine.begin() as conn:
            conn.execute(
                insert(sessions).values(
                    id=_session_id(token),
                    user_id=user_id,
                    keys_by_session=wrapped,
                    created_at=now,
                    last_seen=now,
                    ip=ip,
                )
            )
        return _b64(token), _csrf(token)

    def resolve(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The live session for a cookie value, or None; touches its idle timer."""
        if not cookie or len(cookie) > 64:
            return None
        try:
            token = _unb64(cookie)
        except ValueError:
            return None
        now = now or time.time()
        sid = _session_id(token)
        with self._engine.begin() as conn:
            row = conn.execute(
                select(sessions, users.c.username, users.c.role, users.c.status)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.id == sid)
            ).first()
            if row is None:
                return None
            if row.status != "active" or now - row.last_seen > self._idle or now - row.created_at > self._max:
                conn.execute(delete(sessions).where(sessions.c.id == sid))
                return None
            if now - row.last_seen > 60:
                conn.execute(update(sessions).where(sessions.c.id == sid).values(last_seen=now))
        try:
            keys = unwrap_private_keys(row.keys_by_session, derive_subkey(token, "session/keys/v1"), row.user_id)
        except CryptoError:
            return None
        return Session(sid, row.user_id, row.username, row.role, keys, _csrf(token))

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(session.csrf_token.encode(), presented.encode())

    def revoke(self, session_id: bytes) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == session_id))

    def revoke_all(self, user_id: str) -> int:
        with self._engine.begin() as conn:
            return conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount

    def list(self, user_id: str) -> list[dict]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(sessions.c.id, sessions.c.created_at, sessions.c.last_seen, sessions.c.ip)
                .where(sessions.c.user_id == user_id)
                .order_by(sessions.c.created_at)
            )
            return [
                {"id": row.id.hex()[:16], "created_at": row.created_at, "last_seen": row.last_seen, "ip": row.ip}
                for row in rows
            ]
