"""Facets as the shop front-end shows them: the most frequent values, selected ones marked, and price
buckets in price order carrying the price_min/price_max that select them.

Engines count every value (engines.base FACET_NAMES / PRICE_BUCKETS); this is the one place
that decides what a page of facets looks like, so both engines render alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engines.base import FACET_NAMES, PRICE_BUCKETS, FacetBucket, Filters, price_bucket_label

VALUES_SHOWN = 20
# Prices are in cents, so a bucket [low, high) is the inclusive filter [low, high - 0.01].
CENT = 0.01


def price_bucket_filter(low: float, high: float | None) -> tuple[float, float | None]:
    """The inclusive price_min / price_max that select exactly one price bucket."""
    return float(low), None if high is None else round(high - CENT, 2)


def _selected(filters: Filters) -> dict[str, set[str]]:
    return {"brand": set(filters.brands), "category": set(filters.categories), "color": set(filters.colors)}


def shape_facets(
    counts: Mapping[str, Sequence[FacetBucket]], filters: Filters, shown: int = VALUES_SHOWN
) -> dict[str, list[dict[str, Any]]]:
    """Top `shown` values per attribute facet (plus any selected value), and the non-empty price buckets."""
    selected = _selected(filters)
    shaped: dict[str, list[dict[str, Any]]] = {}
    for name in FACET_NAMES:
        buckets = counts.get(name, ())
        if name == "price":
            shaped[name] = _price(buckets, filters)
            continue
        ordered = sorted(buckets, key=lambda b: (-b.count, b.value))
        keep = [b for i, b in enumerate(ordered) if i < shown or b.value in selected[name]]
        shaped[name] = [
            {"value": b.value, "count": b.count, "selected": b.value in selected[name]} for b in keep if b.count > 0
        ]
    return shaped


def _price(buckets: Sequence[FacetBucket], filters: Filters) -> list[dict[str, Any]]:
    count = {b.value: b.count for b in buckets}
    out = []
    for low, high in PRICE_BUCKETS:
        label = price_bucket_label(low, high)
        if count.get(label, 0) <= 0:
            continue
        price_min, price_max = price_bucket_filter(low, high)
        out.append(
            {
                "value": label,
                "count": count[label],
                "price_min": price_min,
                "price_max": price_max,
                "selected": filters.price_min == price_min and filters.price_max == price_max,
            }
        )
    return out
