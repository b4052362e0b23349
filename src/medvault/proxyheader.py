"""PROXY protocol v1: the client's address that a trusted TCP proxy writes before the TLS bytes.

A proxy that passes TLS through (HAProxy in TCP mode, nginx `stream` with `proxy_protocol on`) cannot
add `X-Forwarded-For`, so it sends one text line first: `PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\\r\\n`.
Anyone could write such a line, so it is read only from `trusted_proxies`, and from them it is required
when `proxy_protocol` is on: a malformed line closes the connection.  The address it names is then the
client's for everything: the ban check before TLS, the connection cap, the jails and the access log.
Version 2 (binary) is not read.
"""

from __future__ import annotations

import ipaddress

MAX_LINE = 107  # the specification's longest v1 line, CRLF included
_FAMILIES = {"TCP4": 4, "TCP6": 6}


class ProxyHeaderError(ValueError):
    """The bytes are not a PROXY protocol v1 line."""


def within(ip: str, networks) -> bool:
    """True when `ip` is an address inside one of `networks` (a trusted proxy)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535 or (len(text) > 1 and text[0] == "0"):
        raise ProxyHeaderError(f"bad port {text!r}")
    return int(text)


def parse_v1(line: bytes) -> tuple[str, int] | None:
    """(source address, source port) of a complete header line ending in CRLF; None for `PROXY UNKNOWN`
    (a proxy's own health check), which leaves the connection's own address in place."""
    if len(line) > MAX_LINE or not line.endswith(b"\r\n"):
        raise ProxyHeaderError("no PROXY line within 107 bytes")
    try:
        parts = line[:-2].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY line is not ASCII") from None
    if parts[0] != "PROXY" or len(parts) < 2:
        raise ProxyHeaderError("not a PROXY line")
    if parts[1] == "UNKNOWN":
        return None
    if len(parts) != 6 or parts[1] not in _FAMILIES:
        raise ProxyHeaderError("PROXY line needs TCP4|TCP6, two addresses and two ports")
    try:
        source, destination = ipaddress.ip_address(parts[2]), ipaddress.ip_address(parts[3])
    except ValueError:
        raise ProxyHeaderError("bad address in PROXY line") from None
    if source.version != _FAMILIES[parts[1]] or destination.version != source.version:
        raise ProxyHeaderError("address family does not match the PROXY line's protocol")
    port = _port(parts[4])
    _port(parts[5])
    return str(source), port
