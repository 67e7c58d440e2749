"""The score cache: least recently used eviction, and keys that never serve a stale score."""

from __future__ import annotations

import pytest

from shoprank.template import TEMPLATE_VERSION
from sidecar.score_cache import ScoreCache


def test_least_recently_used_entries_are_evicted() -> None:
    cache = ScoreCache(max_entries=2)
    a, b, c = (ScoreCache.key("m1", "towels", pid, "text") for pid in "abc")
    cache.put_many([a, b], [1.0, 2.0])
    assert cache.get_many([a]) == [1.0]  # a is now the most recently used
    cache.put_many([c], [3.0])
    assert cache.get_many([a, b, c]) == [1.0, None, 3.0]
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (3, 1)
    assert cache.hit_rate == pytest.approx(0.75)


def test_keys_change_with_model_query_product_and_its_text() -> None:
    base = ScoreCache.key("m1", "towels", "p1", "Towel [SEP] brand: Utopia")
    assert base[1] == TEMPLATE_VERSION
    assert ScoreCache.key("m1", "towels", "p1", "Towel [SEP] brand: Utopia") == base
    for other in (
        ScoreCache.key("m2", "towels", "p1", "Towel [SEP] brand: Utopia"),  # new model
        ScoreCache.key("m1", "mugs", "p1", "Towel [SEP] brand: Utopia"),  # other query
        ScoreCache.key("m1", "towels", "p2", "Towel [SEP] brand: Utopia"),  # other product
        ScoreCache.key("m1", "towels", "p1", "Towel (new) [SEP] brand: Utopia"),  # edited product
    ):
        assert other != base


def test_a_cache_needs_room() -> None:
    with pytest.raises(ValueError, match="no cache"):
        ScoreCache(0)
