"""Product-side token ids, cached: a request tokenizes its query once and looks its products up.

A (query, product) pair is `[CLS] query [SEP] product [SEP]`, cut on the product side only; BERT
tokenizes each side on its own, so the product's ids do not depend on the query, and the pair is
the cached ids cut to the room the query leaves. The cache is keyed by the product's template
text (which carries the template's fields), inside one CrossEncoder (one model, one tokenizer,
one token budget): an edited product, another template or another model never reads a stale entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

TokenIds = npt.NDArray[np.int32]


class ProductTokenCache:
    """Thread-safe LRU of product text -> its token ids (no special tokens), at most `limit` ids each."""

    def __init__(self, max_entries: int, limit: int) -> None:
        self.max_entries = max_entries
        self.limit = limit
        self._entries: OrderedDict[str, TokenIds] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def ids(self, texts: Sequence[str], encode: Callable[[list[str]], list[list[int]]]) -> list[TokenIds]:
        """Token ids of every text: cached ones looked up, the rest encoded in one batch and kept."""
        found: list[TokenIds | None] = []
        with self._lock:
            for text in texts:
                entry = self._entries.get(text)
                if entry is not None:
                    self._entries.move_to_end(text)
                found.append(entry)
        missing = [i for i, entry in enumerate(found) if entry is None]
        if missing:
            encoded = encode([texts[i] for i in missing])
            fresh = [np.asarray(ids[: self.limit], dtype=np.int32) for ids in encoded]
            with self._lock:
                for i, ids in zip(missing, fresh, strict=True):
                    found[i] = ids
                    if self.max_entries > 0:
                        self._entries[texts[i]] = ids
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        with self._lock:
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        return [entry for entry in found if entry is not None]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def pair_ids(
    query_ids: Sequence[int], product_ids: TokenIds, max_length: int, cls_id: int, sep_id: int
) -> tuple[list[int], list[int]]:
    """`[CLS] query [SEP] product [SEP]` cut on the product side to max_length, and its segment ids."""
    room = max(max_length - len(query_ids) - 3, 0)
    product = product_ids[:room].tolist()
    ids = [cls_id, *query_ids, sep_id, *product, sep_id]
    types = [0] * (len(query_ids) + 2) + [1] * (len(product) + 1)
    return ids, types
