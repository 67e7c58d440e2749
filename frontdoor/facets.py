"""Facets as the shop front-end shows them: the most frequent values, selected ones marked, and price
buckets in price order carrying the price_min/price_max that select them.

Engines count the values (engines.facet_counts says over which products); this is the one place
that decides what a page of facets looks like, so both engines render alike. Equal counts are
ordered by the ranked window: the value of the result shown first comes first, and a value no
result in the window has comes after every value that one has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engines.base import FACET_NAMES, PRICE_BUCKETS, FacetBucket, Filters, price_bucket_label
from engines.facet_counts import facet_row
from shoprank.schema import Product

VALUES_SHOWN = 20
# Prices are in cents, so a bucket [low, high) is the inclusive filter [low, high - 0.01].
CENT = 0.01


def price_bucket_filter(low: float, high: float | None) -> tuple[float, float | None]:
    """The inclusive price_min / price_max that select exactly one price bucket."""
    return float(low), None if high is None else round(high - CENT, 2)


def _selected(filters: Filters) -> dict[str, set[str]]:
    return {"brand": set(filters.brands), "category": set(filters.categories), "color": set(filters.colors)}


def window_positions(window: Sequence[Product]) -> dict[str, dict[str, int]]:
    """Per attribute facet, the rank of the first product in the window with each value."""
    positions: dict[str, dict[str, int]] = {"brand": {}, "category": {}, "color": {}}
    for rank, product in enumerate(window):
        row = facet_row(product)
        for name, value in (("brand", row.brand), ("category", row.category), ("color", row.color)):
            if value:
                positions[name].setdefault(value, rank)
    return positions


def shape_facets(
    counts: Mapping[str, Sequence[FacetBucket]],
    filters: Filters,
    window: Sequence[Product] = (),
    shown: int = VALUES_SHOWN,
) -> dict[str, list[dict[str, Any]]]:
    """Top `shown` values per attribute facet (plus any selected value) by count, equal counts in
    the order of `window` (the ranked results), and the non-empty price buckets."""
    selected = _selected(filters)
    first = window_positions(window)
    shaped: dict[str, list[dict[str, Any]]] = {}
    for name in FACET_NAMES:
        buckets = counts.get(name, ())
        if name == "price":
            shaped[name] = _price(buckets, filters)
            continue
        rank = first[name]
        ordered = sorted(buckets, key=lambda b: (-b.count, rank.get(b.value, len(window)), b.value))
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
