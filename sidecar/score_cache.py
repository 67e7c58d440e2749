"""LRU cache of cross-encoder scores, keyed so a stale score can never be served.

A key is (model version, template version, normalised query, product id, digest of the
product's template text): a new model, a new template, or an edited product (new title,
bullets...) each miss instead of returning the old score.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from shoprank.template import TEMPLATE_VERSION
from sidecar import metrics

CacheKey = tuple[str, str, str, str, bytes]


def text_digest(text: str) -> bytes:
    """A short digest of a product's template text (collisions are ~2^-64 per pair)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


class ScoreCache:
    """Thread-safe LRU of pair scores with lifetime hit/miss counts."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a score cache needs room for at least one entry; use no cache instead")
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, float] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(model_version: str, query: str, product_id: str, product_text: str) -> CacheKey:
        """The cache key of one (query, product) pair; `query` is the normalised query text."""
        return (model_version, TEMPLATE_VERSION, query, product_id, text_digest(product_text))

    def get_many(self, keys: Sequence[CacheKey]) -> list[float | None]:
        """Scores for the keys (None where missing); hits become most recently used."""
        found: list[float | None] = []
        with self._lock:
            for key in keys:
                score = self._entries.get(key)
                if score is not None:
                    self._entries.move_to_end(key)
                found.append(score)
        hits = sum(score is not None for score in found)
        with self._lock:
            self.hits += hits
            self.misses += len(keys) - hits
        metrics.record_cache_lookups(hits, len(keys) - hits)
        return found

    def put_many(self, keys: Sequence[CacheKey], scores: Sequence[float]) -> None:
        """Store scores, evicting the least recently used beyond max_entries."""
        with self._lock:
            for key, score in zip(keys, scores, strict=True):
                self._entries[key] = float(score)
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups since this cache was made (0 before any lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0
