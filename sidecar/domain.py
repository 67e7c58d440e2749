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
    """The product fields the text template reads."""

    title: str = ""
    brand: str = ""
    category: Sequence[str] = ()
    color: str = ""
    bullet_points: str = ""
    description: str = ""


@dataclass(frozen=True)
class Candidate:
    id: str
    first_stage_score: float
    product: CandidateProduct
    embedding: FloatArray | None = None


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
class Explanation:
    relevance: float
    first_stage: float
    blended: float
    diversity_term: float
    first_stage_rank: int
    scored_rank: int
    final_rank: int
    reason: str
    personal_term: float = 0.0


@dataclass(frozen=True)
class ScoredCandidate:
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
    results: list[ScoredCandidate]
    reranked: bool
    model_version: str
    timings: Timings = field(default_factory=Timings)
    diversity_method: str = "none"
    cache_hits: int = 0
    diversity_notes: tuple[str, ...] = ()
    personalised: bool = False
    personal_interactions: int = 0
