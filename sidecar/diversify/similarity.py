"""Pairwise similarity of candidates for MMR and DPP: embeddings, the catalogue's structure, or both.

Attribute similarity is 0.5 for the same brand + 0.5 for the same leaf category, so a
same-brand same-category pair counts as a duplicate (1.0) and unrelated products as 0. That
kernel is a sum of block-diagonal all-ones matrices, hence positive semi-definite as DPP
needs. A brand the query names (attributes.py) is not a similarity: the shopper asked for it.

Where both products have a usable (non-empty, non-zero) embedding the similarity is
(1 - w) * cosine + w * attributes, w the attribute weight: a convex mix of two PSD kernels
with unit diagonals, so still one. Cosine alone sees that two listings look alike; what a
shopper reads as a repetitive page is as much the same brand and the same kind of product,
which is what the structure says directly. Over the 100 judged ESCI queries, each reranked
out of fold, DPP at 0.1 with w = 0.75 gains +20% category and +17% brand coverage@10 judged
where cosine alone gains +11% and +12%, for -1.6% against -0.9% NDCG@10 (end to end -1.0%
against -1.5%). Any pair involving a product without an embedding uses attribute similarity
alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from sidecar.diversify.attributes import CandidateAttributes

Basis = Literal["embeddings", "attributes", "mixed"]
BRAND_WEIGHT = 0.5
CATEGORY_WEIGHT = 0.5
# Below this norm a vector has no direction to compare (zero or underflowed embeddings).
MIN_NORM = 1e-12


def _same(code: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    return np.logical_and(np.equal(code[:, None], code[None, :]), code[:, None] >= 0)


@dataclass(frozen=True)
class Similarity:
    """An (n, n) similarity matrix with unit diagonal, and how each pair was judged."""

    matrix: npt.NDArray[np.float64]
    has_embedding: npt.NDArray[np.bool_]
    attributes: CandidateAttributes
    attribute_weight: float = 0.0
    cosine: npt.NDArray[np.float64] | None = None  # over the candidates with an embedding, in their order

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
        """What fallback was used, for the result's notes ("" when all pairs used embeddings, or when
        attribute weight 1 asked for attributes alone: nothing fell back)."""
        missing = int((~self.has_embedding).sum())
        if not missing or self.attribute_weight == 1.0:
            return ""
        total = len(self.has_embedding)
        return (
            f"attribute similarity (same brand {BRAND_WEIGHT:g} + same category {CATEGORY_WEIGHT:g}) for "
            f"{missing} of {total} candidates without a usable embedding (missing, empty or zero)"
        )

    def _shared(self, i: int, j: int) -> str:
        brands, categories = self.attributes.diversity_brand_codes, self.attributes.category_codes
        brand = brands[i] >= 0 and brands[i] == brands[j]
        category = categories[i] >= 0 and categories[i] == categories[j]
        if brand and category:
            return "same brand and category"
        if brand:
            return "same brand"
        return "same category" if category else "different brand and category"

    def describe(self, i: int, j: int) -> str:
        """Why candidates i and j count as similar, e.g. "cos 0.91", "same brand" or, with
        embeddings mixed with attributes, "similarity 0.75: cos 0.00, same brand and category"."""
        if not (self.has_embedding[i] and self.has_embedding[j]):
            return self._shared(i, j)
        rows = np.cumsum(self.has_embedding) - 1  # index of each candidate among those with an embedding
        cosine = self.matrix[i, j] if self.cosine is None else self.cosine[rows[i], rows[j]]
        if self.attribute_weight == 0.0:
            return f"cos {cosine:.2f}"
        return f"similarity {self.matrix[i, j]:.2f}: cos {cosine:.2f}, {self._shared(i, j)}"


def _attribute_similarity(attributes: CandidateAttributes) -> npt.NDArray[np.float64]:
    brands, categories = attributes.diversity_brand_codes, attributes.category_codes
    return np.asarray(BRAND_WEIGHT * _same(brands) + CATEGORY_WEIGHT * _same(categories), dtype=np.float64)


def similarity(
    embeddings: npt.NDArray[np.float32] | None, attributes: CandidateAttributes, attribute_weight: float = 0.0
) -> Similarity:
    """(1 - w) * cosine + w * attributes where both embeddings are usable, attributes otherwise."""
    n = len(attributes.brand_codes) if embeddings is None else len(embeddings)
    has_embedding = np.zeros(n, dtype=bool)
    cosine = None
    if embeddings is not None and embeddings.shape[1] > 0:
        # float64: the norm of finite float32 vectors with huge components overflows float32.
        wide = embeddings.astype(np.float64)
        norms = np.linalg.norm(wide, axis=1)
        has_embedding = norms > MIN_NORM
        usable = np.flatnonzero(has_embedding)
        unit = wide[usable] / norms[usable, None]
        cosine = np.clip(unit @ unit.T, -1.0, 1.0)
    if cosine is not None and has_embedding.all() and attribute_weight == 0.0:
        matrix = cosine.copy()
    else:
        matrix = _attribute_similarity(attributes)
        if cosine is not None and cosine.size:
            both = np.ix_(has_embedding, has_embedding)
            matrix[both] = (1.0 - attribute_weight) * cosine + attribute_weight * matrix[both]
    np.fill_diagonal(matrix, 1.0)
    return Similarity(matrix, has_embedding, attributes, attribute_weight, cosine)
