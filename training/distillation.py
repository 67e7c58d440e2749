"""Distillation from the bi-encoder: soft listwise targets for unlabelled (query, candidates) lists.

Labels are few; the bi-encoder (the production first stage) scores any pair for free. For
queries without labels (pseudo-queries, or judged queries over unjudged products) the
candidates the first stage retrieves get targets softmax(cosine / temperature), and the
cross-encoder learns to order them like the bi-encoder does before (and while) the labels
teach it what the bi-encoder misses.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from shoprank.schema import Product
from training.groups import Group
from training.hard_negatives import RetrievedLists


def teacher_targets(cosines: npt.NDArray[np.float32], temperature: float) -> tuple[float, ...]:
    """softmax(cosine / temperature): the teacher's preference over one list."""
    logits = cosines.astype(np.float64) / temperature
    weights = np.exp(logits - logits.max())
    return tuple(float(w) for w in weights / weights.sum())


def distillation_groups(
    retrieved: RetrievedLists, products: Mapping[str, Product], size: int, temperature: float
) -> list[Group]:
    """One group per query: its first `size` hits with the bi-encoder's soft targets (listwise only).

    Cosines come from the query vectors and the product vectors the index stores (the bi-encoder's).
    """
    groups = []
    for query, hits in retrieved.ids.items():
        ids = [pid for pid in hits if pid in products and pid in retrieved.product_vectors][:size]
        if len(ids) < 2:
            continue
        qv = retrieved.query_vectors[query]
        cosines = np.array([float(np.dot(retrieved.product_vectors[pid], qv)) for pid in ids], dtype=np.float32)
        groups.append(Group(query, tuple(ids), teacher_targets(cosines, temperature), (0.0,) * len(ids), "distill"))
    return groups
