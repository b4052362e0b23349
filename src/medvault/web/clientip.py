"""The client's address: from the socket, or from X-Forwarded-For only when the socket is a trusted proxy.

The address is resolved once per request and kept in the scope, so the access log, the login jails and
the ban check all see the same value. A spoofed header from anyone else is ignored.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from medvault.proxyheader import within

SCOPE_KEY = "medvault.client_ip"
PEER_KEY = "medvault.peer_ip"


def resolve(peer: str, forwarded_for: str | None, networks: list) -> str:
    """Walk X-Forwarded-For from the right, skipping trusted proxies; the first other hop is the client."""
    if not forwarded_for or not within(peer, networks):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not within(hop, networks):
            return hop
    return peer


class ClientIP:
    def __init__(self, app: ASGIApp, trusted_proxies: tuple[str, ...]):
        self.app = app
        self.networks = [ipaddress.ip_network(n) for n in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = scope["client"][0] if scope.get("client") else "0.0.0.0"  # noqa: S104 - a placeholder, not a bind
            xff = None
            if self.networks:
                xff = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"), None)
            scope[PEER_KEY] = peer
            scope[SCOPE_KEY] = resolve(peer, xff, self.networks)
        await self.app(scope, receive, send)


def client_ip(scope: Scope) -> str:
    return scope.get(SCOPE_KEY) or (scope["client"][0] if scope.get("client") else "0.0.0.0")  # noqa: S104
