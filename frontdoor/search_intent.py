"""The search's query-intent hook: the query's categories from the live version's model, the
first-stage filter a confident one sets, and the category facet ordered by them
(frontdoor/intent_policy.py holds the policy, intent/ the model)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engines.base import Filters
from frontdoor.facets import shape_facets
from frontdoor.intent_policy import (
    SHOWN_CATEGORIES,
    IntentOutcome,
    IntentProvider,
    intent_filters,
    intent_ordered_categories,
)
from frontdoor.page import RankedWindow, SearchRequest
from shoprank.schema import Product


def query_intent(
    provider: IntentProvider | None, vector: npt.NDArray[np.float32] | None, request: SearchRequest
) -> tuple[IntentOutcome, Filters]:
    """The query's intent and the first-stage filters it sets (a confident category, never over the shopper's)."""
    options = request.intent
    if not options.enabled:
        return IntentOutcome(enabled=False), request.filters
    boost, threshold = float(options.boost or 0.0), float(1.0 if options.threshold is None else options.threshold)
    if provider is None or vector is None:
        return IntentOutcome(
            True, boost=boost, threshold=threshold, note="no intent model on this server"
        ), request.filters
    model, error = provider.current()
    if model is None:
        return IntentOutcome(True, boost=boost, threshold=threshold, note=error), request.filters
    distribution = model.predict(vector, top=SHOWN_CATEGORIES)
    filters, filtered = intent_filters(request.filters, distribution, threshold)
    note = "the shopper's category filter is kept: no intent filter" if request.filters.categories else None
    return (
        IntentOutcome(True, distribution, boost, threshold, filtered, note, model.index_version),
        filters,
    )


def shaped_facets(ranked: RankedWindow, filters: Filters) -> dict[str, list[dict[str, Any]]]:
    """The facets a page shows; with intent on, the category facet lists the query's likely categories first."""
    shaped = shape_facets(ranked.facets, filters, _served_products(ranked))
    if ranked.intent.categories is not None and "category" in shaped:
        shaped["category"] = intent_ordered_categories(shaped["category"], ranked.intent.categories)
    return shaped


def _served_products(ranked: RankedWindow) -> list[Product]:
    """The window's products in the order the shop shows them (facet ties follow it)."""
    by_id = {h.product.id: h.product for h in ranked.hits}
    return [by_id[r.id] for r in ranked.served if r.id in by_id]
