"""The rerank use case: score candidates, blend with the first stage, diversify, cut the page.

Knows nothing of gRPC: takes a validated `RerankQuery`, returns a `RerankOutcome`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from shoprank.arrays import FloatArray
from shoprank.normalise import min_max
from shoprank.template import ProductText, bi_encoder_text
from sidecar.blend import blend
from sidecar.diversify import diversify
from sidecar.domain import (
    Admission,
    Explanation,
    FeatureContribution,
    PairScores,
    RerankOutcome,
    RerankQuery,
    ScoredCandidate,
    Timings,
)
from sidecar.ltr_stage import LtrRanking, LtrStage
from sidecar.personalise import PersonalTerms, check_interaction_dims, personal_terms

log = logging.getLogger(__name__)


class PairScorer(Protocol):
    """Scores (query, product) pairs: the CrossEncoder alone, or behind the cache and batcher."""

    version: str

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores: ...


class TextEncoder(Protocol):
    dim: int

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


class RerankService:
    """Rescoring + blending + diversity for one request at a time (thread-safe if the scorer is)."""

    def __init__(self, scorer: PairScorer, embedder: TextEncoder | None = None, ltr: LtrStage | None = None) -> None:
        self.scorer = scorer
        self.embedder = embedder
        self.ltr = ltr  # the learning-to-rank stage in place of the blend (None: the blend ranks)

    @property
    def model_version(self) -> str:
        """Version of the model that scores."""
        return self.scorer.version

    def admit(self, pairs: int, deadline: float | None) -> Admission | None:
        """Admit a request of up to `pairs` pairs before it is validated, or raise OverloadedError.

        None when the scorer has no queue to guard (it scores each request on its own).
        """
        admit = getattr(self.scorer, "admit", None)
        if not callable(admit):
            return None
        admission: Admission = admit(pairs, deadline)
        return admission

    def close(self) -> None:
        """Release the scorer (its inference thread) once no request uses this service."""
        close = getattr(self.scorer, "close", None)
        if callable(close):
            close()

    def _embeddings(self, query: RerankQuery) -> FloatArray | None:
        """Candidate embeddings for MMR/DPP: as sent, with the missing ones computed by the bi-encoder.

        Rows that stay zero (no bi-encoder, or one of another dimension than the sent vectors)
        get attribute similarity inside diversify(), which says so in its notes.
        """
        given = [c.embedding if c.embedding is not None and c.embedding.size else None for c in query.candidates]
        sent_dims = {e.size for e in given if e is not None}  # wire_request.py allows one dimension per request
        dim = sent_dims.pop() if sent_dims else (self.embedder.dim if self.embedder is not None else 0)
        if dim == 0:
            return None
        out = np.zeros((len(given), dim), dtype=np.float32)
        missing = []
        for row, embedding in enumerate(given):
            if embedding is None:
                missing.append(row)
            else:
                out[row] = embedding
        if missing and self.embedder is not None and self.embedder.dim == dim:
            out[missing] = self.embedder.encode([bi_encoder_text(query.candidates[i].product) for i in missing])
        elif missing:
            log.debug("no bi-encoder of dimension %d: %d candidates diversify on attributes", dim, len(missing))
        return out

    def rerank(self, query: RerankQuery) -> RerankOutcome:
        """Score, blend, diversify and cut to top_k."""
        started = time.perf_counter()
        products: list[ProductText] = [c.product for c in query.candidates]
        first_stage = np.array([c.first_stage_score for c in query.candidates], dtype=np.float32)
        if self.ltr is not None and not self.ltr.reads_cross_encoder:
            # An LTR model without cross-encoder features: no pair is scored (the cheap setting).
            if query.admission is not None:
                query.admission.release()
            scored = PairScores(first_stage.copy())
        else:
            scored = self.scorer.score(
                query.query,
                products,
                query.deadline,
                [c.id for c in query.candidates],
                query.cancelled,
                query.admission,
            )
        relevance = scored.logits
        ltr: LtrRanking | None = self.ltr.rank(query, relevance) if self.ltr is not None else None
        blended = (
            ltr.scores.astype(np.float32) if ltr is not None else blend(relevance, first_stage, query.blend_weight)
        )
        vectors = functools.cache(lambda: self._embeddings(query))  # diversity and personalisation share them
        personal_started = time.perf_counter()
        personal = self._personal(query, vectors)
        personal_ms = (time.perf_counter() - personal_started) * 1e3 if personal.applied else 0.0
        ranked = blended + personal.terms if personal.applied else blended  # the score the page ranks by

        diversify_started = time.perf_counter()  # includes embedding candidates that came without one
        picked = diversify(
            ranked,
            query.top_k,
            query.diversity,
            embeddings=vectors() if query.diversity.needs_embeddings else None,
            brands=[c.product.brand for c in query.candidates],
            categories=[tuple(c.product.category) for c in query.candidates],
            query=query.query,
        )
        diversify_ms = (time.perf_counter() - diversify_started) * 1e3

        scored_rank = {int(i): rank for rank, i in enumerate(np.argsort(-ranked, kind="stable"))}
        first_norm = min_max(first_stage)
        contributions: dict[int, tuple[FeatureContribution, ...]] = {}
        if ltr is not None and query.explain and self.ltr is not None:
            contributions = self.ltr.contributions(ltr, [int(i) for i in picked.order])
        results = []
        for final_rank, (index, score, term, reason) in enumerate(
            zip(picked.order, picked.scores, picked.terms, picked.reasons, strict=True)
        ):
            candidate = query.candidates[index]
            explanation = None
            if query.explain:
                explanation = Explanation(
                    relevance=float(relevance[index]),
                    first_stage=float(first_norm[index]),
                    blended=float(blended[index]),
                    diversity_term=float(term),
                    first_stage_rank=index,
                    scored_rank=scored_rank[index],
                    final_rank=final_rank,
                    reason=reason,
                    contributions=contributions.get(int(index), ()),
                    personal_term=float(personal.terms[index]),
                )
            results.append(
                ScoredCandidate(
                    id=candidate.id,
                    score=float(score),
                    relevance_score=float(relevance[index]),
                    explanation=explanation,
                )
            )
        timings = Timings(
            tokenize_ms=scored.tokenize_ms,
            queue_ms=scored.queue_ms,
            inference_ms=scored.inference_ms,
            diversify_ms=diversify_ms,
            total_ms=(time.perf_counter() - started) * 1e3,
            usage=scored.usage,
            personal_ms=personal_ms,
        )
        return RerankOutcome(
            results=results,
            reranked=True,
            model_version=self.model_version,
            timings=timings,
            diversity_method=picked.method,
            diversity_notes=picked.notes,
            cache_hits=scored.cache_hits,
            ltr_version=ltr.version if ltr is not None else "",
            personalised=personal.applied,
            personal_interactions=personal.used if personal.applied else 0,
        )

    def _personal(self, query: RerankQuery, vectors: Callable[[], FloatArray | None]) -> PersonalTerms:
        """beta(n) * cos(user, candidate) per candidate (sidecar/personalise.py); zeros for a new shopper."""
        sent = [c.embedding for c in query.candidates if c.embedding is not None and c.embedding.size]
        check_interaction_dims(query.interactions, sent[0].size if sent else self.embedder.dim if self.embedder else 0)
        now_ms = query.now_ms or int(time.time() * 1000)
        return personal_terms(query.interactions, [c.id for c in query.candidates], vectors, query.personal, now_ms)
