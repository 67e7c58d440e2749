"""Blending the cross-encoder's relevance with the first-stage score."""

from __future__ import annotations

import numpy as np

from shoprank.arrays import FloatArray
from shoprank.normalise import min_max


def blend(relevance: FloatArray, first_stage: FloatArray, weight: float) -> FloatArray:
    """(1 - w) * minmax(relevance) + w * minmax(first_stage); w = 0 is the cross-encoder alone.

    Both are normalised within the rerank window because logits and BM25/hybrid scores live
    on unrelated scales; ranks, not raw values, are what is comparable. Normalising in float64
    keeps any finite scale finite (float32 scores spanning more than float32's range included).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError("blend weight must be in [0, 1]")
    if weight == 0.0:
        return min_max(relevance).astype(np.float32)
    return ((1.0 - weight) * min_max(relevance) + weight * min_max(first_stage)).astype(np.float32)
