"""Scoring one request's pairs in the serving path: score cache, then the dynamic batcher.

Runs on the gRPC handler thread: renders each product's template text once (for the cache key
and the tokenizer), looks the pairs up in the cache, tokenizes the misses, submits them to the
batcher and waits until the request's deadline. Scores computed here are cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from shoprank.template import ProductText, cross_encoder_text, query_text
from sidecar import metrics
from sidecar.batching import DynamicBatcher, Reservation
from sidecar.cross_encoder import CrossEncoder
from sidecar.domain import Admission, PairScores
from sidecar.score_cache import ScoreCache

# How long a request that came without a deadline may wait for the model.
NO_DEADLINE_WAIT_S = 30.0


class BatchedScorer:
    """The cross-encoder behind a cache and a cross-request batcher."""

    def __init__(self, encoder: CrossEncoder, batcher: DynamicBatcher, cache: ScoreCache | None) -> None:
        self.encoder = encoder
        self.batcher = batcher
        self.cache = cache
        self.version = encoder.version

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores:
        """Logits in input order; cached pairs are not recomputed.

        A request admitted before validation (`admit`) queues into its reserved place unchecked.
        """
        started = time.perf_counter()
        normalised = query_text(query)
        texts = [cross_encoder_text(p) for p in products]
        logits = np.zeros(len(products), dtype=np.float32)
        missing = list(range(len(products)))
        keys = []
        if self.cache is not None and ids is not None:
            keys = [self.cache.key(self.version, normalised, pid, text) for pid, text in zip(ids, texts, strict=True)]
            found = self.cache.get_many(keys)
            missing = [i for i, score in enumerate(found) if score is None]
            for i, score in enumerate(found):
                if score is not None:
                    logits[i] = score
        hits = len(products) - len(missing)
        if not missing:
            return PairScores(logits=logits, tokenize_ms=(time.perf_counter() - started) * 1e3, cache_hits=hits)
        reservation = admission if isinstance(admission, Reservation) else None
        if reservation is None:
            self.batcher.check_admission(len(missing), deadline)  # shed a flood before tokenizing it
        pairs = self.encoder.tokenize_texts(normalised, [texts[i] for i in missing])
        tokenize_s = time.perf_counter() - started
        metrics.TOKENIZE_SECONDS.observe(tokenize_s)
        ticket = self.batcher.submit(pairs.ids, pairs.type_ids, deadline, cancelled, reservation)
        timeout = NO_DEADLINE_WAIT_S if deadline is None else max(0.0, deadline - time.monotonic())
        outcome = ticket.wait(timeout)
        logits[missing] = outcome.logits
        if self.cache is not None and keys:
            self.cache.put_many([keys[i] for i in missing], outcome.logits.tolist())
        return PairScores(
            logits=logits,
            tokenize_ms=tokenize_s * 1e3,
            queue_ms=outcome.queue_ms,
            inference_ms=outcome.inference_ms,
            cache_hits=hits,
            usage=outcome.usage,
        )

    def admit(self, pairs: int, deadline: float | None) -> Reservation:
        """Hold queue space for a request of up to `pairs` pairs before it is validated (OverloadedError if none)."""
        return self.batcher.reserve(pairs, deadline)

    def close(self) -> None:
        """Finish queued work and stop the inference thread."""
        self.batcher.close()
