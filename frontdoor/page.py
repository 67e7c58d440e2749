"""A search's request and its page: what the shop asks and what the front door answers (the
HTTP bodies in frontdoor/api_models.py are these pages' `as_dict`), and how a failed-open rerank
is reported to shoppers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import grpc

from engines.base import FacetBucket, Filters, Hit, RetrievalMode
from frontdoor.intent_policy import IntentOptions, IntentOutcome
from shoprank.errors import UserInputError
from shoprank.schema import Product
from sidecar.client import RerankFailure, RerankOptions, RerankReply
from sidecar.domain import Explanation, ScoredCandidate

# What a shopper-facing response says about a failed-open rerank: the gRPC code and its meaning,
# never the sidecar's address or internals (those go to the front door's log).
FAIL_OPEN_REASONS = {
    grpc.StatusCode.DEADLINE_EXCEEDED: "the reranker did not answer within its deadline",
    grpc.StatusCode.UNAVAILABLE: "the reranker is unreachable or still loading",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "the reranker is overloaded",
    grpc.StatusCode.CANCELLED: "the rerank call was cancelled",
}


def public_reason(failure: RerankFailure | None) -> str | None:
    """A fail-open reason fit for a public response: the status and what it means, or the caller's own reason."""
    if failure is None:
        return None
    if failure.code is None:
        return failure.detail
    return f"{failure.code.name}: {FAIL_OPEN_REASONS.get(failure.code, 'the reranker failed')}"


class PageOutOfRangeError(UserInputError):
    """The page asked for lies beyond the ranked window; the message says which pages exist."""


@dataclass(frozen=True)
class SearchRequest:
    """What the shop search box (or the CLI) asks."""

    query: str
    page: int = 1
    page_size: int = 10
    filters: Filters = field(default_factory=Filters)
    mode: RetrievalMode = "hybrid"
    rerank: bool = True
    options: RerankOptions = field(default_factory=RerankOptions)
    facets: bool = False
    compare: bool = False
    intent: IntentOptions = field(default_factory=IntentOptions)
    client_id: str = ""  # UBI: the shopper's pseudonymous browser/app id, written on the query record
    session_id: str = ""  # UBI: the shopper's session; its recent events personalise the ranking


@dataclass
class ResultItem:
    product: Product
    score: float
    first_stage_rank: int
    first_stage_score: float
    relevance_score: float | None = None
    explanation: Explanation | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form of one result."""
        p = self.product
        return {
            "id": p.id,
            "score": self.score,
            "first_stage_rank": self.first_stage_rank,
            "first_stage_score": self.first_stage_score,
            "relevance_score": self.relevance_score,
            "title": p.title,
            "brand": p.brand,
            "price": p.price,
            "image": p.image,
            "category": list(p.category),
            "color": p.color,
            "rating": p.rating,
            **({"explanation": asdict(self.explanation)} if self.explanation else {}),
        }


@dataclass(frozen=True)
class RankedWindow:
    """One query's rerank window ranked once: every page and every compare column is a slice of it."""

    hits: list[Hit]
    served: list[ScoredCandidate]  # the order the shop shows (reranked and diversified, or first stage)
    scored: list[ScoredCandidate]  # the reranked order before diversity (= served when unknown)
    reply: RerankReply
    facets: dict[str, list[FacetBucket]]
    timings: dict[str, float]  # per stage when the window was ranked (a cached page reports these too)
    intent: IntentOutcome = field(default_factory=lambda: IntentOutcome(enabled=False))


@dataclass
class SearchPage:
    """A page of results and how it was made."""

    query: str
    results: list[ResultItem]
    reranked: bool
    page: int
    page_size: int
    window: int
    model_version: str = ""
    diversity_method: str = "none"
    diversity_notes: tuple[str, ...] = ()
    fail_open: bool = False
    fail_open_reason: str | None = None
    cached: bool = False
    facets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    window_timings: dict[str, float] = field(default_factory=dict)
    compare: dict[str, list[ResultItem]] | None = None
    intent: IntentOutcome = field(default_factory=lambda: IntentOutcome(enabled=False))
    query_id: str = ""  # UBI: events about this page name it
    experiment: dict[str, str] = field(default_factory=dict)  # UBI query_attributes of an online experiment
    personalised: bool = False  # the sidecar added the session's personal term
    personal_interactions: int = 0  # the session's interactions it was built from

    @property
    def pages(self) -> int:
        """How many pages the ranked window holds."""
        return -(-self.window // self.page_size)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the HTTP API and `shoprank search --json`)."""
        return {
            "query_id": self.query_id,
            "query": self.query,
            "reranked": self.reranked,
            "fail_open": self.fail_open,
            "fail_open_reason": self.fail_open_reason,
            "model_version": self.model_version,
            "diversity_method": self.diversity_method,
            "diversity_notes": list(self.diversity_notes),
            "page": self.page,
            "page_size": self.page_size,
            "pages": self.pages,
            "window": self.window,
            "cached": self.cached,
            "results": [r.as_dict() for r in self.results],
            "facets": self.facets,
            "intent": self.intent.as_dict(),
            "timings": self.timings,
            "window_timings": self.window_timings,
            "personalised": self.personalised,
            "personal_interactions": self.personal_interactions,
            **({"experiment": self.experiment} if self.experiment else {}),
            **(
                {"compare": {name: [r.as_dict() for r in items] for name, items in self.compare.items()}}
                if self.compare is not None
                else {}
            ),
        }
