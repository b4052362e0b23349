"""What a `blob_url` names: an S3-compatible bucket, a key prefix in it, the endpoint and the region.

Parsed without boto3 so that settings are validated at start (with the key named) at no import cost.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

FORM = "s3://BUCKET[/PREFIX][?endpoint=https://HOST:PORT&region=REGION]"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"
    endpoint: str  # "" means AWS itself
    region: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.endpoint}" if self.endpoint else "")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_endpoint(endpoint: str) -> str:
    """https anywhere; plain http only on loopback (a test server, or a proxy on the same machine): blobs are
    ciphertext, but a request in clear text can still be altered or replayed by anyone on the path."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise ValueError(f"endpoint must be https://HOST[:PORT], got {endpoint!r}")
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in the endpoint: set s3_access_key and s3_secret_key")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(f"endpoint {endpoint!r}: plain http is allowed on loopback only, use https")
    return f"{parts.scheme}://{parts.netloc}"


def parse_s3_url(url: str) -> S3Location:
    """The location `url` names; ValueError with a message fit for the operator if it names none."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"expected {FORM}")
    if "@" in parts.netloc:
        raise ValueError("credentials do not belong in the URL: set s3_access_key and s3_secret_key")
    if not _BUCKET.fullmatch(parts.netloc):
        raise ValueError(f"{parts.netloc!r} is not a bucket name (3-63 of a-z, 0-9, '.', '-')")
    prefix = parts.path.strip("/")
    if not _PREFIX.fullmatch(prefix) or "//" in prefix:
        raise ValueError(f"prefix {prefix!r}: use letters, digits, '.', '_', '-' and '/'")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - {"endpoint", "region"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; expected {FORM}")
    endpoint = _check_endpoint(query["endpoint"]) if query.get("endpoint") else ""
    return S3Location(parts.netloc, prefix + "/" if prefix else "", endpoint, query.get("region") or "us-east-1")
