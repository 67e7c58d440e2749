"""Running every search stage over judged queries, through the code that ships.

First stages go through the engine (`SearchEngine.retrieve`: BM25, kNN, hybrid) with the
query embedded by the production `BiEncoder`; rerank stages go through the sidecar's
`RerankService` (the `CrossEncoder` on onnxruntime, blend, diversify) exactly as a Rerank
call would. Two modes:

- `judged`: each query's judged products are the candidate list (ESCI task 1). First stages
  order them by their rank in a deep retrieval (`depth` hits; products the engine does not
  return follow, by id). Rerank stages rescore the list in hybrid order.
- `end_to_end`: the engine retrieves the rerank window from the whole catalogue; rerank
  stages rescore the hybrid window (the front door's default); unjudged products gain 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from engines.base import RETRIEVAL_MODES, Hit, RetrievalMode, RetrievalQuery, SearchEngine
from relevance.judgments import Judgments
from shoprank.schema import Product
from shoprank.template import query_text
from sidecar.diversify import DiversityParams
from sidecar.domain import Candidate, CandidateProduct, RerankQuery
from sidecar.rerank_service import RerankService

log = logging.getLogger(__name__)

Mode = Literal["judged", "end_to_end"]
MODES: tuple[Mode, ...] = ("judged", "end_to_end")
FIRST_STAGES: tuple[RetrievalMode, ...] = RETRIEVAL_MODES
# The front door reranks the hybrid window; judged mode feeds rerankers in the same order.
RERANK_INPUT: RetrievalMode = "hybrid"
NO_DIVERSITY = DiversityParams(method="none")


class QueryEncoder(Protocol):
    """What the stages need of the bi-encoder (shoprank.bi_encoder.BiEncoder)."""

    def encode_one(self, text: str) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class Reranker:
    """A rerank stage: a RerankService and the diversity it applies."""

    service: RerankService
    diversity: DiversityParams = NO_DIVERSITY
    blend_weight: float = 0.0


@dataclass
class StageRun:
    """Rankings per query for one stage in one mode, with the wall time it took."""

    rankings: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    model_version: str = ""


def candidate_product(product: Product) -> CandidateProduct:
    """The fields of a product a Rerank request carries (what the front door sends)."""
    return CandidateProduct(
        title=product.title,
        brand=product.brand,
        category=tuple(product.category),
        color=product.color,
        bullet_points=product.bullet_points,
        description=product.description,
        price=product.price,
        rating=product.rating,
        rating_count=product.rating_count,
    )


def _rerank(reranker: Reranker, text: str, candidates: Sequence[Candidate]) -> list[str]:
    if not candidates:
        return []
    outcome = reranker.service.rerank(
        RerankQuery(
            query=text,
            candidates=candidates,
            top_k=len(candidates),
            blend_weight=reranker.blend_weight,
            diversity=reranker.diversity,
        )
    )
    return [r.id for r in outcome.results]


class StageRunner:
    """Runs first stages and rerank stages for a set of judged queries."""

    def __init__(
        self,
        engine: SearchEngine,
        encoder: QueryEncoder,
        rerankers: Mapping[str, Reranker],
        window: int = 100,
        depth: int = 1000,
    ) -> None:
        self.engine = engine
        self.encoder = encoder
        self.rerankers = dict(rerankers)
        self.window = window
        self.depth = depth

    def stage_names(self) -> list[str]:
        """Stages in report order: first stages, then rerankers in the order given."""
        return [*FIRST_STAGES, *self.rerankers]

    def _retrieve(self, text: str, vector: npt.NDArray[np.float32], mode: RetrievalMode, size: int) -> list[Hit]:
        query = RetrievalQuery(text=text, vector=vector, mode=mode, size=size, with_vectors=mode == RERANK_INPUT)
        return self.engine.retrieve(query).hits

    def run(self, mode: Mode, judgments: Judgments, products: Mapping[str, Product]) -> dict[str, StageRun]:
        """Rankings of every stage for every query; `products` holds the judged products (judged mode)."""
        runs = {name: StageRun() for name in self.stage_names()}
        for name, reranker in self.rerankers.items():
            runs[name].model_version = reranker.service.model_version
        for query in judgments.queries:
            text = query_text(query)
            started = time.perf_counter()
            vector = self.encoder.encode_one(text)
            embed_s = time.perf_counter() - started
            size = self.depth if mode == "judged" else self.window
            rerank_input: list[Candidate] = []
            for stage in FIRST_STAGES:
                started = time.perf_counter()
                hits = self._retrieve(text, vector, stage, size)
                runs[stage].seconds += time.perf_counter() - started + (embed_s if stage != "bm25" else 0.0)
                if mode == "judged":
                    ranking = _judged_order(hits, judgments.gains[query], products)
                    if stage == RERANK_INPUT:
                        rerank_input = _judged_candidates(ranking, hits, products)
                else:
                    ranking = [h.product.id for h in hits]
                    if stage == RERANK_INPUT:
                        rerank_input = [
                            Candidate(h.product.id, h.score, candidate_product(h.product), h.vector) for h in hits
                        ]
                runs[stage].rankings[query] = ranking
            for name, reranker in self.rerankers.items():
                started = time.perf_counter()
                runs[name].rankings[query] = _rerank(reranker, text, rerank_input)
                runs[name].seconds += time.perf_counter() - started
        return runs


def _judged_order(hits: Sequence[Hit], judged: Mapping[str, float], products: Mapping[str, Product]) -> list[str]:
    """The judged products (those in the catalogue) in the engine's order; the rest after, by id."""
    rank = {h.product.id: i for i, h in enumerate(hits)}
    present = [pid for pid in judged if pid in products]
    return sorted(present, key=lambda pid: (rank.get(pid, len(rank)), pid))


def _judged_candidates(ranking: Sequence[str], hits: Sequence[Hit], products: Mapping[str, Product]) -> list[Candidate]:
    by_id = {h.product.id: h for h in hits}
    candidates = []
    for pid in ranking:
        hit = by_id.get(pid)
        candidates.append(
            Candidate(
                pid,
                hit.score if hit else 0.0,
                candidate_product(products[pid]),
                hit.vector if hit else None,
            )
        )
    return candidates
