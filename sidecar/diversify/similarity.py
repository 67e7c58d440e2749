"""Pairwise similarity of candidates for MMR and DPP: cosine of embeddings, or attributes without them.

Cosine is used for every pair where both products have a usable (non-empty, non-zero)
embedding. Any pair involving a product without one falls back to attribute similarity:
0.5 for the same brand + 0.5 for the same leaf category, so a same-brand same-category
pair counts as a duplicate (1.0) and unrelated products as 0. That kernel is a sum of
block-diagonal all-ones matrices, hence positive semi-definite as DPP needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Basis = Literal["embeddings", "attributes", "mixed"]
BRAND_WEIGHT = 0.5
CATEGORY_WEIGHT = 0.5
# Below this norm a vector has no direction to compare (zero or underflowed embeddings).
MIN_NORM = 1e-12


def codes(keys: Sequence[str]) -> npt.NDArray[np.int64]:
    """Integer code per key in first-seen order; the empty key (unknown) is -1."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(key, len(seen)) if key else -1 for key in keys], dtype=np.int64)


def _same(code: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    return np.logical_and(np.equal(code[:, None], code[None, :]), code[:, None] >= 0)


@dataclass(frozen=True)
class Similarity:
    """An (n, n) similarity matrix with unit diagonal, and how each pair was judged."""

    matrix: npt.NDArray[np.float64]
    has_embedding: npt.NDArray[np.bool_]
    brand_codes: npt.NDArray[np.int64]
    category_codes: npt.NDArray[np.int64]

    @property
    def basis(self) -> Basis:
        """Whether the similarities came from embeddings, attributes, or both."""
        if self.has_embedding.all():
            return "embeddings"
        return "mixed" if self.has_embedding.any() else "attributes"

    def label(self, method: str) -> str:
        """The method's name as explanations show it, with the similarity basis when not embeddings."""
        if self.basis == "embeddings":
            return method
        return f"{method} ({'attribute' if self.basis == 'attributes' else 'embedding + attribute'} similarity)"

    @property
    def note(self) -> str:
        """What fallback was used, for the result's notes ("" when all pairs used embeddings)."""
        missing = int((~self.has_embedding).sum())
        if not missing:
            return ""
        total = len(self.has_embedding)
        return (
            f"attribute similarity (same brand {BRAND_WEIGHT:g} + same category {CATEGORY_WEIGHT:g}) for "
            f"{missing} of {total} candidates without a usable embedding (missing, empty or zero)"
        )

    def describe(self, i: int, j: int) -> str:
        """Why candidates i and j count as similar, e.g. "cos 0.91" or "same brand"."""
        if self.has_embedding[i] and self.has_embedding[j]:
            return f"cos {self.matrix[i, j]:.2f}"
        brand = self.brand_codes[i] >= 0 and self.brand_codes[i] == self.brand_codes[j]
        category = self.category_codes[i] >= 0 and self.category_codes[i] == self.category_codes[j]
        if brand and category:
            return "same brand and category"
        if brand:
            return "same brand"
        return "same category" if category else "different brand and category"


def similarity(
    embeddings: npt.NDArray[np.float32] | None,
    brand_codes: npt.NDArray[np.int64],
    category_codes: npt.NDArray[np.int64],
) -> Similarity:
    """Cosine similarity where both embeddings are usable, attribute similarity otherwise."""
    n = len(brand_codes)
    matrix = BRAND_WEIGHT * _same(brand_codes) + CATEGORY_WEIGHT * _same(category_codes)
    has_embedding = np.zeros(n, dtype=bool)
    if embeddings is not None and embeddings.shape[1] > 0:
        norms = np.linalg.norm(embeddings, axis=1)
        has_embedding = norms > MIN_NORM
        usable = np.flatnonzero(has_embedding)
        if usable.size:
            unit = embeddings[usable] / norms[usable, None]
            cosine = np.clip((unit @ unit.T).astype(np.float64), -1.0, 1.0)
            if usable.size == n:
                matrix = cosine
            else:
                matrix[np.ix_(usable, usable)] = cosine
    matrix = np.asarray(matrix, dtype=np.float64)
    np.fill_diagonal(matrix, 1.0)
    return Similarity(matrix, has_embedding, brand_codes, category_codes)
