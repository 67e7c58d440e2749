"""One shop search, end to end: embed the query, retrieve the rerank window, rerank with a
deadline (fail-open to first-stage order), cut the page. Same code on every engine."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from engines.base import Filters, Hit, RetrievalMode, RetrievalQuery, SearchEngine
from shoprank.schema import Product
from shoprank.template import query_text
from sidecar.client import RankedId, RerankClient, RerankOptions, RerankReply, first_stage_reply

EMBEDDING_METHODS = ("mmr", "dpp")


class QueryEncoder(Protocol):
    def encode_one(self, text: str) -> npt.NDArray[np.float32]: ...


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


@dataclass(frozen=True)
class _Candidate:
    """A hit as the rerank client reads it."""

    id: str
    first_stage_score: float
    product: Product
    embedding: npt.NDArray[np.float32] | None


@dataclass
class ResultItem:
    product: Product
    score: float
    first_stage_rank: int
    first_stage_score: float
    relevance_score: float | None = None
    explanation: dict[str, Any] | None = None


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
    fail_open_reason: str | None = None
    facets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the HTTP API and `shoprank search --json`)."""
        return {
            "query": self.query,
            "reranked": self.reranked,
            "fail_open_reason": self.fail_open_reason,
            "model_version": self.model_version,
            "diversity_method": self.diversity_method,
            "page": self.page,
            "page_size": self.page_size,
            "window": self.window,
            "results": [
                {
                    "id": r.product.id,
                    "score": r.score,
                    "first_stage_rank": r.first_stage_rank,
                    "first_stage_score": r.first_stage_score,
                    "relevance_score": r.relevance_score,
                    "title": r.product.title,
                    "brand": r.product.brand,
                    "price": r.product.price,
                    "image": r.product.image,
                    "category": list(r.product.category),
                    "color": r.product.color,
                    "rating": r.product.rating,
                    **({"explanation": r.explanation} if r.explanation else {}),
                }
                for r in self.results
            ],
            "facets": self.facets,
            "timings": self.timings,
        }


class SearchService:
    """The front door's search use case."""

    def __init__(self, engine: SearchEngine, encoder: QueryEncoder, client: RerankClient | None, window: int) -> None:
        self.engine = engine
        self.encoder = encoder
        self.client = client
        self.window = window

    def search(self, request: SearchRequest) -> SearchPage:
        """Run first stage → rerank (fail-open) → page."""
        started = time.perf_counter()
        text = query_text(request.query)
        vector = self.encoder.encode_one(text) if request.mode in ("knn", "hybrid") else None
        embedded = time.perf_counter()
        needs_vectors = (request.options.diversity or "") in EMBEDDING_METHODS
        retrieved = self.engine.retrieve(
            RetrievalQuery(
                text=text,
                vector=vector,
                mode=request.mode,
                size=self.window,
                filters=request.filters,
                with_vectors=needs_vectors,
                with_facets=request.facets,
            )
        )
        first_stage_done = time.perf_counter()
        hits = retrieved.hits
        candidates = [_Candidate(h.product.id, h.score, h.product, h.vector) for h in hits]
        # Rerank the whole window up to the end of this page, so every page comes from one ordering.
        top_k = min(len(hits), request.page * request.page_size)
        reply = self._rerank(text, candidates, top_k, request)
        reranked_done = time.perf_counter()

        start = (request.page - 1) * request.page_size
        page = self._items(hits, reply.results[start : start + request.page_size])
        timings = {
            "embed_ms": (embedded - started) * 1e3,
            "first_stage_ms": (first_stage_done - embedded) * 1e3,
            "rerank_ms": (reranked_done - first_stage_done) * 1e3,
            **{f"sidecar_{k}": v for k, v in reply.timings.items()},
            "total_ms": (time.perf_counter() - started) * 1e3,
        }
        facets = {
            name: [{"value": b.value, "count": b.count} for b in buckets] for name, buckets in retrieved.facets.items()
        }
        return SearchPage(
            query=text,
            results=page,
            reranked=reply.reranked,
            page=request.page,
            page_size=request.page_size,
            window=len(hits),
            model_version=reply.model_version,
            diversity_method=reply.diversity_method,
            fail_open_reason=reply.error,
            facets=facets,
            timings={k: round(v, 3) for k, v in timings.items()},
        )

    def _rerank(self, text: str, candidates: Sequence[_Candidate], top_k: int, request: SearchRequest) -> RerankReply:
        if not request.rerank:
            return first_stage_reply(candidates, top_k, "reranking switched off for this request")
        if self.client is None:
            return first_stage_reply(candidates, top_k, "no sidecar configured")
        return self.client.rerank(text, candidates, top_k, request.options)

    @staticmethod
    def _items(hits: Sequence[Hit], ranked: Sequence[RankedId]) -> list[ResultItem]:
        position = {h.product.id: (rank, h) for rank, h in enumerate(hits)}
        items = []
        for r in ranked:
            if r.id not in position:
                continue  # a sidecar never invents ids; skip rather than trust one
            rank, hit = position[r.id]
            items.append(
                ResultItem(
                    product=hit.product,
                    score=r.score,
                    first_stage_rank=rank,
                    first_stage_score=hit.score,
                    relevance_score=r.relevance_score,
                    explanation=r.explanation,
                )
            )
        return items
