"""One Settings object, read once at start: flags over `MEDVAULT_*` environment over a TOML file.

Every value is validated here, with the offending key named, so nothing downstream re-checks settings.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from medvault.blobs.location import parse_s3_url


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    host: str = "127.0.0.1"
    https_port: int = 8443
    http_port: int = 8080
    cert: Path | None = None
    key: Path | None = None
    public_url: str = ""
    max_upload_bytes: int = 4 * 1024**3
    max_export_bytes: int = 200 * 1024**2
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    invitation_hours: int = 72
    trusted_proxies: tuple[str, ...] = ()
    proxy_protocol: bool = False
    argon2_memory_kib: int = 65536
    argon2_time_cost: int = 2
    login_workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    login_queue: int = 8
    guard_enabled: bool = True
    guard_nftables: bool = False
    guard_actionban: str = ""
    guard_actionunban: str = ""
    redis_url: str = ""
    blob_url: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    sweep_grace_minutes: int = 60

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'medvault.db').resolve()}"

    @property
    def https_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{self.host}{port}"

    @property
    def cert_path(self) -> Path:
        return self.cert or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        return self.key or self.data_dir / "tls" / "key.pem"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


_INT_KEYS = {f.name for f in fields(Settings) if f.type == "int"}
_PATH_KEYS = {"data_dir", "cert", "key"}


def _coerce(name: str, value: object) -> object:
    if value is None:
        return None
    try:
        if name in _INT_KEYS:
            number = int(value)  # type: ignore[arg-type]
            if number < 0:
                raise ValueError
            return number
        if name in _PATH_KEYS:
            return Path(str(value))
        if name in ("guard_enabled", "guard_nftables", "proxy_protocol"):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
        if name == "trusted_proxies":
            items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[arg-type]
            return tuple(str(ipaddress.ip_network(i.strip(), strict=False)) for i in items if i.strip())
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name!r}: invalid value {value!r}") from None
    if not isinstance(value, str):
        raise SettingsError(f"setting {name!r}: expected text, got {value!r}")
    if name == "redis_url" and value:
        _check_redis_url(value)
    if name == "blob_url" and value:
        try:
            parse_s3_url(value)
        except ValueError as exc:
            raise SettingsError(f"setting 'blob_url': {exc}") from None
    return value


def _check_redis_url(url: str) -> None:
    """Guard state shared through Redis decides who is banned: an unauthenticated Redis would let anyone on its
    network ban a clinic or lift an attacker's ban, so a password (or ACL user and password) is required."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SettingsError("setting 'redis_url': expected redis://:PASSWORD@HOST:PORT/DB (or rediss:// for TLS)")
    if not parts.password:
        raise SettingsError("setting 'redis_url': Redis must require a password; put it in the URL (redis://:PASSWORD@…)")


def load_settings(overrides: dict | None = None, config_file: Path | None = None) -> Settings:
    """Merge TOML file < environment < explicit overrides (CLI flags); unknown keys are errors."""
    known = {f.name for f in fields(Settings)}
    merged: dict[str, object] = {}
    path = config_file or (Path(os.environ["MEDVAULT_CONFIG"]) if os.environ.get("MEDVAULT_CONFIG") else None)
    if path is not None:
        try:
            table = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {path}: {exc}") from None
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in known:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            merged[name] = value
    for name in known:
        env = os.environ.get(f"MEDVAULT_{name.upper()}")
        if env is not None:
            merged[name] = env
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = Settings(**{k: _coerce(k, v) for k, v in merged.items()})
    if bool(settings.s3_access_key) != bool(settings.s3_secret_key):
        raise SettingsError("settings 's3_access_key' and 's3_secret_key': give both, or neither (AWS's own chain)")
    return settings
