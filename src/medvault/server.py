"""Serving: HTTPS for everything, plain HTTP only to redirect (308) to the same path on HTTPS.

TLS is started by our own connection protocol rather than by the listening socket, so that the client's
address is known *before* the handshake: a banned address is dropped without spending a handshake on it,
and a failed handshake (TLS scanners make hundreds) is logged with the client address for the guard.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import ipaddress
import logging
import signal
import ssl
import time
from collections.abc import Callable

import uvicorn
from starlette.types import Receive, Scope, Send

from medvault.core import MedVault
from medvault.guard.policy import GuardPolicy
from medvault.guard.service import ServerGuard
from medvault.proxyheader import MAX_LINE, ProxyHeaderError, parse_v1, within
from medvault.tls import server_context

log = logging.getLogger("medvault")

IsRefused = Callable[[str], bool]  # (client ip) -> drop before TLS
OnEvent = Callable[..., None]  # (event kind, client ip, **fields)

# Handshake failures no browser causes: plain text on the TLS port, or offering only protocols and
# suites that MedVault refuses. TLS scanners and service probes (nmap -sV) make them by the dozen.
PROBE_REASONS = {
    "HTTP_REQUEST",
    "WRONG_VERSION_NUMBER",
    "UNSUPPORTED_PROTOCOL",
    "NO_SHARED_CIPHER",
    "VERSION_TOO_LOW",
    "NO_CIPHERS_AVAILABLE",
    "NO_PROTOCOLS_AVAILABLE",
    "UNKNOWN_PROTOCOL",
    "NO_SUITABLE_SIGNATURE_ALGORITHM",
    "INAPPROPRIATE_FALLBACK",
    "HTTPS_PROXY_REQUEST",
}
# The client refused our certificate (a self-signed one, before the user accepts it): people, not scanners.
CERTIFICATE_REJECTIONS = {
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
}


class _LoggingSSLProtocol(asyncio.sslproto.SSLProtocol):
    """asyncio's TLS protocol, reporting failed handshakes with the peer's address."""

    def __init__(self, *args, peer: str, on_event: OnEvent, on_failed: Callable[[], None], **kwargs):
        super().__init__(*args, **kwargs)
        self._peer = peer
        self._on_event = on_event
        self._on_failed = on_failed

    def _on_handshake_complete(self, handshake_exc):
        if handshake_exc is not None:
            if isinstance(handshake_exc, type):  # asyncio passes the class when the peer vanished mid-handshake
                handshake_exc = handshake_exc()
            reason = str(getattr(handshake_exc, "reason", None) or type(handshake_exc).__name__)
            if reason in CERTIFICATE_REJECTIONS:
                kind = "tls-certificate-rejected"  # a browser meeting a self-signed certificate: not counted
            else:
                kind = "tls-probe" if reason in PROBE_REASONS else "tls-handshake-failure"
            self._on_event(kind, self._peer, reason=reason)
            self._on_failed()  # the HTTP protocol never saw this connection, so it cannot count it out
        return super()._on_handshake_complete(handshake_exc)


class ConnectionLimits:
    """Open connections per address (capped) and the deadline for a connection's first request head."""

    def __init__(self, per_ip: int, header_timeout: float):
        self.per_ip = per_ip
        self.header_timeout = header_timeout
        self.open: dict[str, int] = {}

    def enter(self, ip: str) -> bool:
        if self.open.get(ip, 0) >= self.per_ip:
            return False
        self.open[ip] = self.open.get(ip, 0) + 1
        return True

    def leave(self, ip: str) -> None:
        left = self.open.get(ip, 1) - 1
        if left:
            self.open[ip] = left
        else:
            self.open.pop(ip, None)


