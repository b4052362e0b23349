"""Serving: HTTPS for everything, plain HTTP only to redirect (308) to the same path on HTTPS.

TLS is started by our own connection protocol rather than by the listening socket, so that the client's
address is known *before* the handshake: a banned address is dropped without spending a handshake on it,
and a failed handshake (TLS scanners make hundreds) is logged with the client address for the guard.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable

import uvicorn
from starlette.types import Receive, Scope, Send

from medvault.core import MedVault
from medvault.tls import server_context

log = logging.getLogger("medvault")

IsRefused = Callable[[str], bool]
OnEvent = Callable[[str, str], None]  # (event kind, client ip)


class _LoggingSSLProtocol(asyncio.sslproto.SSLProtocol):
    """asyncio's TLS protocol, reporting failed handshakes with the peer's address."""

    def __init__(self, *args, peer: str, on_event: OnEvent, **kwargs):
        super().__init__(*args, **kwargs)
        self._peer = peer
        self._on_event = on_event

    def _on_handshake_complete(self, handshake_exc):
        if handshake_exc is not None:
            self._on_event("tls-handshake-failure", self._peer)
        return super()._on_handshake_complete(handshake_exc)


def gated_tls_protocol(inner_class: type, context: ssl.SSLContext, is_refused: IsRefused, on_event: OnEvent):
    """Build a uvicorn protocol class that checks the ban list, then starts TLS, then speaks HTTP."""

    class GatedTLS(asyncio.Protocol):
        def __init__(self, config, server_state, app_state, _loop=None):
            self._loop = _loop or asyncio.get_running_loop()
            self._inner = inner_class(config=config, server_state=server_state, app_state=app_state, _loop=_loop)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("peername")
            ip = peer[0] if peer else "0.0.0.0"  # noqa: S104 - a placeholder for an unknown peer
            if is_refused(ip):
                transport.abort()
                return
            tls = _LoggingSSLProtocol(self._loop, self._inner, context, None, server_side=True,
                                      ssl_handshake_timeout=10, peer=ip, on_event=on_event)
            transport.set_protocol(tls)
            tls.connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:  # only reached when refused
            return

    return GatedTLS


class RedirectToHTTPS:
    """The plain-HTTP port's whole behaviour: a permanent redirect, no page, no API, no body read."""

    def __init__(self, https_base: str):
        self.https_base = https_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        target = self.https_base + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        await send({"type": "http.response.start", "status": 308,
                    "headers": [(b"location", target.encode("latin-1")), (b"content-length", b"0"),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b""})


class _Server(uvicorn.Server):
    """Two servers share one process, so signals are handled once, by `serve`, for both."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _uvicorn_config(app, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, http="h11", lifespan="off", server_header=False,
                          date_header=True, proxy_headers=False, access_log=False, log_level="warning",
                          timeout_keep_alive=10, timeout_graceful_shutdown=5, backlog=2048)


async def serve(medvault: MedVault, app, is_refused: IsRefused | None = None,
                on_event: OnEvent | None = None) -> None:
    settings = medvault.settings
    https = _uvicorn_config(app, settings.host, settings.https_port)
    https.load()
    https.http_protocol_class = gated_tls_protocol(
        https.http_protocol_class, server_context(settings.cert_path, settings.key_path),
        is_refused or (lambda _ip: False), on_event or (lambda _kind, _ip: None))
    http = _uvicorn_config(RedirectToHTTPS(settings.https_url), settings.host, settings.http_port)
    servers = [_Server(https), _Server(http)]

    def stop(_sig, _frame) -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    log.warning("MedVault serving https://%s:%d (http://%s:%d redirects)", settings.host, settings.https_port,
                settings.host, settings.http_port)
    await asyncio.gather(*(s.serve() for s in servers))
