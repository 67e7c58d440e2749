"""The HTTP API's response bodies, one pydantic model each: FastAPI checks every answer against
them and documents them in /openapi.json (checked in as docs/openapi.json, `shoprank openapi`).

A body key no model declares is refused (extra="forbid"), so a new field reaches the schema, the
checked-in document and the shop front-ends' contract together, or not at all.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engines.base import EngineFailure
from sidecar.domain import Explanation


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResultBody(_Body):
    """One product on the page, with where the first stage had it."""

    id: str
    score: float = Field(description="page score: blended, or the diversity objective when a method ran")
    first_stage_rank: int = Field(description="0-based position in the first-stage window")
    first_stage_score: float
    relevance_score: float | None = Field(description="cross-encoder score; the first-stage score when not reranked")
    title: str
    brand: str
    price: float | None
    image: str
    category: list[str] = Field(description="category path, root to leaf")
    color: str
    rating: float | None
    explanation: Explanation | None = Field(None, description="with explain=true only: why it sits here")


class FacetValueBody(_Body):
    """One value of a facet and how many products in scope carry it."""

    value: str
    count: int
    selected: bool = Field(description="the request filters on this value")
    price_min: float | None = Field(None, description="price buckets only: the filter this bucket sets")
    price_max: float | None = Field(None, description="price buckets only: the filter's upper bound (null: none)")


class IntentCategoryBody(_Body):
    category: str
    p: float = Field(description="P(category | query)")


class IntentAppliedBody(_Body):
    boost: float = Field(description="weight of P(category | query) added to the scaled first-stage score")
    filter_threshold: float
    filter: str | None = Field(description="the category the search was filtered to (null: none)")


class IntentBody(_Body):
    """What query intent did to this search."""

    enabled: bool
    model_index_version: str | None = Field(description="index version the intent model was built from")
    categories: list[IntentCategoryBody]
    applied: IntentAppliedBody
    note: str | None = Field(description="why intent did less than asked, when it did")


class SearchBody(_Body):
    """GET /api/search: one page of results and how it was made."""

    query_id: str = Field(description="UBI query id: events about this page name it")
    query: str = Field(description="the query as searched (normalised)")
    reranked: bool
    fail_open: bool = Field(description="a rerank was asked for and the page is in first-stage order instead")
    fail_open_reason: str | None = Field(description="the gRPC status and what it means, or why no rerank ran")
    model_version: str
    diversity_method: str = Field(description='the diversity actually applied, e.g. "dpp", "none", "mmr+caps"')
    diversity_notes: list[str]
    page: int
    page_size: int
    pages: int = Field(description="pages the ranked window holds")
    window: int = Field(description="results ranked for this query (every page is cut from them)")
    cached: bool = Field(description="the page was cut from a window ranked by an earlier request")
    results: list[ResultBody]
    facets: dict[str, list[FacetValueBody]] = Field(description="with facets=true: brand, category, color, price")
    intent: IntentBody
    timings: dict[str, float] = Field(description="milliseconds per stage of this request")
    window_timings: dict[str, float] = Field(description="milliseconds per stage when the window was ranked")
    personalised: bool = Field(description="the sidecar added the session's personal term (session_id with history)")
    personal_interactions: int = Field(description="how many of the session's interactions the user vector used")
    experiment: dict[str, str] | None = Field(None, description="an interleaving experiment's variant and teams")
    compare: dict[str, list[ResultBody]] | None = Field(
        None, description="with compare=true: the page as first_stage, reranked and diversified orders"
    )


class HealthBody(_Body):
    """GET /healthz."""

    status: str = Field(description='"ok" while the front door answers')


class EventRejectionBody(_Body):
    index: int = Field(description="position of the event in the array sent")
    error: str = Field(description="what was wrong with it and what to send")


class EventsBody(_Body):
    """POST /api/events: how many events were kept and which were refused."""

    accepted: int
    rejected: list[EventRejectionBody]


class ErrorBody(_Body):
    """Every error the API answers (400, 500, 503)."""

    error: str = Field(description="what was wrong and what to do (400); the class of engine failure (503)")
    reason: EngineFailure | None = Field(None, description="503 only: why the search engine could not answer")


class EventsErrorBody(ErrorBody):
    """An error of POST /api/events: with what was refused (400) or kept (503, queue full)."""

    rejected: list[EventRejectionBody] | None = Field(None, description="400: each bad event's index and reason")
    accepted: int | None = Field(None, description="503 when the queue is full: events kept before it filled")
