"""One shop search, end to end: embed the query, retrieve the rerank window, rerank it with a
deadline (fail-open to first-stage order), cut the page. Same code on every engine.

The whole window is ranked once per (query, filters, options) and kept in a WindowCache, so
page 2 never repeats or skips an item of page 1, and paging does not rerank again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from engines.base import FacetBucket, Filters, Hit, RetrievalMode, RetrievalQuery, SearchEngine
from frontdoor.defaults import ServedDefaults
from frontdoor.facets import shape_facets
from frontdoor.intent_policy import (
    SHOWN_CATEGORIES,
    IntentDefaults,
    IntentOptions,
    IntentOutcome,
    IntentProvider,
    boost_hits,
    intent_filters,
    intent_ordered_categories,
)
from frontdoor.interleave import Ranker, team_draft
from frontdoor.session_events import SessionReader
from frontdoor.ubi_events import new_query_id
from frontdoor.window_cache import WindowCache
from shoprank.errors import UserInputError
from shoprank.schema import Product
from shoprank.template import query_text
from sidecar.client import RankedId, RerankClient, RerankOptions, RerankReply, first_stage_reply
from sidecar.diversify import DiversityParamError, DiversityParams, Method
from sidecar.personalise import Interaction

log = logging.getLogger(__name__)

# A failed-open ranking is kept only long enough to page through it consistently, so a
# recovered sidecar reranks the next search of the same query soon.
FAIL_OPEN_TTL_S = 15.0


# What a shopper-facing response says about a failed-open rerank: the gRPC code and its meaning,
# never the sidecar's address or internals (those go to the front door's log).
FAIL_OPEN_REASONS = {
    "DEADLINE_EXCEEDED": "the reranker did not answer within its deadline",
    "UNAVAILABLE": "the reranker is unreachable or still loading",
    "RESOURCE_EXHAUSTED": "the reranker is overloaded",
    "CANCELLED": "the rerank call was cancelled",
}


def public_reason(error: str | None) -> str | None:
    """A fail-open reason fit for a public response."""
    if error is None:
        return None
    code = error.split(":", 1)[0].strip()
    if code in FAIL_OPEN_REASONS:
        return f"{code}: {FAIL_OPEN_REASONS[code]}"
    if code.isupper():
        return f"{code}: the reranker failed"
    return error


class QueryEncoder(Protocol):
    def encode_one(self, text: str) -> npt.NDArray[np.float32]: ...


class QueryCapture(Protocol):
    """Records a served page (UBI's ubi_queries) without waiting; returns the page's query id."""

    def record(self, request: SearchRequest, page: SearchPage, engine: str) -> str: ...


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
            **({"explanation": self.explanation} if self.explanation else {}),
        }


@dataclass(frozen=True)
class RankedWindow:
    """One query's rerank window ranked once: every page and every compare column is a slice of it."""

    hits: list[Hit]
    served: list[RankedId]  # the order the shop shows (reranked and diversified, or first stage)
    scored: list[RankedId]  # the reranked order before diversity (= served when unknown)
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


class SearchService:
    """The front door's search use case."""

    def __init__(
        self,
        engine: SearchEngine,
        encoder: QueryEncoder,
        client: RerankClient | None,
        window: int,
        cache: WindowCache[RankedWindow] | None = None,
        cache_ttl_s: float = 300.0,
        defaults: ServedDefaults | None = None,
        intent: IntentProvider | None = None,
        intent_defaults: IntentDefaults | None = None,
        capture: QueryCapture | None = None,
        interleave: tuple[Ranker, Ranker] | None = None,
        sessions: SessionReader | None = None,
    ) -> None:
        """defaults: what the sidecar applies to options a request leaves out (from the settings);
        its diversity method says whether the candidates' vectors must travel (MMR and DPP).
        intent: the query intent model of the live index (None: no intent on this server).
        sessions: reads a session's recent UBI events (None: searches are not personalised)."""
        self.engine = engine
        self.encoder = encoder
        self.client = client
        self.window = window
        self.cache: WindowCache[RankedWindow] = cache if cache is not None else WindowCache(0)
        self.cache_ttl_s = cache_ttl_s
        self.defaults = defaults or ServedDefaults(rerank_window=window, diversity=DiversityParams())
        self.intent = intent
        self.intent_defaults = intent_defaults or IntentDefaults()
        self.capture = capture
        self.interleave = interleave
        self.sessions = sessions

    def search(self, request: SearchRequest) -> SearchPage:
        """Run first stage → rerank (fail-open) → page, or cut the page from the cached ranked window;
        in an interleaving experiment page 1 is the two rankers' pages team-drafted. Gets a query id."""
        page = self._interleaved(request) if self.interleave and request.page == 1 else self._page(request)
        page.query_id = self.capture.record(request, page, self.engine.name) if self.capture else new_query_id()
        return page

    def _interleaved(self, request: SearchRequest) -> SearchPage:
        """Both rankers' page 1, merged by team draft (a fresh coin per search); the teams go on the record."""
        assert self.interleave is not None
        rankers = dict(zip("ab", self.interleave, strict=True))
        pages = {team: self._page(replace(request, mode=r.mode, rerank=r.rerank)) for team, r in rankers.items()}
        items = {team: {r.product.id: r for r in page.results} for team, page in pages.items()}
        drafted = team_draft(list(items["a"]), list(items["b"]), request.page_size, random.Random())
        page = pages["a"]
        page.results = [items[team][pid] for pid, team in drafted]
        page.experiment = {
            "experiment": "interleave",
            "variant": f"a={rankers['a'].name} b={rankers['b'].name}",
            "interleave_teams": "".join(team for _, team in drafted),
        }
        return page

    def _page(self, request: SearchRequest) -> SearchPage:
        started = time.perf_counter()
        start = (request.page - 1) * request.page_size
        if start >= self.window:
            raise PageOutOfRangeError(
                f"page {request.page} of {request.page_size} starts past the {self.window} results a search ranks; "
                f"ask for page 1 to {-(-self.window // request.page_size)}"
            )
        text = query_text(request.query)
        options = replace(request.options, explain=False)  # explanations are always fetched, shown on request
        request = replace(request, intent=self.intent_defaults.resolve(request.intent))
        history = self._history(request.session_id)
        # A new event changes the ranking: the window is cached per history, not per session.
        history_key = tuple((i.product_id, i.action, i.timestamp_ms) for i in history)
        key = (
            text,
            request.mode,
            request.filters,
            request.rerank,
            options,
            request.facets,
            request.intent,
            history_key,
        )
        ranked = self.cache.get(key)
        cached = ranked is not None
        if ranked is None:
            ranked = self._rank(text, request, history)
            reply = ranked.reply
            ttl = self.cache_ttl_s if reply.reranked or not request.rerank else min(FAIL_OPEN_TTL_S, self.cache_ttl_s)
            self.cache.put(key, ranked, ttl)
        if start and start >= len(ranked.served):
            last = max(1, -(-len(ranked.served) // request.page_size))
            raise PageOutOfRangeError(
                f"page {request.page} is past the last page ({last}) of the {len(ranked.served)} results "
                f"for this query; ask for page 1 to {last}"
            )
        end = start + request.page_size
        explain = request.options.explain
        timings = {"total_ms": 0.0} if cached else dict(ranked.timings)
        compare = None
        if request.compare:
            first_stage = [RankedId(h.product.id, h.score, h.score) for h in ranked.hits]
            compare = {
                "first_stage": self._items(ranked.hits, first_stage[start:end], explain),
                "reranked": self._items(ranked.hits, ranked.scored[start:end], explain),
                "diversified": self._items(ranked.hits, ranked.served[start:end], explain),
            }
        reply = ranked.reply
        page = SearchPage(
            query=text,
            results=self._items(ranked.hits, ranked.served[start:end], explain),
            reranked=reply.reranked,
            page=request.page,
            page_size=request.page_size,
            window=len(ranked.served),
            model_version=reply.model_version,
            diversity_method=reply.diversity_method,
            diversity_notes=reply.diversity_notes,
            fail_open=request.rerank and not reply.reranked and bool(ranked.hits),
            fail_open_reason=public_reason(reply.error),
            cached=cached,
            facets=_shaped_facets(ranked, request.filters) if request.facets else {},
            timings=timings,
            window_timings=dict(ranked.timings),
            compare=compare,
            intent=ranked.intent,
            personalised=reply.personalised,
            personal_interactions=reply.personal_interactions,
        )
        page.timings["total_ms"] = round((time.perf_counter() - started) * 1e3, 3)
        return page

    def _sidecar_reads_vectors(self, options: RerankOptions) -> bool:
        """The sidecar's own rule (DiversityParams.needs_embeddings) over the options this search sends."""
        try:
            params = self.defaults.diversity.overridden(
                method=cast(Method | None, options.diversity),
                strength=options.strength,
                attribute_weight=options.attribute_weight,
            )
        except DiversityParamError:
            return True  # the sidecar refuses these options; sending the vectors loses nothing
        return params.needs_embeddings

    def _rank(self, text: str, request: SearchRequest, history: Sequence[Interaction] = ()) -> RankedWindow:
        """First stage and one rerank of the whole window (personalised by the session's history)."""
        started = time.perf_counter()
        wants_intent = bool(request.intent.enabled) and self.intent is not None
        needs_vector = request.mode in ("knn", "hybrid") or wants_intent
        vector = self.encoder.encode_one(text) if needs_vector else None
        embedded = time.perf_counter()
        outcome, filters = self._intent(vector, request)
        intent_done = time.perf_counter()
        # Send the stored vectors when the sidecar will diversify on embeddings (else it embeds them itself).
        needs_vectors = self._sidecar_reads_vectors(request.options) or bool(history)
        retrieved = self.engine.retrieve(
            RetrievalQuery(
                text=text,
                vector=vector if request.mode != "bm25" else None,
                mode=request.mode,
                size=self.window,
                filters=filters,
                with_vectors=needs_vectors,
                with_facets=request.facets,
            )
        )
        first_stage_done = time.perf_counter()
        hits = retrieved.hits
        if outcome.categories is not None and outcome.boost > 0:
            hits = boost_hits(hits, outcome.categories, outcome.boost, self.intent.depth if self.intent else "leaf")
        candidates = [_Candidate(h.product.id, h.score, h.product, h.vector) for h in hits]
        # Rank the whole window (not just up to this page): later pages are slices of this one order.
        reply = self._rerank(text, candidates, request, self._with_vectors(history, hits))
        reranked_done = time.perf_counter()
        timings = {
            "embed_ms": (embedded - started) * 1e3,
            "intent_ms": (intent_done - embedded) * 1e3,
            "first_stage_ms": (first_stage_done - intent_done) * 1e3,
            "rerank_ms": (reranked_done - first_stage_done) * 1e3,
            **{f"sidecar_{k}": v for k, v in reply.timings.items()},
            "total_ms": (time.perf_counter() - started) * 1e3,
        }
        return RankedWindow(
            hits=[_slim(h) for h in hits],
            served=reply.results,
            scored=_scored_order(reply),
            reply=reply,
            facets=retrieved.facets,
            timings={k: round(v, 3) for k, v in timings.items()},
            intent=outcome,
        )

    def _intent(self, vector: npt.NDArray[np.float32] | None, request: SearchRequest) -> tuple[IntentOutcome, Filters]:
        """The query's intent and the first-stage filters it sets (a confident category, never over the shopper's)."""
        options = request.intent
        if not options.enabled:
            return IntentOutcome(enabled=False), request.filters
        boost, threshold = float(options.boost or 0.0), float(1.0 if options.threshold is None else options.threshold)
        if self.intent is None or vector is None:
            return IntentOutcome(
                True, boost=boost, threshold=threshold, note="no intent model on this server"
            ), request.filters
        model, error = self.intent.current()
        if model is None:
            return IntentOutcome(True, boost=boost, threshold=threshold, note=error), request.filters
        distribution = model.predict(vector, top=SHOWN_CATEGORIES)
        filters, filtered = intent_filters(request.filters, distribution, threshold)
        note = "the shopper's category filter is kept: no intent filter" if request.filters.categories else None
        return (
            IntentOutcome(True, distribution, boost, threshold, filtered, note, model.index_version),
            filters,
        )

    def _history(self, session_id: str) -> list[Interaction]:
        """The session's recent interactions; none (an anonymous ranking) when they cannot be read: a search
        never fails for its personalisation."""
        if self.sessions is None or not session_id:
            return []
        try:
            return self.sessions.recent(session_id)
        except Exception:
            log.warning("reading session %s's events failed: not personalised", session_id, exc_info=True)
            return []

    def _with_vectors(self, history: Sequence[Interaction], hits: Sequence[Hit]) -> list[Interaction]:
        """The history with each product's stored vector; the window's products the sidecar finds by id, the
        others come from the engine (one lookup), and those it no longer holds are left out."""
        if not history:
            return []
        in_window = {h.product.id for h in hits}
        outside = sorted({i.product_id for i in history} - in_window)
        lookup = getattr(self.engine, "vectors", None)
        vectors: dict[str, npt.NDArray[np.float32]] = {}
        if outside and callable(lookup):
            try:
                vectors = lookup(outside)
            except Exception:  # the window's own products still personalise
                log.warning("looking up %d interaction vectors failed", len(outside), exc_info=True)
        return [
            replace(i, embedding=vectors[i.product_id]) if i.product_id in vectors else i
            for i in history
            if i.product_id in in_window or i.product_id in vectors
        ]

    def _rerank(
        self, text: str, candidates: Sequence[_Candidate], request: SearchRequest, history: Sequence[Interaction] = ()
    ) -> RerankReply:
        top_k = len(candidates)
        if not candidates:
            return RerankReply(results=[], reranked=False)
        if not request.rerank:
            return first_stage_reply(candidates, top_k, "reranking switched off for this request")
        if self.client is None:
            return first_stage_reply(candidates, top_k, "no sidecar configured")
        # Explanations carry each result's rank before diversity: the "reranked" compare column.
        options = replace(request.options, explain=True)
        try:
            return self.client.rerank(text, candidates, top_k, options, interactions=history)
        except Exception:  # the client fails open on RPC errors; anything else must not 5xx a search either
            log.exception("rerank client failed: serving first-stage order")
            return first_stage_reply(candidates, top_k, "rerank client error (see the front door log)")

    @staticmethod
    def _items(hits: Sequence[Hit], ranked: Sequence[RankedId], explain: bool) -> list[ResultItem]:
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
                    explanation=r.explanation if explain else None,
                )
            )
        return items


def _shaped_facets(ranked: RankedWindow, filters: Filters) -> dict[str, list[dict[str, Any]]]:
    """The facets a page shows; with intent on, the category facet lists the query's likely categories first."""
    shaped = shape_facets(ranked.facets, filters, _served_products(ranked))
    if ranked.intent.categories is not None and "category" in shaped:
        shaped["category"] = intent_ordered_categories(shaped["category"], ranked.intent.categories)
    return shaped


def _served_products(ranked: RankedWindow) -> list[Product]:
    """The window's products in the order the shop shows them (facet ties follow it)."""
    by_id = {h.product.id: h.product for h in ranked.hits}
    return [by_id[r.id] for r in ranked.served if r.id in by_id]


def _slim(hit: Hit) -> Hit:
    """A hit as a cached window keeps it: no vector and no long text, which no page shows (100 ESCI
    hits with vectors pickle to ~300 KB, slim to ~40 KB)."""
    product = hit.product.model_copy(update={"description": "", "bullet_points": ""})
    return Hit(product=product, score=hit.score)


def _scored_order(reply: RerankReply) -> list[RankedId]:
    """The reranked order before diversity, from the explanations' scored ranks."""
    ranks = [r.explanation.get("scored_rank") if r.explanation else None for r in reply.results]
    if not reply.reranked or any(rank is None for rank in ranks):
        return list(reply.results)
    by_rank = sorted(zip(ranks, range(len(ranks)), strict=True), key=lambda pair: (int(pair[0] or 0), pair[1]))
    return [
        RankedId(
            r.id,
            float(r.explanation["blended"]) if r.explanation else r.score,
            r.relevance_score,
            r.explanation,
        )
        for r in (reply.results[i] for _, i in by_rank)
    ]
