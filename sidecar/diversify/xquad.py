"""xQuAD (Santos, Macdonald & Ounis 2010) over leaf-category and/or brand aspects.

objective(i) = (1 - strength) * rel(i) + strength * gain(i)
gain(i) = 1/|F| * sum_{f in F} P(a_f(i) | q, f) / max_a P(a | q, f) * rel(i)
                               * prod_{j on page, a_f(j) = a_f(i)} (1 - rel(j))

F are the facets asked for (params.py): "category" (the leaf category, see attributes.py)
and "brand". Each product covers exactly one aspect of each facet; products with no category
(no brand) share one "uncategorised" ("no brand") aspect. P(a | q, f), the aspect weight, is
the relevance-weighted share of the candidates in that aspect, so a category or brand that
holds much of the relevant mass is worth covering and a stray one is not. rel is relevance
min-max normalised to [0, 1] and stands in for P(d | q, a); the product term is how much of
the aspect is still uncovered by the page, kept per facet: a second Nike shoe in a new
category still gains from the category and not from the brand.

Each facet's term is divided by its max_a P(a | q, f), so the query's main category (brand)
counts 1 and the others their share relative to it. That is a per-query constant per facet,
and for one facet the picks are exactly xQuAD's at lambda' with lambda' / (1 - lambda') =
strength / (1 - strength) / max_a P(a | q): it only calibrates strength, so that 0.5
diversifies a query with ten even categories (each P = 0.1) as much as one with two, instead
of the term shrinking with the aspect count. The facets are averaged (xQuAD over the union of
their aspects, each facet holding an equal share of P), so the gain stays in [0, 1] and a
strength means as much with one facet as with two.

A facet may come with aspects the query states (a brand it names, attributes.py): then
P(a | q, f) is the relevance-weighted share among those aspects only and 0 for the rest. The
query has said which brand it wants, so no other brand is worth covering, and once the
stated brand is on the page the facet adds nothing more: the page is left to relevance and
the other facets.

Vectorised: the aspects of all facets are numbered in one space (brand codes after category
codes), so one `uncovered` vector and an (|F|, n) gather give every candidate's gain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shoprank.arrays import Float64Array


@dataclass(frozen=True)
class FacetAspects:
    """One facet's aspect per candidate: `keys` ("" = none, pooled), `labels` names a key for
    explanations, `stated` the keys the query asks for (empty: the candidates decide)."""

    name: str
    keys: Sequence[str]
    labels: dict[str, str]
    stated: frozenset[str] = frozenset()


def _weights(codes: npt.NDArray[np.int64], count: int, relevance: Float64Array, counted: Float64Array) -> Float64Array:
    """P(a | q): each aspect's share of the relevance mass of the `counted` (0/1) candidates (of
    their number when all are irrelevant)."""
    mass = np.bincount(codes, weights=relevance * counted, minlength=count)
    if float(mass.sum()) <= 0.0:  # all candidates equally (ir)relevant: weight by how many each aspect has
        mass = np.bincount(codes, weights=counted, minlength=count)
    return np.asarray(mass / mass.sum(), dtype=np.float64)


class XQuAD:
    """xQuAD objective over one-aspect-per-product facets (category, brand)."""

    def __init__(self, relevance: Float64Array, facets: Sequence[FacetAspects], strength: float) -> None:
        """relevance: min-max normalised, candidates in relevance order; facets: at least one."""
        if not facets:
            raise ValueError("xQuAD needs at least one facet")
        self._relevance = relevance
        self._weighted_relevance = (1.0 - strength) * relevance
        self._strength = strength
        self._facets = [f.name for f in facets]
        rows: list[npt.NDArray[np.int64]] = []
        labels: list[str] = []
        weights: list[Float64Array] = []
        for facet in facets:
            index: dict[str, int] = {}
            local = np.array([index.setdefault(key, len(index)) for key in facet.keys], dtype=np.int64)
            rows.append(local + len(labels))  # one aspect space across facets
            labels += [facet.labels.get(key, key) for key in index]
            counted = np.array([not facet.stated or key in facet.stated for key in facet.keys], dtype=np.float64)
            weights.append(_weights(local, len(index), relevance, counted))
        self._codes = np.stack(rows)  # (facets, n): each candidate's aspect in each facet
        self.weights = np.concatenate(weights)  # P(a | q, f) per aspect, each facet's summing to 1
        top = np.concatenate([np.full(len(w), w.max()) for w in weights])
        # Per facet and candidate: its aspect's weight relative to the facet's main aspect, times
        # rel, over the number of facets (the average); multiplied by `uncovered` at pick time.
        self._coverage_gain = self.weights[self._codes] / top[self._codes] * relevance / len(facets)
        self._labels = labels
        self._uncovered = np.ones(len(labels))
        self._on_page: dict[int, list[int]] = {}
        self._placed = 0

    def _gains(self) -> Float64Array:
        """(facets, n): each facet's share of each candidate's aspect gain now."""
        return np.asarray(self._coverage_gain * self._uncovered[self._codes], dtype=np.float64)

    def values(self) -> tuple[Float64Array, Float64Array]:
        """(1 - s) * rel + s * aspect gain, and the aspect gain."""
        gain = self._gains().sum(axis=0)
        return self._weighted_relevance + self._strength * gain, gain

    def explain(self, index: int) -> str:
        """E.g. "xQuAD: new category 'Tablets' (weight 0.31, aspect gain 0.25)", or with both facets
        "xQuAD: new category 'Tablets' (weight 0.31), brand 'Apple' already at #1 (weight 0.62); aspect gain 0.12"."""
        parts = []
        for facet, aspect in zip(self._facets, self._codes[:, index].tolist(), strict=True):
            name, weight = self._labels[aspect], float(self.weights[aspect])
            taken = self._on_page.get(aspect, [])
            if not taken:
                parts.append(f"new {facet} '{name}' (weight {weight:.2f}")
            else:
                shown = ", ".join(f"#{p + 1}" for p in taken[:5]) + (", ..." if len(taken) > 5 else "")
                parts.append(f"{facet} '{name}' already at {shown} (weight {weight:.2f}")
        gain = float(self._gains()[:, index].sum())
        if len(parts) == 1:
            return f"xQuAD: {parts[0]}, aspect gain {gain:.2f})"
        return f"xQuAD: {'), '.join(parts)}); aspect gain {gain:.2f}"

    def place(self, index: int) -> None:
        """The pick covers its aspect of every facet by its relevance."""
        for aspect in self._codes[:, index].tolist():
            self._uncovered[aspect] *= 1.0 - self._relevance[index]
            self._on_page.setdefault(aspect, []).append(self._placed)
        self._placed += 1
