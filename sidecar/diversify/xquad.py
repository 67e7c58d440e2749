"""xQuAD (Santos, Macdonald & Ounis 2010) over leaf-category aspects.

objective(i) = (1 - strength) * rel(i) + strength * gain(i)
gain(i) = P(a_i | q) / max_a P(a | q) * rel(i) * prod_{j on page, a_j = a_i} (1 - rel(j))

Each product covers exactly one aspect: its leaf category (see attributes.py; products with
no category share one "uncategorised" aspect). P(a | q), the aspect weight, is the
relevance-weighted share of the candidates in that category, so a category that holds much
of the relevant mass is worth covering and a stray one is not. rel is relevance min-max
normalised to [0, 1] and stands in for P(d | q, a); the product term is how much of the
aspect is still uncovered by the page.

The diversity term is divided by max_a P(a | q), so the query's main aspect counts 1 and the
others their share relative to it. That is a per-query constant, so the picks are exactly
xQuAD's at lambda' with lambda' / (1 - lambda') = strength / (1 - strength) / max_a P(a | q):
it only calibrates strength, so that 0.5 diversifies a query with ten even categories
(each P = 0.1) as much as one with two, instead of the term shrinking with the aspect count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sidecar.diversify.attributes import category_label
from sidecar.diversify.selection import FloatArray


class XQuAD:
    """xQuAD objective over one-aspect-per-product category aspects."""

    def __init__(self, relevance: FloatArray, aspects: Sequence[str], strength: float) -> None:
        """aspects: each candidate's category aspect key ("" = uncategorised, pooled into one aspect)."""
        index: dict[str, int] = {}
        self._aspects = np.array([index.setdefault(a, len(index)) for a in aspects], dtype=np.int64)
        labels = list(index)
        self._relevance = relevance
        self._weighted_relevance = (1.0 - strength) * relevance
        self._strength = strength
        self._labels = labels
        mass = np.bincount(self._aspects, weights=relevance, minlength=len(labels))
        total = float(mass.sum())
        if total <= 0.0:  # all candidates equally (ir)relevant: weight by how many each aspect has
            mass = np.bincount(self._aspects, minlength=len(labels)).astype(np.float64)
            total = float(mass.sum())
        self.weights = mass / total  # P(a | q)
        self._coverage_gain = self.weights[self._aspects] / self.weights.max() * relevance
        self._uncovered = np.ones(len(labels))
        self._on_page: dict[int, list[int]] = {}
        self._placed = 0

    def values(self) -> tuple[FloatArray, FloatArray]:
        """(1 - s) * rel + s * aspect gain, and the aspect gain."""
        gain = self._coverage_gain * self._uncovered[self._aspects]
        return self._weighted_relevance + self._strength * gain, gain

    def explain(self, index: int) -> str:
        """E.g. "xQuAD: new category 'Tablets' (weight 0.31, aspect gain 0.25)"."""
        aspect = int(self._aspects[index])
        name = category_label(self._labels[aspect])
        gain = float(self._coverage_gain[index] * self._uncovered[aspect])
        weight = float(self.weights[aspect])
        taken = self._on_page.get(aspect, [])
        if not taken:
            return f"xQuAD: new category '{name}' (weight {weight:.2f}, aspect gain {gain:.2f})"
        shown = ", ".join(f"#{p + 1}" for p in taken[:5]) + (", ..." if len(taken) > 5 else "")
        return f"xQuAD: category '{name}' already at {shown} (weight {weight:.2f}, aspect gain {gain:.2f})"

    def place(self, index: int) -> None:
        """The pick covers its aspect by its relevance."""
        aspect = int(self._aspects[index])
        self._uncovered[aspect] *= 1.0 - self._relevance[index]
        self._on_page.setdefault(aspect, []).append(self._placed)
        self._placed += 1
