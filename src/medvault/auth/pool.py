"""A bounded pool for Argon2 runs, so password guessing cannot become a denial of service.

One worker per core and a short queue; a request beyond that is refused at once (503) instead of waiting.
argon2-cffi releases the GIL while hashing, so threads give real parallelism.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from medvault.auth import LoginBusy

T = TypeVar("T")


class HashPool:
    def __init__(self, workers: int, queue: int):
        self._workers = workers
        self._limiter: anyio.CapacityLimiter | None = None
        self._slots = threading.BoundedSemaphore(workers + queue)

    async def run(self, fn: Callable[[], T]) -> T:
        if not self._slots.acquire(blocking=False):
            raise LoginBusy
        try:
            if self._limiter is None:  # created lazily: it belongs to the running event loop
                self._limiter = anyio.CapacityLimiter(self._workers)
            return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        finally:
            self._slots.release()
