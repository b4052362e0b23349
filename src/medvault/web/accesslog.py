"""Apache combined access log, written by the app itself so it is exact and always in the same format.

A path with parameters in it (a patient's user name, a record id) is logged as its route's template
(`/patients/{username}/chart`), whoever sends it, so the log names no patient; query strings are kept
only for requests without a session cookie that matched no such route (where probes live). Paths that
match no route (scanners' probes) are logged as sent, for the guard's filters. Client-controlled fields
are escaped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medvault.auth.sessions import COOKIE
from medvault.events import escape
from medvault.web.clientip import client_ip

LineListener = Callable[[str, str, int, float, bool], None]  # (line, ip, status, unix time, signed in)


def loggable_target(scope: Scope) -> str:
    """The request target as logs may show it: a route's template where the path carries parameters."""
    route = scope.get("route")
    if scope.get("path_params") and isinstance(getattr(route, "path", None), str):
        return route.path  # type: ignore[union-attr]
    target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string") and f"{COOKIE}=" not in _header(scope, b"cookie"):
        target += "?" + scope["query_string"].decode("latin-1")
    return target


def _header(scope: Scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), "-")


class AccessLog:
    def __init__(self, app: ASGIApp, log_dir: Path, listeners: list[LineListener] | None = None):
        self.app = app
        log_dir.mkdir(parents=True, exist_ok=True)
        self._file = (log_dir / "access.log").open("a", buffering=1, encoding="ascii")
        self._lock = threading.Lock()
        self.listeners = listeners or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        size = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.write(scope, status, size)

    def write(self, scope: Scope, status: int, size: int) -> None:
        now = time.time()
        ip = client_ip(scope)
        target = loggable_target(scope)
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
        line = (
            f'{ip} - - [{stamp}] "{escape(scope["method"])} {escape(target, 2000)} HTTP/{scope["http_version"]}" '
            f'{status} {size or "-"} "{escape(_header(scope, b"referer"))}" '
            f'"{escape(_header(scope, b"user-agent"))}"'
        )
        with self._lock:
            self._file.write(line + "\n")
        signed_in = scope.get("medvault.cache", {}).get("session") is not None
        for listener in self.listeners:
            listener(line, ip, status, now, signed_in)
