"""The intent model: a softmax over category centroids of the stored bi-encoder product vectors.

No hand labels and no extra embedding pass: every product is labelled with its own category,
the indexer sums the vectors it already computed per category path (CategorySums), and the
model scores a query vector against each category's normalised mean. A log-prior on the
category's product count breaks ties toward categories the catalogue actually stocks.

Depth: "leaf" labels a product by its leaf category, "2" by its second level (its only level
when it has one). Labels are category names, the values the engines' category filter matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from shoprank.schema import Product

IntentDepth = Literal["leaf", "2"]  # settings.intent_depth (a test keeps them equal)
INTENT_DEPTHS: tuple[IntentDepth, ...] = get_args(IntentDepth)
# Cosines of the bi-encoder's unit vectors sit in [-1, 1]; /T makes the softmax sharp enough that
# a clear query puts most of its mass on one category (measured: `shoprank eval-intent`).
DEFAULT_TEMPERATURE = 0.05
DEFAULT_PRIOR_WEIGHT = 1.0
# Separates the levels of a category path in CategorySums (a name never contains it: schema cuts paths).
PATH_SEPARATOR = " > "

FloatArray = npt.NDArray[np.float32]


def label_at_depth(category: Sequence[str], depth: IntentDepth) -> str | None:
    """The category name a product is labelled with at `depth`, or None for an uncategorised one."""
    if not category:
        return None
    if depth == "leaf":
        return category[-1]
    return category[min(int(depth), len(category)) - 1]


class CategorySums:
    """Per category path: the sum of its products' vectors and their count (built while indexing)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._rows: dict[str, int] = {}
        self._sums: list[npt.NDArray[np.float64]] = []
        self._counts: list[int] = []

    def add(self, products: Sequence[Product], vectors: FloatArray) -> None:
        """Add a batch of products with their stored vectors."""
        self.add_labelled([p.category for p in products], vectors)

    def add_labelled(self, categories: Sequence[Sequence[str]], vectors: FloatArray) -> None:
        """Add vectors labelled with category paths (root to leaf; an empty path is skipped)."""
        if len(categories) != len(vectors):
            raise ValueError("one vector per product")
        for category, vector in zip(categories, vectors, strict=True):
            if not category:
                continue
            path = PATH_SEPARATOR.join(category)
            row = self._rows.get(path)
            if row is None:
                row = self._rows[path] = len(self._sums)
                self._sums.append(np.zeros(self.dim, dtype=np.float64))
                self._counts.append(0)
            self._sums[row] += vector
            self._counts[row] += 1

    def arrays(self) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """(paths, sums [paths x dim], counts) as stored with the model."""
        sums = np.stack(self._sums) if self._sums else np.zeros((0, self.dim))
        return list(self._rows), sums, np.asarray(self._counts, dtype=np.int64)


@dataclass(frozen=True)
class IntentDistribution:
    """A query's most likely categories, most likely first, with their probabilities."""

    categories: tuple[str, ...]
    probabilities: tuple[float, ...]

    def probability(self, category: str | None) -> float:
        """P(category | query), 0 for one outside the kept head."""
        if category is None:
            return 0.0
        for name, p in zip(self.categories, self.probabilities, strict=True):
            if name == category:
                return p
        return 0.0

    def top(self) -> tuple[str, float] | None:
        """The most likely category and its probability."""
        return (self.categories[0], self.probabilities[0]) if self.categories else None

    def as_list(self) -> list[dict[str, str | float]]:
        """JSON-ready form."""
        return [{"category": c, "p": round(p, 4)} for c, p in zip(self.categories, self.probabilities, strict=True)]


@dataclass(frozen=True)
class IntentModel:
    """Category centroids at one depth, and what they were built from."""

    index_version: str
    depth: IntentDepth
    labels: tuple[str, ...]
    centroids: FloatArray  # [labels x dim], unit rows
    log_prior: FloatArray  # [labels], log of each label's product share
    temperature: float = DEFAULT_TEMPERATURE
    prior_weight: float = DEFAULT_PRIOR_WEIGHT

    @classmethod
    def from_sums(
        cls,
        index_version: str,
        paths: Sequence[str],
        sums: npt.NDArray[np.float64],
        counts: npt.NDArray[np.int64],
        depth: IntentDepth = "leaf",
        temperature: float = DEFAULT_TEMPERATURE,
        prior_weight: float = DEFAULT_PRIOR_WEIGHT,
    ) -> IntentModel:
        """Group the per-path sums by their label at `depth` and normalise each group's mean."""
        if depth not in INTENT_DEPTHS:
            raise ValueError(f"intent depth must be one of {', '.join(INTENT_DEPTHS)}, not {depth!r}")
        if temperature <= 0:
            raise ValueError("intent temperature must be positive")
        if not len(paths):
            raise ValueError("no categorised products to learn intents from: index a catalogue with categories")
        rows: dict[str, int] = {}
        for path in paths:
            label = label_at_depth(path.split(PATH_SEPARATOR), depth)
            rows.setdefault(label or "", len(rows))
        grouped = np.zeros((len(rows), sums.shape[1]), dtype=np.float64)
        grouped_counts = np.zeros(len(rows), dtype=np.float64)
        for path, row_sum, count in zip(paths, sums, counts, strict=True):
            row = rows[label_at_depth(path.split(PATH_SEPARATOR), depth) or ""]
            grouped[row] += row_sum
            grouped_counts[row] += count
        norms = np.linalg.norm(grouped, axis=1, keepdims=True)
        centroids = (grouped / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        log_prior = np.log(grouped_counts / grouped_counts.sum()).astype(np.float32)
        return cls(index_version, depth, tuple(rows), centroids, log_prior, temperature, prior_weight)

    def probabilities(self, vector: FloatArray) -> FloatArray:
        """P(label | query) for every label, in `labels` order."""
        if vector.shape != (self.centroids.shape[1],):
            raise ValueError(
                f"query vector has shape {vector.shape}, the intent model wants ({self.centroids.shape[1]},): "
                "rebuild it with the bi-encoder the index was built with (`shoprank index --catalogue PATH`)"
            )
        logits = (self.centroids @ vector.astype(np.float32)) / self.temperature + self.prior_weight * self.log_prior
        logits -= logits.max()
        weights: FloatArray = np.exp(logits).astype(np.float32)
        weights /= weights.sum()
        return weights

    def predict(self, vector: FloatArray, top: int = 5) -> IntentDistribution:
        """The `top` most likely categories of a query vector."""
        probs = self.probabilities(vector)
        k = min(top, len(probs))
        head = np.argpartition(-probs, k - 1)[:k] if k < len(probs) else np.arange(len(probs))
        order = head[np.argsort(-probs[head], kind="stable")]
        return IntentDistribution(tuple(self.labels[i] for i in order), tuple(float(probs[i]) for i in order))
