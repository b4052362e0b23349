"""The login flow shared by the API and the form: guard checks, one Argon2 run, session, events."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from medvault.auth import AuthError, InvalidCredentials
from medvault.auth.accounts import Account
from medvault.web.clientip import client_ip
from medvault.web.security import device_user, vault_of


@dataclass(frozen=True)
class LoginResult:
    account: Account
    cookie: str
    csrf_token: str


async def log_in(request: Request, username: str, password: str, via: str) -> LoginResult:
    """Authenticate or raise AuthError (InvalidCredentials, LoginBusy, or a guard refusal)."""
    medvault = vault_of(request)
    ip = client_ip(request.scope)
    guard = request.app.state.guard
    trusted = device_user(request) == username
    if guard is not None:
        guard.check_login(ip, username, trusted)
    try:
        account, keys = await medvault.accounts.authenticate(username, password)
    except InvalidCredentials:
        medvault.events.emit("auth-failure", ip, user=username, via=via)
        if guard is not None:
            guard.login_failed(ip, username, trusted)
        raise
    cookie, csrf = medvault.sessions.create(account.id, keys, ip)
    medvault.events.emit("auth-success", ip, user=username, via=via)
    if guard is not None:
        guard.login_succeeded(ip, username)
    return LoginResult(account, cookie, csrf)


async def recover_with_key(request: Request, username: str, recovery_key: str, new_password: str) -> str:
    """Reset a password with the recovery key, under the same guard as a login; returns the new key."""
    medvault = vault_of(request)
    ip = client_ip(request.scope)
    guard = request.app.state.guard
    trusted = device_user(request) == username
    if guard is not None:
        guard.check_login(ip, username, trusted)
    try:
        fresh = await medvault.accounts.recover(username, recovery_key.strip(), new_password)
    except AuthError:
        medvault.events.emit("auth-failure", ip, user=username, via="recovery")
        if guard is not None:
            guard.login_failed(ip, username, trusted)
        raise
    medvault.events.emit("recovery-success", ip, user=username)
    return fresh
