"""The ranked-window cache: expiry per entry, least-recently-used eviction, off when sized 0."""

from __future__ import annotations

from frontdoor.window_cache import WindowCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_own_ttl() -> None:
    clock = Clock()
    cache: WindowCache[str] = WindowCache(8, clock=clock)
    cache.put("long", "a", ttl_s=60)
    cache.put("short", "b", ttl_s=5)
    clock.now += 10
    assert cache.get("long") == "a"
    assert cache.get("short") is None
    assert len(cache) == 1


def test_least_recently_used_is_evicted() -> None:
    cache: WindowCache[int] = WindowCache(2, clock=Clock())
    cache.put("a", 1, ttl_s=60)
    cache.put("b", 2, ttl_s=60)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3, ttl_s=60)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_size_zero_or_ttl_zero_keeps_nothing() -> None:
    off: WindowCache[int] = WindowCache(0)
    off.put("a", 1, ttl_s=60)
    assert off.get("a") is None
    on: WindowCache[int] = WindowCache(4)
    on.put("a", 1, ttl_s=0)
    assert on.get("a") is None
