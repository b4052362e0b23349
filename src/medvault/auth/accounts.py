"""Accounts from invitation to login: no administrator ever sets or sees a password or recovery key.

An invitation is a one-time code (only its hash is stored). Accepting it is when the person's keys are
made, wrapped under their password and under a recovery key shown once. Logins run one Argon2id derivation
on the bounded pool; an unknown or disabled user costs the same derivation (with a salt derived from the
name) and gets the same answer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from medvault.auth import AuthError, InvalidCredentials, InvitationInvalid
from medvault.auth.pool import HashPool
from medvault.crypto import CryptoError
from medvault.crypto.keyring import (
    PrivateKeys,
    new_recovery_key,
    recovery_secret,
    unwrap_private_keys,
    wrap_private_keys,
)
from medvault.crypto.passwords import (
    Argon2Profile,
    LoginSecrets,
    derive_login_secrets,
    derive_subkey,
    hash_verifier,
)
from medvault.db.schema import invitations, sessions, users

ROLES = ("patient", "specialist", "admin")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Invitation:
    code: str
    user_id: str
    username: str
    expires_at: float


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    role: str
    profession: str | None
    status: str


def _code_hash(code: str) -> bytes:
    return hashlib.sha256(b"medvault/invitation/v1:" + code.encode()).digest()


def check_password_policy(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")


def check_username(username: str) -> None:
    if not (1 <= len(username) <= 64 and all(c.isalnum() or c in "._-" for c in username)):
        raise AuthError("User names are 1 to 64 letters, digits, '.', '_' or '-'")


class Accounts:
    def __init__(
        self, engine: Engine, pool: HashPool, profile: Argon2Profile, server_secret: bytes, invitation_hours: int
    ):
        self._engine = engine
        self._pool = pool
        self._profile = profile
        self._server_secret = server_secret
        self._invitation_seconds = invitation_hours * 3600

    # --- administration -------------------------------------------------------------------------

    def invite(self, username: str, role: str, profession: str | None = None) -> Invitation:
        check_username(username)
        if role not in ROLES:
            raise AuthError(f"Role must be one of {', '.join(ROLES)}")
        user_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            if conn.execute(select(users.c.id).where(users.c.username == username)).first():
                raise AuthError(f"User {username!r} already exists (use reinvite)")
            conn.execute(
                insert(users).values(
                    id=user_id,
                    username=username,
                    role=role,
                    profession=profession,
                    status="invited",
                    created_at=time.time(),
                    key_generation=0,
                )
            )
            return self._new_invitation(conn, user_id, username)

    def reinvite(self, username: str) -> Invitation:
        """The administrator's reset: a new invitation; old keys stay wrapped for the recovery key only."""
        with self._engine.begin() as conn:
            row = conn.execute(select(users.c.id).where(users.c.username == username)).first()
            if row is None:
                raise AuthError(f"No user {username!r}")
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(status="invited", salt=None, verifier_hash=None, keys_by_password=None)
            )
            conn.execute(delete(sessions).where(sessions.c.user_id == row.id))
            conn.execute(delete(invitations).where(invitations.c.user_id == row.id))
            return self._new_invitation(conn, row.id, username)

    def _new_invitation(self, conn, user_id: str, username: str) -> Invitation:
        code = secrets.token_urlsafe(24)
        expires = time.time() + self._invitation_seconds
        conn.execute(
            insert(invitations).values(code_hash=_code_hash(code), user_id=user_id, expires_at=expires, used=False)
        )
        return Invitation(code, user_id, username, expires)

    def disable(self, username: str) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(update(users).where(users.c.username == username).values(status="disabled"))
            if result.rowcount == 0:
                raise AuthError(f"No user {username!r}")
            user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
            conn.execute(delete(sessions).where(sessions.c.user_id == user_id))

    def list(self) -> list[Account]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.profession, users.c.status).order_by(
                    users.c.username
                )
            )
            return [Account(*row) for row in rows]

    def get(self, user_id: str) -> Account | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.profession, users.c.status).where(
                    users.c.id == user_id
                )
            ).first()
        return Account(*row) if row else None

    # --- the person ---------------------------------------------------------------------------------

    async def accept(self, code: str, password: str) -> tuple[Account, str]:
        """Set the password, make or recover keys; return the account and the recovery key (shown once)."""
        check_password_policy(password)
        with self._engine.connect() as conn:
            inv = conn.execute(select(invitations).where(invitations.c.code_hash == _code_hash(code))).first()
        if inv is None or inv.used or inv.expires_at < time.time():
            raise InvitationInvalid
        salt = os.urandom(16)
        login = await self._pool.run(lambda: derive_login_secrets(password, salt, self._profile))
        keys = PrivateKeys.generate()
        public = keys.public()
        recovery = new_recovery_key()
        with self._engine.begin() as conn:
            previous = conn.execute(
                select(users.c.keys_by_recovery, users.c.retired_keys).where(users.c.id == inv.user_id)
            ).one()
            claimed = conn.execute(
                update(invitations)
                .where(invitations.c.code_hash == inv.code_hash, invitations.c.used.is_(False))
                .values(used=True)
            )
            if claimed.rowcount != 1:
                raise InvitationInvalid
            conn.execute(
                update(users)
                .where(users.c.id == inv.user_id)
                .values(
                    status="active",
                    salt=salt,
                    verifier_hash=hash_verifier(login.verifier),
                    x25519_public=public.x25519,
                    ed25519_public=public.ed25519,
                    public_signature=public.signature,
                    keys_by_password=wrap_private_keys(keys, login.kek, inv.user_id),
                    keys_by_recovery=wrap_private_keys(keys, self._recovery_kek(recovery), inv.user_id),
                    retired_keys=previous.retired_keys or previous.keys_by_recovery,
                    key_generation=users.c.key_generation + 1,
                )
            )
        account = self.get(inv.user_id)
        assert account is not None
        return account, recovery

    def _recovery_kek(self, recovery_key: str) -> bytes:
        return derive_subkey(recovery_secret(recovery_key), "recovery-kek/v1")

    def _dummy_salt(self, username: str) -> bytes:
        return hmac.new(self._server_secret, b"dummy-salt:" + username.encode(), "sha256").digest()[:16]

    async def authenticate(self, username: str, password: str) -> tuple[Account, PrivateKeys]:
        """Check a password in constant shape: the same Argon2 run and answer for unknown users."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            raise InvalidCredentials
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        usable = row is not None and row.status == "active"
        salt = row.salt if usable else self._dummy_salt(username)
        login: LoginSecrets = await self._pool.run(lambda: derive_login_secrets(password, salt, self._profile))
        stored = row.verifier_hash if usable else os.urandom(32)
        if not hmac.compare_digest(hash_verifier(login.verifier), stored) or not usable:
            raise InvalidCredentials
        try:
            keys = unwrap_private_keys(row.keys_by_password, login.kek, row.id)
        except CryptoError:
            raise InvalidCredentials from None
        return Account(row.id, row.username, row.role, row.profession, row.status), keys

    async def change_password(self, user_id: str, keys: PrivateKeys, new_password: str) -> None:
        """Re-wrap the private keys under the new password; no record is touched."""
        check_password_policy(new_password)
        salt = os.urandom(16)
        login = await self._pool.run(lambda: derive_login_secrets(new_password, salt, self._profile))
        with self._engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(
                    salt=salt,
                    verifier_hash=hash_verifier(login.verifier),
                    keys_by_password=wrap_private_keys(keys, login.kek, user_id),
                )
            )

    async def recover(self, username: str, recovery_key: str, new_password: str) -> str:
        """Reset the password with the recovery key, keeping every record; returns a fresh recovery key."""
        check_password_policy(new_password)
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None or row.keys_by_recovery is None or row.status == "disabled":
            raise AuthError("Invalid user name or recovery key")
        try:
            keys = unwrap_private_keys(row.keys_by_recovery, self._recovery_kek(recovery_key), row.id)
        except CryptoError:
            raise AuthError("Invalid user name or recovery key") from None
        await self.change_password(row.id, keys, new_password)
        fresh = new_recovery_key()
        with self._engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(status="active", keys_by_recovery=wrap_private_keys(keys, self._recovery_kek(fresh), row.id))
            )
            conn.execute(delete(invitations).where(invitations.c.user_id == row.id))
        return fresh

    def retired_keys(self, user_id: str, recovery_key: str) -> PrivateKeys:
        """Open the keys an administrator's reset retired, with the recovery key of that time."""
        with self._engine.connect() as conn:
            sealed = conn.execute(select(users.c.retired_keys).where(users.c.id == user_id)).scalar_one()
        if sealed is None:
            raise AuthError("There are no older keys to reclaim")
        try:
            return unwrap_private_keys(sealed, self._recovery_kek(recovery_key), user_id)
        except CryptoError:
            raise AuthError("Invalid recovery key") from None

    def forget_retired_keys(self, user_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(retired_keys=None))
