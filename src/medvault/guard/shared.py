"""Guard state shared by every node through Redis: failure windows and bans.

Behind a load balancer an attacker's guesses are spread over the nodes; counted per node, each node would see a
fraction and the attacker would get N times the tries. So every failure is also added to a sorted set in Redis
(one per jail and address, scored by time), and the decision is taken on the count of all nodes. A ban is
published on a channel that every node listens to, so it reaches them all at once (the database copy, re-read
every two seconds, stays the record and the fallback).

Redis is on the request path, so it must never stall it: calls have a 250 ms timeout, and the first failure marks
Redis down; while it is down nothing waits on it, every node guards on its own counts (which it keeps anyway),
failures are kept in a bounded backlog, and a watcher thread retries every second, replays the backlog when
Redis returns (so the windows lose nothing) and logs both changes once.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import redis

log = logging.getLogger("medvault.guard")

CHANNEL = "medvault:guard:bans"
_PREFIX = "medvault:guard:"
_TIMEOUT = 0.25
_BACKLOG = 100_000

BanHandler = Callable[[str, float, str], None]


class SharedState:
    """Sliding windows and ban announcements in Redis, with per-node fallback while Redis is away."""

    def __init__(self, url: str, on_ban: BanHandler):
        self._redis = redis.Redis.from_url(url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT)
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port or 6379}"  # never the URL: it holds the password
        self._on_ban = on_ban
        self._member = itertools.count()
        self.node = uuid.uuid4().hex[:12]
        self.up = True
        self._backlog: deque[tuple[str, str, str, float, float]] = deque(maxlen=_BACKLOG)
        self._stop = threading.Event()
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            self._went_down(exc)
        self._watcher = threading.Thread(target=self._watch, name="guard-redis", daemon=True)
        self._watcher.start()

    # --- windows ------------------------------------------------------------------------------------

    def add(self, window: str, key: str, t: float, span: float, member: str | None = None) -> int | None:
        """Add an event at `t` to `window`/`key` and return how many it holds within `span` on all nodes, or
        None while Redis is down (the event is kept for later). `member` dedupes (a user name tried from an
        address); by default every event counts."""
        member = member or f"{self.node}:{next(self._member)}"
        if not self.up:
            self._backlog.append((window, key, member, t, span))
            return None
        try:
            return self._write(window, key, member, t, span)
        except redis.RedisError as exc:
            self._backlog.append((window, key, member, t, span))
            self._went_down(exc)
            return None

    def _write(self, window: str, key: str, member: str, t: float, span: float) -> int:
        name = _PREFIX + window + ":" + key
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(name, {member: t})
        pipe.zremrangebyscore(name, "-inf", t - span)
        pipe.zcard(name)
        pipe.expire(name, int(span) + 1)
        return pipe.execute()[2]

    def window(self, window: str, key: str, now: float, span: float) -> tuple[int, float] | None:
        """(events within `span` before `now`, time of the last one) over all nodes; None while Redis is down."""
        if not self.up:
            return None
        name = _PREFIX + window + ":" + key
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zcount(name, now - span, "+inf")
            pipe.zrange(name, -1, -1, withscores=True)
            count, last = pipe.execute()
        except redis.RedisError as exc:
            self._went_down(exc)
            return None
        return count, (last[0][1] if last else 0.0)

    def forget(self, window: str, key: str) -> None:
        if self.up:
            try:
                self._redis.delete(_PREFIX + window + ":" + key)
            except redis.RedisError as exc:
                self._went_down(exc)

    # --- bans ---------------------------------------------------------------------------------------

    def announce(self, network: str, until: float, jail: str) -> None:
        """Tell every node (this one ignores its own message); while Redis is down the database carries it."""
        if not self.up:
            return
        try:
            self._redis.publish(CHANNEL, json.dumps([self.node, network, until, jail]))
        except redis.RedisError as exc:
            self._went_down(exc)

    def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                try:
                    node, network, until, jail = json.loads(message["data"])
                except (ValueError, TypeError):
                    log.warning("ignored a malformed ban announcement")
                    continue
                if node != self.node:
                    self._on_ban(str(network), float(until), str(jail))
        finally:
            pubsub.close()

    # --- health -------------------------------------------------------------------------------------

    def _went_down(self, exc: Exception) -> None:
        if self.up:
            self.up = False
            log.warning(
                "Redis at %s unreachable (%s): each node guards on its own counts until it returns",
                self.where,
                type(exc).__name__,
            )

    def _watch(self) -> None:
        """Listen for bans while Redis is up; when it is not, retry every second and replay the backlog."""
        while not self._stop.is_set():
            if self.up:
                try:
                    self._listen()
                except redis.RedisError as exc:
                    self._went_down(exc)
                continue
            self._stop.wait(1.0)
            try:
                self._redis.ping()
                while self._backlog:
                    self._write(*self._backlog[0])
                    self._backlog.popleft()
            except redis.RedisError:
                continue
            self.up = True
            log.warning("Redis at %s reachable again: guard counts are shared by every node", self.where)

    def status(self) -> dict:
        return {"redis": self.where, "up": self.up, "backlog": len(self._backlog)}

    def close(self) -> None:
        self._stop.set()
        self._watcher.join(timeout=2 * _TIMEOUT + 1.5)
        self._redis.close()

