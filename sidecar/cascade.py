"""A two-stage scorer: a cheap cross-encoder over the whole window, the full one over its top K only.

The cheap scorer is either the first stage's own order (`FirstStageOrder`, free) or a
layer-truncated copy of the released cross-encoder (`shoprank models build --only cascade`):
the same tokens through its first few layers, a third of the full model's work per pair or
less. It orders the window; the full model rescores the first `top_k` of that
order. Those K come first, by their full-model logits; the rest keep the cheap order below them
(their values are mapped under the lowest full logit, so min-max blending still sees one scale).

A request of no more than `top_k` candidates skips the cheap pass: the full model scores it all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shoprank.arrays import FloatArray
from shoprank.template import ProductText
from sidecar.domain import Admission, BatchUsage, PairScores
from sidecar.rerank_service import PairScorer

# The cheap-ordered tail starts this share of the full logits' spread below the lowest full logit.
TAIL_MARGIN = 0.01


@dataclass(frozen=True)
class CascadePlan:
    """Which candidates the full model rescores (indices, cheap order) and which it does not."""

    head: list[int]
    tail: list[int]


def plan(cheap_logits: FloatArray, top_k: int) -> CascadePlan:
    """The top `top_k` indices by cheap score (ties by input order) and the rest in cheap order."""
    order = [int(i) for i in np.argsort(-cheap_logits, kind="stable")]
    return CascadePlan(order[:top_k], order[top_k:])


def compose(n: int, cascade: CascadePlan, full_head: FloatArray) -> FloatArray:
    """One logit per candidate: the head's full logits, the tail strictly below them in cheap order."""
    out = np.zeros(n, dtype=np.float32)
    out[cascade.head] = full_head
    if not cascade.tail:
        return out
    low, high = float(np.min(full_head)), float(np.max(full_head))
    spread = max(high - low, 1e-3)
    # Cheap ranks, not raw cheap logits (another model's scale): the tail spans one head spread.
    steps = np.arange(len(cascade.tail), dtype=np.float64) / len(cascade.tail)
    out[cascade.tail] = (low - TAIL_MARGIN * spread - steps * spread).astype(np.float32)
    return out


def _add(a: BatchUsage, b: BatchUsage) -> BatchUsage:
    return BatchUsage(
        a.batches + b.batches, a.batch_pairs + b.batch_pairs, a.tokens + b.tokens, a.padded_tokens + b.padded_tokens
    )


class FirstStageOrder:
    """The free cheap scorer: the order the candidates came in, which is first-stage order from the
    front door and the OpenSearch plugin (both send their hits ranked). A caller that sends another
    order gets that order's top K rescored."""

    version = "first-stage"

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores:
        """Descending logits by input position."""
        return PairScores(logits=-np.arange(len(products), dtype=np.float32))


class CascadeScorer:
    """A PairScorer that rescores only the cheap scorer's top `top_k` with the full scorer."""

    def __init__(self, full: PairScorer, cheap: PairScorer, top_k: int) -> None:
        if top_k < 1:
            raise ValueError("a cascade needs top_k >= 1 (0 means no cascade: serve the full scorer alone)")
        self.full = full
        self.cheap = cheap
        self.top_k = top_k
        # Caches and clients key on the version: a cascade's order is not the full model's.
        self.version = f"{full.version}+cascade{top_k}:{cheap.version}"

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores:
        """Logits in input order: full-model logits for the cheap top K, cheap order below them."""
        n = len(products)
        if n <= self.top_k:
            return self.full.score(query, products, deadline, ids, cancelled, admission)
        started = time.perf_counter()
        try:
            cheap = self.cheap.score(query, products, deadline, ids, cancelled)
        except BaseException:
            if admission is not None:
                admission.release()
            raise
        cascade = plan(cheap.logits, self.top_k)
        head_ids = [ids[i] for i in cascade.head] if ids is not None else None
        full = self.full.score(query, [products[i] for i in cascade.head], deadline, head_ids, cancelled, admission)
        logits = compose(n, cascade, full.logits)
        cheap_ms = (time.perf_counter() - started) * 1e3 - full.tokenize_ms - full.queue_ms - full.inference_ms
        return PairScores(
            logits=logits,
            tokenize_ms=cheap.tokenize_ms + full.tokenize_ms,
            queue_ms=cheap.queue_ms + full.queue_ms,
            inference_ms=max(cheap_ms - cheap.tokenize_ms - cheap.queue_ms, 0.0) + full.inference_ms,
            cache_hits=full.cache_hits,
            usage=_add(cheap.usage, full.usage),
        )

    def admit(self, pairs: int, deadline: float | None) -> Admission | None:
        """Hold the full model's queue space for the head only (the cheap pass is checked when it queues)."""
        admit = getattr(self.full, "admit", None)
        if not callable(admit):
            return None
        admission: Admission = admit(min(pairs, self.top_k), deadline)
        return admission

    def close(self) -> None:
        """Stop both scorers' inference threads."""
        for scorer in (self.full, self.cheap):
            close = getattr(scorer, "close", None)
            if callable(close):
                close()
