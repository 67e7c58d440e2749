"""Diversity metrics of a ranked page, always reported beside the NDCG it cost.

Categories and brands are keyed exactly as the diversity methods key them
(sidecar/diversify/attributes.py): the leaf category path, and the casefolded brand.

Definitions (k >= 1; a ranking shorter than k is scored as if padded with nothing):
- coverage@k: distinct known values among the first k results / k. Products without a brand
  (category) add no value: a page cannot claim variety it does not show. 1.0 = every slot a
  different value; a page of one brand scores 1/k.
- entropy@k: Shannon entropy, in bits, of the distribution of known values among the first k
  results (unknown values left out); 0 for one value, log2(k) at most.
- intra-list diversity@k: mean over pairs of the first k results of 1 - cosine(e_i, e_j);
  zero vectors (no direction) are left out; 0.0 with fewer than two vectors.
- alpha-NDCG@k (Clarke et al., SIGIR 2008) over category aspects: the gain at rank r is
  sum over aspects a of J(d_r, a) * (1 - alpha)^c(a, r), with J(d, a) the graded relevance
  gain of d (e.g. ESCI: E=1, S=0.1, C=0.01, I=0) when d covers a, else 0, and c(a, r) the
  number of results above r that cover a with a positive gain. Each product covers its leaf
  category; products without one share an "uncategorised" aspect so relevant ones still
  gain. Discount 1 / log2(r + 1). The ideal ranking is the standard greedy approximation
  (best marginal gain first, over every judged product; ties by id). 0.0 when no judged
  product has a positive gain.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sidecar.diversify.attributes import brand_key, category_aspect

UNCATEGORISED_ASPECT = "(uncategorised)"
DEFAULT_ALPHA = 0.5


class ProductAttributes(Protocol):
    """What the metrics read of a product (shoprank.schema.Product has both)."""

    @property
    def brand(self) -> str: ...
    @property
    def category(self) -> Sequence[str]: ...


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def coverage_at_k(values: Sequence[str], k: int) -> float:
    """Distinct non-empty values among the first k / k."""
    _check_k(k)
    return len({v for v in values[:k] if v}) / k


def entropy_at_k(values: Sequence[str], k: int) -> float:
    """Entropy in bits of the non-empty values among the first k."""
    _check_k(k)
    counts = Counter(v for v in values[:k] if v)
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def category_keys(categories: Sequence[Sequence[str]]) -> list[str]:
    """Leaf-category keys of a ranking ("" for products without a category)."""
    return [category_aspect(c) for c in categories]


def brand_keys(brands: Sequence[str]) -> list[str]:
    """Brand keys of a ranking ("" for products without a brand)."""
    return [brand_key(b) for b in brands]


def category_coverage_at_k(categories: Sequence[Sequence[str]], k: int) -> float:
    """Distinct leaf categories among the first k results / k."""
    return coverage_at_k(category_keys(categories), k)


def brand_coverage_at_k(brands: Sequence[str], k: int) -> float:
    """Distinct brands among the first k results / k."""
    return coverage_at_k(brand_keys(brands), k)


def intra_list_diversity(embeddings: npt.ArrayLike, k: int) -> float:
    """Mean pairwise 1 - cosine among the first k rows (zero rows left out)."""
    _check_k(k)
    rows = np.asarray(embeddings, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"embeddings must be (n, dim), got shape {rows.shape}")
    rows = rows[:k]
    norms = np.linalg.norm(rows, axis=1)
    unit = rows[norms > 0] / norms[norms > 0, None]
    m = len(unit)
    if m < 2:
        return 0.0
    cosine = np.clip(unit @ unit.T, -1.0, 1.0)
    pairs = cosine[np.triu_indices(m, k=1)]
    return float(np.mean(1.0 - pairs))


def _marginal_gain(aspects: Collection[str], gain: float, seen: Mapping[str, int], alpha: float) -> float:
    return sum(gain * (1.0 - alpha) ** seen.get(a, 0) for a in aspects)


def _alpha_dcg(
    ranking: Sequence[str], gains: Mapping[str, float], aspects: Mapping[str, Collection[str]], alpha: float
) -> float:
    seen: Counter[str] = Counter()
    total = 0.0
    for rank, item in enumerate(ranking, start=1):
        gain = gains.get(item, 0.0)
        covered = aspects.get(item, ())
        total += _marginal_gain(covered, gain, seen, alpha) / math.log2(rank + 1)
        if gain > 0:
            seen.update(covered)
    return total


def ideal_alpha_ranking(
    gains: Mapping[str, float], aspects: Mapping[str, Collection[str]], k: int, alpha: float = DEFAULT_ALPHA
) -> list[str]:
    """The greedy approximation of the ideal ranking: best marginal gain first (ties by id)."""
    pool = sorted(item for item, gain in gains.items() if gain > 0)
    seen: Counter[str] = Counter()
    ideal: list[str] = []
    for _ in range(min(k, len(pool))):
        best = max(pool, key=lambda item: _marginal_gain(aspects.get(item, ()), gains[item], seen, alpha))
        ideal.append(best)
        pool.remove(best)
        seen.update(aspects.get(best, ()))
    return ideal


def alpha_ndcg_at_k(
    ranking: Sequence[str],
    gains: Mapping[str, float],
    aspects: Mapping[str, Collection[str]],
    k: int,
    alpha: float = DEFAULT_ALPHA,
) -> float:
    """alpha-NDCG@k of a ranking of ids, given graded gains and the aspects each id covers."""
    _check_k(k)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    ideal = _alpha_dcg(ideal_alpha_ranking(gains, aspects, k, alpha), gains, aspects, alpha)
    if ideal <= 0.0:
        return 0.0
    return _alpha_dcg(ranking[:k], gains, aspects, alpha) / ideal


def category_aspects(products: Mapping[str, ProductAttributes]) -> dict[str, frozenset[str]]:
    """The category aspect each product covers: its leaf category, or the uncategorised aspect."""
    return {pid: frozenset({category_aspect(p.category) or UNCATEGORISED_ASPECT}) for pid, p in products.items()}


@dataclass(frozen=True)
class PageDiversity:
    """Every diversity metric of one ranked page."""

    category_coverage: float
    brand_coverage: float
    category_entropy: float
    brand_entropy: float
    ild: float | None
    alpha_ndcg: float


def page_diversity(
    ranking: Sequence[str],
    products: Mapping[str, ProductAttributes],
    gains: Mapping[str, float],
    k: int = 10,
    embeddings: Mapping[str, npt.NDArray[np.float32]] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> PageDiversity:
    """All metrics of a ranking of product ids; gains are the graded relevance of the judged ids
    (unjudged = 0). An id missing from `products` still takes its slot but has no brand or
    category (the uncategorised aspect); ILD is over the top k ids that have an embedding,
    None without embeddings."""
    _check_k(k)
    top = list(ranking[:k])
    known = [products.get(pid) for pid in top]
    categories = [p.category if p is not None else () for p in known]
    brands = [p.brand if p is not None else "" for p in known]
    ild = None
    if embeddings is not None:
        vectors = [embeddings[pid] for pid in top if pid in embeddings]
        ild = intra_list_diversity(np.stack(vectors), k) if vectors else 0.0
    aspects = category_aspects({pid: products[pid] for pid in [*gains, *top] if pid in products})
    for pid in [*gains, *top]:
        aspects.setdefault(pid, frozenset({UNCATEGORISED_ASPECT}))
    return PageDiversity(
        category_coverage=category_coverage_at_k(categories, k),
        brand_coverage=brand_coverage_at_k(brands, k),
        category_entropy=entropy_at_k(category_keys(categories), k),
        brand_entropy=entropy_at_k(brand_keys(brands), k),
        ild=ild,
        alpha_ndcg=alpha_ndcg_at_k(top, gains, aspects, k, alpha),
    )
