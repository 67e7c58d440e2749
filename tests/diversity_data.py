"""Seeded synthetic candidate lists for diversity tests: clusters of near-duplicate products.

Each cluster is one brand and one leaf category whose members' embeddings are near-copies of
the cluster centre (cosine ~0.99 within, ~0 across). Cluster 0 is the most relevant and the
largest, so relevance order fills the top of the page with one brand and one category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shoprank.schema import VECTOR_DIM


@dataclass(frozen=True)
class Candidates:
    relevance: npt.NDArray[np.float32]
    embeddings: npt.NDArray[np.float32]
    brands: list[str]
    categories: list[list[str]]
    cluster: npt.NDArray[np.int64]


def clustered(seed: int, n: int = 60, clusters: int = 6, dim: int = VECTOR_DIM, spread: float = 0.05) -> Candidates:
    """n candidates in `clusters` near-duplicate clusters; cluster 0 holds a third of them, most relevant."""
    rng = np.random.default_rng(seed)
    sizes = np.full(clusters, (n - n // 3) // (clusters - 1))
    sizes[0] = n - sizes[1:].sum()
    cluster = np.repeat(np.arange(clusters), sizes)
    rng.shuffle(cluster)
    centres = rng.normal(size=(clusters, dim))
    embeddings = (centres[cluster] + spread * rng.normal(size=(n, dim))).astype(np.float32)
    # Cluster 0 is clearly more relevant; the others overlap each other.
    relevance = np.where(cluster == 0, rng.uniform(0.6, 1.0, n), rng.uniform(0.2, 0.8, n)).astype(np.float32)
    brands = [f"Brand {c}" for c in cluster]
    categories = [["Root", f"Department {c % 2}", f"Leaf {c}"] for c in cluster]
    return Candidates(relevance, embeddings, brands, categories, cluster)
