"""The search API's query parameters: names, bounds, and how they become a SearchRequest.

One pydantic model declares every parameter the API takes; anything else in the query
string is refused (a misspelled filter silently ignored would show unfiltered results).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from engines.base import Filters, RetrievalMode
from frontdoor.intent_policy import IntentOptions
from frontdoor.search import SearchRequest
from sidecar.client import RerankOptions
from sidecar.diversify import FACETS, Facet, Method

MAX_QUERY_CHARS = 512
MAX_PAGE_SIZE = 100
MAX_FILTER_VALUES = 20
MAX_FILTER_VALUE_CHARS = 200
MAX_PER_ATTRIBUTE_CAP = 100
MAX_DIVERSITY_WINDOW = 1000
MAX_INTENT_BOOST = 10.0
MAX_PERSONAL_WEIGHT = 10.0

FilterValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_FILTER_VALUE_CHARS)]
FilterValues = Annotated[list[FilterValue], Field(max_length=MAX_FILTER_VALUES)]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]
UnitInterval = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]

# What to do about a bad value, per parameter (the validator's own message says what was wrong).
HINTS: dict[str, str] = {
    "q": f"send the shopper's words, 1 to {MAX_QUERY_CHARS} characters",
    "page": "pages start at 1",
    "page_size": f"ask for at most {MAX_PAGE_SIZE} results per page and use `page` for more",
    "brand": f"repeat the parameter once per value, at most {MAX_FILTER_VALUES} values",
    "category": f"repeat the parameter once per value, at most {MAX_FILTER_VALUES} values",
    "color": f"repeat the parameter once per value, at most {MAX_FILTER_VALUES} values",
    "price_min": "prices are non-negative USD amounts",
    "price_max": "prices are non-negative USD amounts",
    "mode": "first stage: bm25, knn or hybrid",
    "diversity": "diversity method: none, mmr, xquad or dpp",
    "diversity_facets": "xQuAD aspects: repeat the parameter for category and/or brand",
    "client_id": "a pseudonymous id of at most 100 characters, e.g. a random UUID kept in the browser",
    "personal_weight": f"a weight from 0 (not personalised) to {MAX_PERSONAL_WEIGHT:g}",
    "session_id": "the UBI session id the shopper's events were posted with (at most 100 characters, no e-mail)",
    "attribute_weight": "a share from 0 (embedding cosine only) to 1 (same brand / category only)",
    "intent_boost": f"a weight from 0 (no boost) to {MAX_INTENT_BOOST:g} added per unit of P(category | query)",
    "intent_threshold": "a probability from 0 to 1 (1: never hard-filter)",
}


class SearchParams(BaseModel):
    """Query parameters of GET /api/search."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="what the shopper typed")]
    page: Annotated[int, Field(ge=1, description="1-based page number")] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE, description="results per page")] = 10
    brand: FilterValues = Field(default_factory=list, description="only these brands (repeatable)")
    category: FilterValues = Field(default_factory=list, description="only products in these categories, any level")
    color: FilterValues = Field(default_factory=list, description="only these colors (repeatable)")
    price_min: Price | None = Field(None, description="lowest price, USD, inclusive")
    price_max: Price | None = Field(None, description="highest price, USD, inclusive")
    mode: RetrievalMode = Field("hybrid", description="first stage: bm25, knn or hybrid")
    rerank: bool = Field(True, description="rerank with the sidecar (false: first-stage order)")
    blend_weight: UnitInterval | None = Field(None, description="weight of the first-stage score in the blend")
    diversity: Method | None = Field(None, description="diversity method (default: the sidecar's)")
    strength: UnitInterval | None = Field(None, description="diversity strength, 0 = relevance only")
    max_per_brand: Annotated[int, Field(ge=1, le=MAX_PER_ATTRIBUTE_CAP)] | None = Field(
        None, description="at most this many results per brand on a page"
    )
    max_per_category: Annotated[int, Field(ge=1, le=MAX_PER_ATTRIBUTE_CAP)] | None = Field(
        None, description="at most this many results per category on a page"
    )
    diversity_window: Annotated[int, Field(ge=1, le=MAX_DIVERSITY_WINDOW)] | None = Field(
        None, description="sliding window of the DPP diversifier"
    )
    diversity_facets: Annotated[list[Facet], Field(max_length=len(FACETS))] = Field(
        default_factory=list, description="xQuAD aspects, category and/or brand (repeatable; default: the sidecar's)"
    )
    attribute_weight: UnitInterval | None = Field(
        None,
        description="MMR/DPP: share of same-brand/category similarity vs embedding cosine (default: the sidecar's)",
    )
    explain: bool = Field(False, description="include why each result is where it is")
    compare: bool = Field(False, description="also return the first-stage and reranked orders of this page")
    intent: bool | None = Field(
        None, description="predict the query's categories and apply them (default: the server's)"
    )
    intent_boost: Annotated[float, Field(ge=0, le=MAX_INTENT_BOOST, allow_inf_nan=False)] | None = Field(
        None, description="weight of P(category | query) added to the scaled first-stage score (default: the server's)"
    )
    intent_threshold: UnitInterval | None = Field(
        None, description="hard-filter to the top category at this probability, 1 = never (default: the server's)"
    )
    client_id: Annotated[str, Field(max_length=100, pattern=r"^[^@]*$")] = Field(
        "", description="UBI: the shopper's pseudonymous browser or app id (recorded with the query; no e-mail)"
    )

    personal_weight: Annotated[float, Field(ge=0, le=MAX_PERSONAL_WEIGHT, allow_inf_nan=False)] | None = Field(
        None, description="cap of the session's personal term beta(n), 0 = not personalised (default: the sidecar's)"
    )
    session_id: Annotated[str, Field(max_length=100, pattern=r"^[^@]*$")] = Field(
        "", description="UBI: the shopper's session; its recent events (POST /api/events) personalise the ranking"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SearchParams:
        if not self.q.strip():
            raise ValueError("q must contain words, not only spaces")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError(
                f"price_min ({self.price_min:g}) is above price_max ({self.price_max:g}); swap them or drop one"
            )
        return self

    def to_request(self) -> SearchRequest:
        """The search use case's request (filter values deduplicated and sorted, so equal filters cache alike)."""
        return SearchRequest(
            query=self.q,
            page=self.page,
            page_size=self.page_size,
            filters=Filters(
                brands=tuple(sorted(set(self.brand))),
                categories=tuple(sorted(set(self.category))),
                colors=tuple(sorted(set(self.color))),
                price_min=self.price_min,
                price_max=self.price_max,
            ),
            mode=self.mode,
            rerank=self.rerank,
            options=RerankOptions(
                blend_weight=self.blend_weight,
                diversity=self.diversity,
                strength=self.strength,
                max_per_brand=self.max_per_brand,
                max_per_category=self.max_per_category,
                window=self.diversity_window,
                facets=tuple(f for f in FACETS if f in self.diversity_facets),
                attribute_weight=self.attribute_weight,
                # Pages are cut from one ranked window: caps must hold on each page, not on the window.
                page_size=self.page_size if self.max_per_brand or self.max_per_category else None,
                explain=self.explain,
                personal_weight=self.personal_weight,
            ),
            facets=True,
            compare=self.compare,
            intent=IntentOptions(self.intent, self.intent_boost, self.intent_threshold),
            client_id=self.client_id,
            session_id=self.session_id,
        )


LIST_PARAMS = frozenset({"brand", "category", "color", "diversity_facets"})
SINGLE_VALUED = frozenset(SearchParams.model_fields) - LIST_PARAMS
