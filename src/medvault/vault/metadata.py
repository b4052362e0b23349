"""Validation of record metadata (FHIR DocumentReference-aligned keys) and of uploaded file names."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from medvault.vault import VaultError

CONFIDENTIALITY = ("normal", "restricted", "very-restricted")
_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
_TEXT_KEYS = ("title", "description", "facility", "type", "category")
_DATE_KEYS = ("service_date", "document_date")
KEYS = (*_TEXT_KEYS, *_DATE_KEYS, "provider", "tags", "custom", "confidentiality")


def valid_date(value: object) -> bool:
    """A date with its precision: YYYY, YYYY-MM or YYYY-MM-DD."""
    return isinstance(value, str) and bool(_DATE.match(value))


def _possible(value: str) -> bool:
    """A real calendar date (no 2023-02-30) whose first day is not after today in UTC."""
    parts = [int(p) for p in value.split("-")] + [1, 1]
    try:
        first = datetime(parts[0], parts[1], parts[2], tzinfo=UTC).date()
    except ValueError:
        return False
    return first <= datetime.now(UTC).date()


def _text(key: str, value: object, limit: int = 2000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise VaultError(f"metadata {key!r} must be text of at most {limit} characters")
    return value


def validate_metadata(raw: object) -> dict:
    """Return a clean copy of user metadata, or raise VaultError naming the bad key."""
    if not isinstance(raw, dict):
        raise VaultError("metadata must be a JSON object")
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise VaultError(f"unknown metadata key(s): {', '.join(sorted(unknown))}")
    clean: dict = {}
    for key in _TEXT_KEYS:
        if key in raw:
            clean[key] = _text(key, raw[key])
    for key in _DATE_KEYS:
        if key in raw:
            if not valid_date(raw[key]):
                raise VaultError(f"metadata {key!r} must be YYYY, YYYY-MM or YYYY-MM-DD")
            if not _possible(raw[key]):
                raise VaultError(f"metadata {key!r} must be a real date, not in the future (today in UTC is the limit)")
            clean[key] = raw[key]
    if "provider" in raw:
        providers = raw["provider"] if isinstance(raw["provider"], list) else [raw["provider"]]
        clean["provider"] = [_text("provider", p, 200) for p in providers][:50]
    if "tags" in raw:
        if not isinstance(raw["tags"], list):
            raise VaultError("metadata 'tags' must be a list of text")
        clean["tags"] = [_text("tags", t, 100) for t in raw["tags"]][:100]
    if "custom" in raw:
        custom = raw["custom"]
        if not isinstance(custom, dict) or len(custom) > 100:
            raise VaultError("metadata 'custom' must be an object of at most 100 fields")
        for name, value in custom.items():
            _text("custom field name", name, 100)
            if not isinstance(value, str | int | float | bool) or (isinstance(value, str) and len(value) > 2000):
                raise VaultError(f"custom field {name!r} must be text, a number or a boolean")
        clean["custom"] = dict(custom)
    confidentiality = raw.get("confidentiality", "normal")
    if confidentiality not in CONFIDENTIALITY:
        raise VaultError(f"metadata 'confidentiality' must be one of {', '.join(CONFIDENTIALITY)}")
    clean["confidentiality"] = confidentiality
    return clean


def user_metadata(meta: dict) -> dict:
    """The keys a user sets (what `validate_metadata` accepts) of a stored record's metadata."""
    return {k: v for k, v in meta.items() if k in KEYS}


def clean_filename(name: str | None) -> str:
    """Keep only the last path component, drop control characters and dot-only names."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name.strip(".") == "":
        return "upload"
    return name[:255]
