"""Accounts, logins and sessions."""


class AuthError(Exception):
    """Base error of the auth subsystem; the message is safe to show to the user."""


class InvalidCredentials(AuthError):
    def __init__(self) -> None:
        super().__init__("Invalid username or password")


class LoginBusy(AuthError):
    """The Argon2 pool is saturated: answered 503 rather than queueing without bound."""

    def __init__(self) -> None:
        super().__init__("Server busy, try again shortly")


class InvitationInvalid(AuthError):
    def __init__(self) -> None:
        super().__init__("This invitation is invalid, used or expired")
