"""A bounded, expiring cache of ranked rerank windows, so every page of a search comes from one ordering.

A shopper paging through results must never see an item twice or miss one, even if the
sidecar's answer would differ on a second call (it recovered from an outage, a model was
hot-reloaded, a tie broke the other way). The front door ranks the whole rerank window once,
keeps it here, and cuts every page from it. It also spares the sidecar a second rerank of
the same window for page 2.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class WindowCache(Generic[V]):
    """LRU of at most `entries` values, each kept for its own time to live (thread-safe)."""

    def __init__(self, entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.entries = entries
        self._clock = clock
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The live value for key, or None (missing or expired)."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V, ttl_s: float) -> None:
        """Keep value for ttl_s seconds, evicting the least recently used beyond `entries`."""
        if self.entries <= 0 or ttl_s <= 0:
            return
        with self._lock:
            self._items[key] = (self._clock() + ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
