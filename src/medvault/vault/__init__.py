"""Records as encrypted, signed objects: upload, read, range, delete, share."""


class VaultError(Exception):
    """Base error of the vault; the message is safe to show to the user."""


class RecordNotFound(VaultError):
    """Unknown id, or one the caller may not read (never says which: no existence leak)."""

    def __init__(self) -> None:
        super().__init__("Record not found")


class IntegrityError(VaultError):
    """Stored bytes failed authentication: tampering or corruption; nothing unverified is returned."""

    def __init__(self) -> None:
        super().__init__("Stored record failed its integrity check")


class TooLarge(VaultError):
    """The upload passed the configured size limit; nothing of it is kept."""
