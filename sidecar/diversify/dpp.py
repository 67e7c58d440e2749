"""Sliding-window DPP with fast greedy MAP inference (Chen, Zhang & Zhou, NeurIPS 2018).

Kernel: L = diag(q) S diag(q) with S the candidates' cosine similarity (PSD, unit diagonal)
and quality q_i = exp(alpha * rel_i), alpha = (1 - strength) / (2 * strength), Chen et al.'s
relevance/diversity trade-off. Then log det L_Y is proportional to
(1 - strength) * sum_{i in Y} rel_i + strength * log det S_Y, so the greedy MAP pick maximises

objective(i) = (1 - strength) * rel(i) + strength * log d_i^2

where d_i^2 is i's residual variance in S given the picks in the window (1 = nothing like
it yet, 0 = a linear combination of them). The diversity term reported is the redundancy
-log d_i^2 >= 0. d^2 is maintained by incremental Cholesky: each pick adds one row
e = (S_j - c_j C) / d_j to C and subtracts e^2 from every d^2, O(n) per pick after S.
With a window of w the pick conditions on the last w - 1 picks only; when the window
slides, the factor is rebuilt from those picks (O(w n) per pick, cheap at page sizes).
Once S is exhausted (more picks than its rank, e.g. exact duplicates) every residual is
~0 and the rest of the page goes by relevance.
"""

from __future__ import annotations

import math

import numpy as np

from shoprank.arrays import Float64Array
from sidecar.diversify.similarity import Similarity

# Residuals below this are "already spanned by the window"; also floors the log.
MIN_RESIDUAL = 1e-10


class SlidingWindowDPP:
    """Greedy MAP objective of a DPP, conditioned on the last window - 1 picks."""

    def __init__(self, relevance: Float64Array, similarity: Similarity, strength: float, window: int) -> None:
        self._relevance = (1.0 - strength) * relevance
        self._strength = strength
        self._similarity = similarity
        self._kernel = similarity.matrix
        n = len(relevance)
        # A window wider than the candidates never slides; capping it keeps the factor n x n at most
        # (a request may ask for any window: 10^8 would otherwise allocate gigabytes).
        self._conditioning = min(window - 1, n)
        self._factor = np.zeros((max(self._conditioning, 0), n))
        self._rows = 0
        self._residual = np.ones(n)
        self._page: list[int] = []
        self._label = similarity.label("DPP")

    def _redundancy(self) -> Float64Array:
        return -np.log(np.maximum(self._residual, MIN_RESIDUAL))

    def values(self) -> tuple[Float64Array, Float64Array]:
        """(1 - s) * rel - s * redundancy, and the redundancy -log d^2."""
        redundancy = self._redundancy()
        return self._relevance - self._strength * redundancy, redundancy

    def _window_picks(self) -> list[int]:
        return self._page[len(self._page) - self._conditioning :] if self._conditioning else []

    def explain(self, index: int) -> str:
        """E.g. "DPP: redundancy 1.35 (residual 0.26 given 4 picks; closest #2, cos 0.91)"."""
        window = self._window_picks()
        if not window:
            return f"{self._label}: first pick in its window, no redundancy"
        residual = max(float(self._residual[index]), 0.0)
        redundancy = -math.log(max(residual, MIN_RESIDUAL))
        similarities = self._kernel[index, window]
        closest = int(np.argmax(similarities))
        position = len(self._page) - len(window) + closest
        detail = self._similarity.describe(index, window[closest])
        return (
            f"{self._label}: redundancy {redundancy:.2f} (residual {residual:.2f} given {len(window)} picks; "
            f"closest #{position + 1}, {detail})"
        )

    def _condition_on(self, index: int) -> None:
        residual = float(self._residual[index])
        if residual <= MIN_RESIDUAL:
            return  # already spanned: conditioning on it changes no residual
        row = (self._kernel[index] - self._factor[: self._rows, index] @ self._factor[: self._rows]) / math.sqrt(
            residual
        )
        self._factor[self._rows] = row
        self._rows += 1
        self._residual = self._residual - row * row

    def place(self, index: int) -> None:
        """Condition the residuals on the window's picks, sliding it when full."""
        self._page.append(index)
        if self._conditioning == 0:
            return
        if len(self._page) <= self._conditioning:
            self._condition_on(index)
            return
        self._rows = 0
        self._residual = np.ones_like(self._residual)
        for pick in self._window_picks():
            self._condition_on(pick)
