"""Security events as one log line each, built from structured fields.

The client address always stands in the fixed `ip=` slot right after the event name; every
client-controlled value is quoted with `"` and `\\` escaped and control characters hex-escaped, so a user
name such as `x from 10.0.0.7` or a forged user agent can never put another address where a log reader
(our guard, fail2ban, a SIEM) looks for one. Lines go to the security log and to in-process listeners.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

Listener = Callable[[str, str, float], None]  # (event kind, client ip, unix time)


def escape(value: str, limit: int = 200) -> str:
    """Escape a client-controlled value for a log line: printable ASCII kept, all else hex-escaped."""
    out = []
    for ch in value[:limit]:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
    return "".join(out)


def quote(value: str, limit: int = 200) -> str:
    return '"' + escape(value, limit) + '"'


def format_event(kind: str, ip: str, at: float, fields: dict[str, str]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
    extra = "".join(f" {name}={quote(value)}" for name, value in fields.items())
    return f"{stamp} medvault[{os.getpid()}]: {kind} ip={ip}{extra}"


class EventLog:
    """Appends event lines to `security.log` and tells listeners (the in-process guard) at once."""

    def __init__(self, log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.path = log_dir / "security.log"
        self._file = self.path.open("a", buffering=1, encoding="ascii")
        self._lock = threading.Lock()
        self.listeners: list[Listener] = []

    def emit(self, kind: str, ip: str, **fields: str) -> str:
        at = time.time()
        line = format_event(kind, ip, at, fields)
        with self._lock:
            self._file.write(line + "\n")
        for listener in self.listeners:
            listener(kind, ip, at)
        return line

    def close(self) -> None:
        self._file.close()
