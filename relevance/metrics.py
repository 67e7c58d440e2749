"""Ranking metrics over one query: NDCG@k with graded gains, MRR, recall@N.

Gains come from the judgments (ESCI: E=1, S=0.1, C=0.01, I=0); a product that is not judged
for the query has gain 0. The ideal ranking is built from every judged gain of the query, so
an end-to-end ranking that misses judged products is penalised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from relevance.judgments import RELEVANT_GAIN


def dcg(gains: Sequence[float], k: int) -> float:
    """Discounted cumulative gain of the first k gains: sum(gain_i / log2(i + 1)), i from 1."""
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains[:k]))


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, float], k: int) -> float:
    """NDCG@k of a ranking of product ids against the query's judged gains (0 when nothing is relevant)."""
    ideal = dcg(sorted(judged.values(), reverse=True), k)
    if ideal <= 0.0:
        return 0.0
    return dcg([judged.get(pid, 0.0) for pid in ranking], k) / ideal


def reciprocal_rank(ranking: Sequence[str], judged: Mapping[str, float], min_gain: float = RELEVANT_GAIN) -> float:
    """1 / rank of the first product with gain >= min_gain (0 when none is ranked)."""
    for rank, pid in enumerate(ranking, start=1):
        if judged.get(pid, 0.0) >= min_gain:
            return 1.0 / rank
    return 0.0


def recall_at_n(ranking: Sequence[str], judged: Mapping[str, float], n: int, min_gain: float = RELEVANT_GAIN) -> float:
    """Share of the query's relevant (gain >= min_gain) judged products found in the first n."""
    relevant = {pid for pid, gain in judged.items() if gain >= min_gain}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:n])) / len(relevant)


def has_relevant(judged: Mapping[str, float], min_gain: float = RELEVANT_GAIN) -> bool:
    """Whether a query has any relevant judged product (queries without one are not informative)."""
    return any(gain >= min_gain for gain in judged.values())
