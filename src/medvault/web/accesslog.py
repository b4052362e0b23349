"""Apache combined access log, written by the app itself so it is exact and always in the same format.

Query strings are kept only for requests without a session cookie (where probes live): a signed-in
user's request never puts anything of theirs in the log. Client-controlled fields are escaped.
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
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        cookie = _header(scope, b"cookie")
        if scope.get("query_string") and f"{COOKIE}=" not in cookie:
            target += "?" + scope["query_string"].decode("latin-1")
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
