"""How an intent distribution changes a first-stage window: a soft boost, and a filter only when sure.

Pure functions of scores and labels, shared by the front door and the evaluation that chose
their defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from intent.model import IntentDistribution


def boosted_scores(
    scores: Sequence[float], labels: Sequence[str | None], intent: IntentDistribution, weight: float
) -> list[float]:
    """Window scores min-max scaled to [0, 1] plus `weight` x P(label | query).

    Scaling first makes the weight mean the same on BM25, kNN and hybrid scores. A window whose
    scores are all equal scales to 0, so the boost alone orders it.
    """
    if len(scores) != len(labels):
        raise ValueError("one label per score")
    if not scores:
        return []
    values = np.asarray(scores, dtype=np.float64)
    span = float(values.max() - values.min())
    scaled = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    boost = np.asarray([intent.probability(label) for label in labels], dtype=np.float64)
    return [float(v) for v in scaled + weight * boost]


def confident_category(intent: IntentDistribution, threshold: float) -> str | None:
    """The category to hard-filter on: the most likely one when its probability reaches `threshold`
    (a threshold of 1 or more never filters: a softmax is never certain)."""
    top = intent.top()
    if top is None or threshold >= 1.0:
        return None
    return top[0] if top[1] >= threshold else None
