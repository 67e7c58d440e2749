"""A pair scorer that remembers every (query, product) logit, for measurements that rerank the same
pairs many times (each setting of a grid re-sorts or re-scores the same window)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from shoprank.template import ProductText
from sidecar.domain import Admission, PairScores
from sidecar.rerank_service import PairScorer


class MemoScorer:
    """Scores only the pairs it has not seen; the logits are the wrapped scorer's, bit for bit."""

    def __init__(self, scorer: PairScorer) -> None:
        self.scorer = scorer
        self.version = scorer.version
        self._logits: dict[tuple[str, str], float] = {}

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores:
        """Logits in input order; `ids` are required (they key the memory)."""
        if ids is None:
            raise ValueError("MemoScorer needs the candidates' ids")
        missing = [i for i, pid in enumerate(ids) if (query, pid) not in self._logits]
        if missing:
            fresh = self.scorer.score(query, [products[i] for i in missing], ids=[ids[i] for i in missing]).logits
            for i, logit in zip(missing, fresh.tolist(), strict=True):
                self._logits[(query, ids[i])] = logit
        logits = np.array([self._logits[(query, pid)] for pid in ids], dtype=np.float32)
        return PairScores(logits, cache_hits=len(ids) - len(missing))
