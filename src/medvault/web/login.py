"""The login flow shared by the API and the form: guard checks, one Argon2 run, session, events."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from medvault.auth import AuthError, InvalidCredentials
from medvault.auth.accounts import Account, check_password_policy
from medvault.web.clientip import client_ip
from medvault.web.security import device_user, vault_of


@dataclass(frozen=True)
class LoginResult:
    account: Account
    cookie: str
    csrf_token: str


async def guarded(request: Request, username: str, via: str, attempt, failures: tuple[type, ...]):
    """Run a password or recovery-key check under the login jails; log and count its failures."""
    medvault = vault_of(request)
    ip = client_ip(request.scope)
    guard = request.app.state.guard
    trusted = device_user(request) == username
    if guard is not None:
        guard.check_login(ip, username, trusted)
    try:
        result = await attempt()
    except failures:
        medvault.events.emit("auth-failure", ip, user=username, via=via)
        if guard is not None:
            guard.login_failed(ip, username, trusted)
        raise
    medvault.events.emit("auth-success", ip, user=username, via=via)
    if guard is not None:
        guard.login_succeeded(ip, username)
    return result


async def log_in(request: Request, username: str, password: str, via: str) -> LoginResult:
    """Authenticate or raise AuthError (InvalidCredentials, LoginBusy, or a guard refusal)."""
    medvault = vault_of(request)
    account, keys = await guarded(
        request, username, via, lambda: medvault.accounts.authenticate(username, password), (InvalidCredentials,)
    )
    cookie, csrf = medvault.sessions.create(account.id, keys, client_ip(request.scope))
    if account.role == "patient":  # the patient vouches for the audit trail as it stands (see audit.py)
        medvault.audit.checkpoint(account.id, keys)
    return LoginResult(account, cookie, csrf)


async def recover_with_key(request: Request, username: str, recovery_key: str, new_password: str) -> str:
    """Reset a password with the recovery key, under the same guard as a login; returns the new key."""
    check_password_policy(new_password)  # the person's typo, not a guess: checked before the jails count
    accounts = vault_of(request).accounts
    return await guarded(
        request,
        username,
        "recovery",
        lambda: accounts.recover(username, recovery_key.strip(), new_password),
        (AuthError,),
    )
