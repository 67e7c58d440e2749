"""Maximal marginal relevance (Carbonell & Goldstein 1998) on cosine similarity of embeddings.

objective(i) = (1 - strength) * relevance(i) - strength * max_{j on page} sim(i, j)

The diversity term is the redundancy max_j sim(i, j) (0 for the first pick). Keeping the
running maximum and its argmax makes each pick O(n).
"""

from __future__ import annotations

import numpy as np

from shoprank.arrays import Float64Array
from sidecar.diversify.similarity import Similarity


class MMR:
    """MMR objective over the candidates; relevance min-max normalised to [0, 1]."""

    def __init__(self, relevance: Float64Array, similarity: Similarity, strength: float) -> None:
        self._relevance = (1.0 - strength) * relevance
        self._strength = strength
        self._similarity = similarity
        n = len(relevance)
        self._redundancy = np.zeros(n)
        self._closest = np.full(n, -1, dtype=np.int64)  # page position of the most similar pick
        self._page: list[int] = []
        self._label = similarity.label("MMR")

    def values(self) -> tuple[Float64Array, Float64Array]:
        """(1 - s) * relevance - s * redundancy, and the redundancy."""
        return self._relevance - self._strength * self._redundancy, self._redundancy

    def explain(self, index: int) -> str:
        """E.g. "MMR: redundancy 0.82 with #2 (cos 0.82)"."""
        if not self._page:
            return f"{self._label}: first pick, no redundancy"
        position = int(self._closest[index])
        detail = self._similarity.describe(index, self._page[position])
        return f"{self._label}: redundancy {self._redundancy[index]:.2f} with #{position + 1} ({detail})"

    def place(self, index: int) -> None:
        """Fold the new pick's similarities into the running maximum."""
        row = self._similarity.matrix[index]
        if self._page:
            closer = row > self._redundancy
            self._redundancy = np.where(closer, row, self._redundancy)
            self._closest[closer] = len(self._page)
        else:
            self._redundancy = row.copy()
            self._closest[:] = 0
        self._page.append(index)
