"""Hybrid fusion of BM25 and kNN result lists, as OpenSearch's search pipelines do it.

`min_max` mirrors the normalization-processor (min-max per sub-query, weighted arithmetic
mean, a document missing from a list scores 0 there); `rrf` mirrors score-ranker-processor
(sum of 1 / (rank_constant + rank)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shoprank.normalise import min_max

RRF_RANK_CONSTANT = 60


def _min_max(scores: Mapping[str, float]) -> dict[str, float]:
    return dict(zip(scores, min_max(list(scores.values())).tolist(), strict=True))


def min_max_fusion(lists: Sequence[Mapping[str, float]], weights: Sequence[float]) -> list[tuple[str, float]]:
    """Fuse score lists by min-max normalisation and a weighted arithmetic mean; best first."""
    if len(lists) != len(weights):
        raise ValueError("one weight per result list")
    total = sum(weights)
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    fused: dict[str, float] = {}
    for scores, weight in zip(lists, weights, strict=True):
        for doc, norm in _min_max(scores).items():
            fused[doc] = fused.get(doc, 0.0) + weight * norm / total
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def rrf_fusion(
    ranked_lists: Sequence[Sequence[str]], rank_constant: int = RRF_RANK_CONSTANT
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of ranked id lists; best first."""
    fused: dict[str, float] = {}
    for ranked in ranked_lists:
        for rank, doc in enumerate(ranked, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (rank_constant + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
