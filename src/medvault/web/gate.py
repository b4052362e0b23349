"""Refuse banned addresses on every request, before routing or reading the body.

The connection protocol already drops banned peers before TLS; this gate also covers requests on
kept-alive connections and addresses learnt from a trusted proxy's X-Forwarded-For.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from medvault.web.clientip import client_ip

_BODY = json.dumps({"detail": "Your address is blocked after suspicious activity"}).encode()


class BanGate:
    def __init__(self, app: ASGIApp, is_banned):
        self.app = app
        self.is_banned = is_banned

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.is_banned(client_ip(scope)):
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_BODY)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _BODY})
            return
        await self.app(scope, receive, send)
