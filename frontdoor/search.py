"""One shop search, end to end: embed the query, retrieve the rerank window, rerank it with a
deadline (fail-open to first-stage order), cut the page. Same code on every engine.

The whole window is ranked once per (query, filters, options) and kept in a WindowCache, so
page 2 never repeats or skips an item of page 1, and paging does not rerank again. The request
and page types are in frontdoor/page.py; the intent, UBI capture and interleaving hooks in
frontdoor/search_intent.py, search_capture.py and search_interleave.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

from engines.base import Hit, RetrievalQuery, SearchEngine
from frontdoor.defaults import ServedDefaults
from frontdoor.intent_policy import IntentDefaults, IntentProvider, boost_hits
from frontdoor.interleave import Ranker
from frontdoor.page import FAIL_OPEN_REASONS as FAIL_OPEN_REASONS
from frontdoor.page import PageOutOfRangeError as PageOutOfRangeError
from frontdoor.page import RankedWindow as RankedWindow
from frontdoor.page import ResultItem as ResultItem
from frontdoor.page import SearchPage as SearchPage
from frontdoor.page import SearchRequest as SearchRequest
from frontdoor.page import public_reason as public_reason
from frontdoor.search_capture import QueryCapture as QueryCapture
from frontdoor.search_capture import query_id
from frontdoor.search_intent import query_intent, shaped_facets
from frontdoor.search_interleave import interleaved_page
from frontdoor.search_personal import history_key, session_history, with_vectors
from frontdoor.session_events import SessionReader
from frontdoor.window_cache import WindowCache
from shoprank.schema import Product
from shoprank.template import query_text
from sidecar.client import RerankClient, RerankFailure, RerankOptions, RerankReply, first_stage_reply
from sidecar.diversify import DiversityParamError, DiversityParams, Method
from sidecar.domain import ScoredCandidate
from sidecar.personalise import Interaction

log = logging.getLogger(__name__)

# A failed-open ranking is kept only long enough to page through it consistently, so a
# recovered sidecar reranks the next search of the same query soon.
FAIL_OPEN_TTL_S = 15.0


class QueryEncoder(Protocol):
    def encode_one(self, text: str) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class _Candidate:
    """A hit as the rerank client reads it."""

    id: str
    first_stage_score: float
    product: Product
    embedding: npt.NDArray[np.float32] | None


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
        if self.interleave and request.page == 1:
            page = interleaved_page(request, self.interleave, self._page)
        else:
            page = self._page(request)
        page.query_id = query_id(self.capture, request, page, self.engine.name)
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
        history = session_history(self.sessions, request.session_id)
        # A new event changes the ranking: the window is cached per history, not per session.
        key = (
            text,
            request.mode,
            request.filters,
            request.rerank,
            options,
            request.facets,
            request.intent,
            history_key(history),
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
            first_stage = [ScoredCandidate(h.product.id, h.score, h.score) for h in ranked.hits]
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
            fail_open_reason=public_reason(reply.failure),
            cached=cached,
            facets=shaped_facets(ranked, request.filters) if request.facets else {},
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
        """First stage and one rerank of the whole window."""
        started = time.perf_counter()
        wants_intent = bool(request.intent.enabled) and self.intent is not None
        needs_vector = request.mode in ("knn", "hybrid") or wants_intent
        vector = self.encoder.encode_one(text) if needs_vector else None
        embedded = time.perf_counter()
        outcome, filters = query_intent(self.intent, vector, request)
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
        reply = self._rerank(text, candidates, request, with_vectors(self.engine, history, hits))
        reranked_done = time.perf_counter()
        timings = {
            "embed_ms": (embedded - started) * 1e3,
            "intent_ms": (intent_done - embedded) * 1e3,
            "first_stage_ms": (first_stage_done - intent_done) * 1e3,
            "rerank_ms": (reranked_done - first_stage_done) * 1e3,
            **{f"sidecar_{k}": v for k, v in reply.timings.stage_ms().items()},
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

    def _rerank(
        self, text: str, candidates: Sequence[_Candidate], request: SearchRequest, history: Sequence[Interaction] = ()
    ) -> RerankReply:
        top_k = len(candidates)
        if not candidates:
            return RerankReply(results=[], reranked=False)
        if not request.rerank:
            return first_stage_reply(candidates, top_k, RerankFailure(None, "reranking switched off for this request"))
        if self.client is None:
            return first_stage_reply(candidates, top_k, RerankFailure(None, "no sidecar configured"))
        # Explanations carry each result's rank before diversity: the "reranked" compare column.
        options = replace(request.options, explain=True)
        try:
            return self.client.rerank(text, candidates, top_k, options, interactions=history)
        except Exception:  # the client fails open on RPC errors; anything else must not 5xx a search either
            log.exception("rerank client failed: serving first-stage order")
            failure = RerankFailure(None, "rerank client error (see the front door log)")
            return first_stage_reply(candidates, top_k, failure)

    @staticmethod
    def _items(hits: Sequence[Hit], ranked: Sequence[ScoredCandidate], explain: bool) -> list[ResultItem]:
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


def _slim(hit: Hit) -> Hit:
    """A hit as a cached window keeps it: no vector and no long text, which no page shows (a
    fraction of the size: docs/benchmarks.md, "Measurements behind constants")."""
    product = hit.product.model_copy(update={"description": "", "bullet_points": ""})
    return Hit(product=product, score=hit.score)


def _scored_order(reply: RerankReply) -> list[ScoredCandidate]:
    """The reranked order before diversity, from the explanations' scored ranks."""
    ranks = [r.explanation.scored_rank if r.explanation else None for r in reply.results]
    if not reply.reranked or any(rank is None for rank in ranks):
        return list(reply.results)
    by_rank = sorted(zip(ranks, range(len(ranks)), strict=True), key=lambda pair: (int(pair[0] or 0), pair[1]))
    return [
        ScoredCandidate(r.id, r.explanation.blended if r.explanation else r.score, r.relevance_score, r.explanation)
        for r in (reply.results[i] for _, i in by_rank)
    ]
