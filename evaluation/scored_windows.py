"""The scored rerank windows a diversity sweep reuses: rerank once per query, diversify many times.

Diversity is a pure function of the scored window (blended relevance, embeddings, brands,
categories), so the trade-off sweep records each query's window as the `rerank` stage scores
it, through the shipped `RerankService`, and then applies every diversity configuration to
the record with the same `diversify()` the sidecar calls. No configuration reruns the
cross-encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from evaluation.stages import Reranker
from shoprank.errors import UserInputError
from sidecar.diversify import DiversityParams
from sidecar.domain import CandidateProduct, RerankOutcome, RerankQuery
from sidecar.rerank_service import RerankService

# Any method that reads embeddings: the probe makes RerankService say which vectors it would use.
_EMBEDDING_PROBE = DiversityParams(method="mmr", strength=1.0)


@dataclass(frozen=True)
class ScoredWindow:
    """One query's rerank window as diversify() sees it, candidates in the order they were sent.

    relevance: the blended score per candidate (what the sidecar diversifies); embeddings: one
    row per candidate as the sidecar would use them (sent vectors, missing ones from its
    bi-encoder; zero rows fall back to attribute similarity), or None.
    """

    query: str
    ids: tuple[str, ...]
    relevance: npt.NDArray[np.float64]
    embeddings: npt.NDArray[np.float32] | None
    products: tuple[CandidateProduct, ...]

    @property
    def brands(self) -> list[str]:
        """Brand per candidate."""
        return [p.brand for p in self.products]

    @property
    def categories(self) -> list[tuple[str, ...]]:
        """Category path per candidate."""
        return [tuple(p.category) for p in self.products]

    def relevance_order(self) -> list[str]:
        """The ids in the rerank-only order (stable: ties keep the sent order, as diversify() does)."""
        return [self.ids[i] for i in np.argsort(-self.relevance, kind="stable")]


def window_from(query: RerankQuery, outcome: RerankOutcome, embeddings: npt.NDArray[np.float32] | None) -> ScoredWindow:
    """The window of a rerank-only outcome that returned every candidate (top_k = len(candidates))."""
    if query.diversity.method != "none" or query.diversity.has_caps:
        raise ValueError("a scored window is recorded from a rerank without diversity")
    score = {r.id: r.score for r in outcome.results}
    ids = [c.id for c in query.candidates]
    missing = [pid for pid in ids if pid not in score]
    if missing:
        raise ValueError(f"the rerank returned {len(score)} of {len(ids)} candidates; record with top_k = window")
    return ScoredWindow(
        query=query.query,
        ids=tuple(ids),
        relevance=np.array([score[pid] for pid in ids], dtype=np.float64),
        embeddings=embeddings,
        products=tuple(c.product for c in query.candidates),
    )


class WindowRecorder(RerankService):
    """A RerankService that also keeps every window it scored (one per query and mode)."""

    def __init__(self, service: RerankService) -> None:
        super().__init__(service.scorer, service.embedder, service.ltr)
        self.windows: dict[str, ScoredWindow] = {}

    def rerank(self, query: RerankQuery) -> RerankOutcome:
        """Rerank as the service does, and record the scored window under the query text."""
        outcome = super().rerank(query)
        if query.candidates:
            vectors = self._embeddings(replace(query, diversity=_EMBEDDING_PROBE))
            self.windows[query.query] = window_from(query, outcome, vectors)
        return outcome

    def take(self) -> dict[str, ScoredWindow]:
        """The windows recorded so far; the recorder starts afresh (one mode at a time)."""
        windows, self.windows = self.windows, {}
        return windows


def windows_in(windows: dict[str, ScoredWindow], queries: Sequence[str]) -> list[ScoredWindow]:
    """The windows of these queries, in this order (a query without candidates has none)."""
    return [windows[q] for q in queries if q in windows]


def record_windows(rerankers: dict[str, Reranker], stage: str = "rerank") -> WindowRecorder:
    """Make `stage` (rerank-only) record its scored windows; returns the recorder."""
    reranker = rerankers.get(stage)
    if reranker is None:
        raise UserInputError(
            f"the trade-off sweep diversifies the {stage} stage's windows: include {stage} in --stages"
        )
    if reranker.diversity.method != "none" or reranker.diversity.has_caps:
        raise UserInputError(f"the {stage} stage diversifies; the sweep needs its rerank-only windows")
    recorder = WindowRecorder(reranker.service)
    rerankers[stage] = replace(reranker, service=recorder)
    return recorder