def gated_tls_protocol(
    inner_class: type,
    context: ssl.SSLContext,
    is_refused: IsRefused,
    on_event: OnEvent,
    limits: ConnectionLimits,
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
):
    """Build a uvicorn protocol class: from `proxies`, a PROXY protocol line first (`proxyheader.py`); then ban
    check and connection cap, TLS, and HTTP with a header deadline."""

    class TrackedHTTP(inner_class):
        peer = "0.0.0.0"  # noqa: S104 - replaced per connection
        port = 0
        saw_request = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.client = (self.peer, self.port)  # the PROXY line's client where there was one

        def on_response_complete(self) -> None:
            self.saw_request = True
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            limits.leave(self.peer)
            if not self.saw_request and self.cycle is None:
                on_event("request-incomplete", self.peer)
            super().connection_lost(exc)

    class GatedTLS(asyncio.Protocol):
        def __init__(self, config, server_state, app_state, _loop=None):
            self._loop = _loop or asyncio.get_running_loop()
            self._inner = TrackedHTTP(config=config, server_state=server_state, app_state=app_state, _loop=_loop)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("peername")
            ip = peer[0] if peer else "0.0.0.0"  # noqa: S104 - a placeholder for an unknown peer
            self._inner.peer, self._inner.port = ip, peer[1] if peer else 0
            self._loop.call_later(limits.header_timeout, self._deadline, transport)
            if proxies and within(ip, proxies):
                self._transport, self._header = transport, b""
                return  # `data_received` reads the PROXY line, then starts TLS
            self._start(transport, ip, b"")

        def data_received(self, data: bytes) -> None:
            """Bytes from a trusted proxy before TLS: the PROXY line, and maybe the start of the handshake."""
            self._header += data
            end = self._header.find(b"\r\n")
            if end < 0 and len(self._header) < MAX_LINE:
                return
            try:
                client = parse_v1(self._header[: end + 2] if end >= 0 else self._header)
            except ProxyHeaderError as exc:
                on_event("proxy-header-invalid", self._inner.peer, reason=str(exc))
                self._transport.abort()
                return
            if client is not None:
                self._inner.peer, self._inner.port = client
            self._start(self._transport, self._inner.peer, self._header[end + 2 :])

        def _start(self, transport: asyncio.BaseTransport, ip: str, early: bytes) -> None:
            if is_refused(ip):
                transport.abort()
                return
            if not limits.enter(ip):
                on_event("connection-cap", ip)
                transport.abort()
                return
            # A short shutdown timeout: clients that never answer close_notify (hydra) must not hold sockets.
            tls = _LoggingSSLProtocol(
                self._loop,
                self._inner,
                context,
                None,
                server_side=True,
                ssl_handshake_timeout=limits.header_timeout,
                ssl_shutdown_timeout=1.0,
                peer=ip,
                on_event=on_event,
                on_failed=lambda: limits.leave(ip),
            )
            transport.set_protocol(tls)
            tls.connection_made(transport)
            while early:  # handshake bytes that came with the PROXY line
                buffer = tls.get_buffer(len(early))
                size = min(len(buffer), len(early))
                buffer[:size] = early[:size]
                tls.buffer_updated(size)
                early = early[size:]

        def _deadline(self, transport: asyncio.BaseTransport) -> None:
            inner = self._inner
            if not transport.is_closing() and not inner.saw_request and inner.cycle is None:
                on_event("header-timeout", inner.peer)
                inner.saw_request = True  # counted once, as a timeout rather than an incomplete request
                transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:  # only reached before TLS started
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
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [
                    (b"location", target.encode("latin-1")),
                    (b"content-length", b"0"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class _Server(uvicorn.Server):
    """Two servers share one process, so signals are handled once, by `serve`, for both."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _uvicorn_config(app, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="h11",
        lifespan="off",
        server_header=False,
        date_header=True,
        proxy_headers=False,
        access_log=False,
        log_level="warning",
        timeout_keep_alive=10,
        timeout_graceful_shutdown=5,
        backlog=2048,
    )


async def serve(medvault: MedVault, app, guard: ServerGuard | None) -> None:
    settings = medvault.settings
    policy = guard.policy if guard is not None else GuardPolicy()
    https = _uvicorn_config(app, settings.host, settings.https_port)
    https.load()
    https.http_protocol_class = gated_tls_protocol(
        https.http_protocol_class,
        server_context(settings.cert_path, settings.key_path),
        guard.is_banned if guard is not None else (lambda _ip: False),
        medvault.events.emit,
        ConnectionLimits(policy.max_connections_per_ip, policy.header_timeout),
        tuple(ipaddress.ip_network(n) for n in settings.trusted_proxies) if settings.proxy_protocol else (),
    )
    http = _uvicorn_config(RedirectToHTTPS(settings.https_url), settings.host, settings.http_port)
    servers = [_Server(https), _Server(http)]

    def stop(_sig, _frame) -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    log.warning(
        "MedVault serving https://%s:%d (http://%s:%d redirects)",
        settings.host,
        settings.https_port,
        settings.host,
        settings.http_port,
    )
    tasks = [asyncio.ensure_future(s.serve()) for s in servers]
    chores = asyncio.ensure_future(_housekeeping(medvault, guard, servers))
    await asyncio.gather(*tasks)
    chores.cancel()


async def _housekeeping(medvault: MedVault, guard: ServerGuard | None, servers: list[uvicorn.Server]) -> None:
    """Every two seconds pick up bans made elsewhere (CLI, other nodes); every minute drop expired shares;
    every 30 s let ended or idle sessions' decrypted search indexes leave memory (`sweep` paces itself)."""
    rounds = 0
    while not all(s.should_exit for s in servers):
        await asyncio.sleep(2)
        rounds += 1
        try:
            if guard is not None:
                guard.sync(time.time())
            if rounds % 30 == 1:
                medvault.sharing.sweep_expired()
            medvault.search.sweep()
        except Exception:  # a database hiccup must not stop serving; the next round retries
            log.exception("housekeeping failed")
