"""Domain types of the sidecar. Scoring and diversity work on these and never see protobuf."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shoprank.arrays import FloatArray
from sidecar.diversify import DiversityParams
from sidecar.personalise import Interaction, PersonalParams


@dataclass(frozen=True)
class CandidateProduct:
    """The product fields the text template reads, and the catalogue numbers the LTR stage reads."""

    title: str = ""
    brand: str = ""
    category: Sequence[str] = ()
    color: str = ""
    bullet_points: str = ""
    description: str = ""
    price: float | None = None
    rating: float | None = None
    rating_count: int | None = None


@dataclass(frozen=True)
class Candidate:
    id: str
    first_stage_score: float
    product: CandidateProduct
    embedding: FloatArray | None = None


@dataclass(frozen=True)
class RerankOptions:
    """A request's options as the caller sends them; None (and empty facets) leaves the server default."""

    blend_weight: float | None = None
    diversity: str | None = None  # a DiversityMethod name
    strength: float | None = None
    max_per_brand: int | None = None
    max_per_category: int | None = None
    window: int | None = None
    page_size: int | None = None  # caps count per page of this many results
    facets: tuple[str, ...] = ()  # xQuAD's aspects: "category" and/or "brand" (empty: server default)
    attribute_weight: float | None = None  # MMR/DPP: share of attribute similarity vs embedding cosine
    explain: bool = False
    personal_weight: float | None = None  # cap of beta(n) for this request (0: no personalisation)


@dataclass(frozen=True)
class RerankCall:
    """A rerank request as it travels: what the client sends and what the server reads off the wire,
    before the server resolves its defaults (top_k 0 and unset options stay as sent)."""

    query: str
    candidates: Sequence[Candidate]
    top_k: int = 0
    options: RerankOptions = field(default_factory=RerankOptions)
    interactions: Sequence[Interaction] = ()  # the shopper's recent interactions (none: no personal term)


class Admission(Protocol):
    """Queue space held for a request admitted before it was validated (sidecar.batching.Reservation)."""

    def release(self) -> None:
        """Give the space back (a no-op once the request's pairs were queued)."""


@dataclass(frozen=True)
class RerankQuery:
    """A validated rerank request."""

    query: str
    candidates: Sequence[Candidate]
    top_k: int
    blend_weight: float
    diversity: DiversityParams
    explain: bool = False
    deadline: float | None = None  # time.monotonic() by which the answer is useless
    cancelled: threading.Event | None = None  # set when the caller has gone away
    admission: Admission | None = None  # the place in the queue it was admitted to before validation
    interactions: Sequence[Interaction] = ()  # the shopper's recent interactions (none: no personal term)
    personal: PersonalParams = field(default_factory=PersonalParams)
    now_ms: int = 0  # the request's clock for interaction ages (Unix ms; 0: the service reads the clock)


@dataclass(frozen=True)
class FeatureContribution:
    """One feature's additive share of a learning-to-rank score (value NaN when missing)."""

    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why a result sits where it does (returned when the request asks to explain)."""

    relevance: float
    first_stage: float
    blended: float
    diversity_term: float
    first_stage_rank: int
    scored_rank: int
    final_rank: int
    reason: str
    contributions: tuple[FeatureContribution, ...] = ()
    personal_term: float = 0.0


@dataclass(frozen=True)
class ScoredCandidate:
    """One ranked result: the page score, the cross-encoder score and, on request, its explanation."""

    id: str
    score: float
    relevance_score: float
    explanation: Explanation | None = None


@dataclass
class BatchUsage:
    """How a request's model work was batched: model calls, pairs in those calls, real and padded tokens."""

    batches: int = 0
    batch_pairs: int = 0
    tokens: int = 0
    padded_tokens: int = 0


@dataclass
class Timings:
    """Wall time per stage, milliseconds, and how the request's model work was batched."""

    tokenize_ms: float = 0.0
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    diversify_ms: float = 0.0
    total_ms: float = 0.0
    usage: BatchUsage = field(default_factory=BatchUsage)
    personal_ms: float = 0.0

    def stage_ms(self) -> dict[str, float]:
        """The per-stage wall times by name (the front door reports them as sidecar_<name>)."""
        return {
            "tokenize_ms": self.tokenize_ms,
            "queue_ms": self.queue_ms,
            "inference_ms": self.inference_ms,
            "diversify_ms": self.diversify_ms,
            "total_ms": self.total_ms,
        }


@dataclass
class PairScores:
    """Cross-encoder logits of a request's pairs, in input order, with what producing them cost."""

    logits: FloatArray
    tokenize_ms: float = 0.0
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    cache_hits: int = 0
    usage: BatchUsage = field(default_factory=BatchUsage)


@dataclass
class RerankOutcome:
    """A ranked page and how it was made: what the server answers and the client reads back."""

    results: list[ScoredCandidate]
    reranked: bool
    model_version: str
    timings: Timings = field(default_factory=Timings)
    diversity_method: str = "none"
    cache_hits: int = 0
    diversity_notes: tuple[str, ...] = ()
    ltr_version: str = ""  # the learning-to-rank model that ranked; empty when the blend did
    personalised: bool = False
    personal_interactions: int = 0
