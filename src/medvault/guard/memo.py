"""A dict that computes missing values: the matcher's per-line caches cost one lookup once built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Memo(dict):
    """`memo[key]` is `build(key)`, computed once; beyond `limit` keys it is computed and not kept."""

    def __init__(self, build: Callable[[Any], Any], limit: int | None = None) -> None:
        super().__init__()
        self._build = build
        self._limit = limit

    def __missing__(self, key: Any) -> Any:
        value = self._build(key)
        if self._limit is None or len(self) < self._limit:
            self[key] = value
        return value
