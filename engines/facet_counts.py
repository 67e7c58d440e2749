"""Which products a search's facets count, and how they are counted: one definition for every engine.

The facets of a search count the products that match the shop-box words (the `multi_match` with
minimum_should_match of engines.bm25_fields) among the kNN window when the mode retrieves one
(hybrid, knn), or among every text match (bm25); when no product is in that set, they count the
ranked window. `shoprank eval-facets` measured this against the alternatives on the 100 judged
ESCI queries (docs/guide.md, "Facets"): it puts the most facet mass on the judged exact products'
categories and brands. OpenSearch computes it with a `filter` aggregation (engines.opensearch_query),
LanceDB with one full-text query per word over the kNN window (engines.lance); both count here
when they fall back to the window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from engines.base import FACET_NAMES, PRICE_BUCKETS, FacetBucket, price_bucket_label
from shoprank.schema import Product


class FacetRow(NamedTuple):
    """The attributes of one product a facet counts."""

    brand: str | None
    category: str | None  # the leaf category
    color: str | None
    price: float | None


def facet_row(product: Product) -> FacetRow:
    """A product's facet attributes."""
    return FacetRow(product.brand, product.category[-1] if product.category else None, product.color, product.price)


def price_bucket_of(price: float | None) -> str | None:
    """The label of the price bucket holding `price` (None for no price)."""
    if price is None:
        return None
    for low, high in PRICE_BUCKETS:
        if price >= low and (high is None or price < high):
            return price_bucket_label(low, high)
    return None


def no_facets() -> dict[str, list[FacetBucket]]:
    """Every facet, with no values."""
    return {name: [] for name in FACET_NAMES}


def count_facets(rows: Iterable[FacetRow]) -> dict[str, list[FacetBucket]]:
    """Brand / leaf-category / color counts (most frequent first, then by value; nulls and empty
    strings are no value) and price-bucket counts (in bucket order, empty buckets left out)."""
    counters = {name: Counter[str]() for name in FACET_NAMES}
    for row in rows:
        for name, value in (("brand", row.brand), ("category", row.category), ("color", row.color)):
            if value:
                counters[name][value] += 1
        bucket = price_bucket_of(row.price)
        if bucket is not None:
            counters["price"][bucket] += 1
    facets = {
        name: sorted((FacetBucket(v, n) for v, n in counters[name].items()), key=lambda b: (-b.count, b.value))
        for name in ("brand", "category", "color")
    }
    labels = [price_bucket_label(low, high) for low, high in PRICE_BUCKETS]
    facets["price"] = [FacetBucket(label, counters["price"][label]) for label in labels if counters["price"][label]]
    return facets
