"""Facet shaping (both engines) and the embedded engine's facet counts over the whole match set."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engines.base import PRICE_BUCKETS, FacetBucket, Filters, RetrievalMode, RetrievalQuery
from engines.lance import LanceEngine
from frontdoor.facets import price_bucket_filter, shape_facets
from tests.frontdoor.conftest import catalogue_rows


def test_price_buckets_become_inclusive_cent_filters() -> None:
    assert price_bucket_filter(10, 25) == (10.0, 24.99)
    assert price_bucket_filter(250, None) == (250.0, None)


def test_shape_keeps_the_top_values_and_any_selected_one() -> None:
    counts = {
        "brand": [FacetBucket(f"b{i}", 100 - i) for i in range(30)],
        "price": [FacetBucket("250+", 3), FacetBucket("0-10", 5), FacetBucket("10-25", 0)],
    }
    shaped = shape_facets(counts, Filters(brands=("b29",), price_min=250.0), shown=5)
    assert [b["value"] for b in shaped["brand"]] == ["b0", "b1", "b2", "b3", "b4", "b29"]
    assert [b["selected"] for b in shaped["brand"]] == [False] * 5 + [True]
    assert [(b["value"], b["count"], b["selected"]) for b in shaped["price"]] == [
        ("0-10", 5, False),
        ("250+", 3, True),
    ]
    assert shaped["color"] == shaped["category"] == []


@pytest.fixture(scope="module")
def engine(stack_dir: Path) -> LanceEngine:
    return LanceEngine(stack_dir / "lancedb")


def _query(text: str, mode: RetrievalMode, size: int, facets: bool, filters: Filters | None = None) -> RetrievalQuery:
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    return RetrievalQuery(text, vector, mode, size, filters or Filters(), with_facets=facets)


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_facets_do_not_change_the_hits(engine: LanceEngine, mode: RetrievalMode) -> None:
    plain = engine.retrieve(_query("blue jacket", mode, 7, facets=False))
    faceted = engine.retrieve(_query("blue jacket", mode, 7, facets=True))
    assert [(h.product.id, h.score) for h in plain.hits] == [(h.product.id, h.score) for h in faceted.hits]
    assert plain.facets == {}
    assert set(faceted.facets) == {"brand", "category", "color", "price"}


def test_bm25_facets_count_every_filtered_match(engine: LanceEngine) -> None:
    filters = Filters(price_max=60.0)
    result = engine.retrieve(_query("lamp", "bm25", 3, facets=True, filters=filters))
    lamps = [r for r in catalogue_rows() if r["id"].startswith("lamp-") and r["price"] is not None and r["price"] <= 60]
    assert len(result.hits) == 3
    assert {b.value: b.count for b in result.facets["color"]} == Counter(r["color"] for r in lamps)
    buckets = {b.value: b.count for b in result.facets["price"]}
    assert sum(buckets.values()) == len(lamps)
    assert set(buckets) <= {f"{low:g}-{high:g}" for low, high in PRICE_BUCKETS if high is not None and high <= 100}


def test_knn_facets_count_the_knn_window(engine: LanceEngine) -> None:
    result = engine.retrieve(_query("anything", "knn", 9, facets=True))
    assert sum(b.count for b in result.facets["brand"]) == 9
    assert Counter({b.value: b.count for b in result.facets["brand"]}) == Counter(h.product.brand for h in result.hits)


def test_no_match_gives_empty_facets(engine: LanceEngine) -> None:
    result = engine.retrieve(_query("xylophone", "bm25", 5, facets=True))
    assert result.hits == []
    assert all(buckets == [] for buckets in result.facets.values())
