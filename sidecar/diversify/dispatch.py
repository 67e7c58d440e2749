"""diversify(): validate the inputs, build the chosen method's objective, fill the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shoprank.arrays import Float64Array
from shoprank.normalise import min_max
from sidecar.diversify.attributes import CandidateAttributes, category_label
from sidecar.diversify.caps import PageCaps
from sidecar.diversify.dpp import SlidingWindowDPP
from sidecar.diversify.mmr import MMR
from sidecar.diversify.params import DiversityParamError, DiversityParams, Facet
from sidecar.diversify.selection import Objective, RelevanceOnly, greedy_fill, relevance_prefix
from sidecar.diversify.similarity import similarity
from sidecar.diversify.xquad import FacetAspects, XQuAD


@dataclass(frozen=True)
class DiversityResult:
    """The page: indices into the candidates, best first, with what each pick scored and why.

    scores: the method's objective when the candidate was picked (relevance as given for
    "none"; otherwise (1 - s) * normalised relevance -/+ s * term); the page is in pick order,
    which is non-increasing in score except where a cap was relaxed or the DPP window slid.
    terms: the diversity term traded against relevance: redundancy for MMR (max cosine with
    the page) and DPP (-log residual variance), aspect gain for xQuAD, 0 for "none".
    method: what actually ran: "none", "mmr", "xquad" or "dpp", with "+caps" when caps
    applied ("caps" alone for relevance order with caps); strength 0 runs "none".
    notes: fallbacks and relaxations worth telling the caller (attribute similarity, caps
    that could not hold).
    """

    order: list[int]
    scores: list[float]
    terms: list[float]
    reasons: list[str]
    method: str = "none"
    notes: tuple[str, ...] = ()


def _check_relevance(relevance: npt.ArrayLike) -> Float64Array:
    values = np.asarray(relevance, dtype=np.float64)
    if values.ndim != 1:
        raise DiversityParamError("relevance", f"must be one score per candidate (1-D), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise DiversityParamError("relevance", "must contain only finite numbers")
    return values


def _check_embeddings(embeddings: npt.ArrayLike | None, n: int) -> npt.NDArray[np.float32] | None:
    if embeddings is None:
        return None
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != n:
        raise DiversityParamError(
            "embeddings", f"must be one row per candidate, shape ({n}, dim); got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise DiversityParamError("embeddings", "must contain only finite numbers")
    return array


def _attribute(values: Sequence[object], n: int, field: str) -> None:
    if len(values) not in (0, n):
        raise DiversityParamError(field, f"must be empty or one per candidate ({n}), got {len(values)}")


def _facet_aspects(facets: Sequence[Facet], attributes: CandidateAttributes) -> list[FacetAspects]:
    """xQuAD's aspects of each facet asked for, with the names explanations show."""
    out = []
    for facet in facets:
        if facet == "category":
            keys = attributes.aspects
            out.append(FacetAspects(facet, keys, {key: category_label(key) for key in set(keys)}))
        else:
            out.append(FacetAspects(facet, attributes.brand_keys, attributes.brand_labels, attributes.named_brands))
    return out


def diversify(
    relevance: npt.ArrayLike,
    k: int,
    params: DiversityParams,
    embeddings: npt.ArrayLike | None = None,
    brands: Sequence[str] = (),
    categories: Sequence[Sequence[str]] = (),
    query: str = "",
) -> DiversityResult:
    """Pick min(k, n) candidates, best first, trading relevance against diversity.

    relevance: one score per candidate, any scale (min-max normalised inside for the
    trade-off). embeddings: (n, dim) product vectors for MMR/DPP; None, zero columns or
    zero rows fall back to attribute similarity (same brand / category) for those
    candidates. brands / categories (root-to-leaf paths): one per candidate, or empty for
    unknown. query: the shopper's text; a brand it names is not diversified away (caps do
    not count it, xQuAD covers only it; attributes.py). Deterministic: ties go to the more
    relevant candidate, then to input order.
    Raises DiversityParamError (a ValueError naming the field) on inconsistent input.
    """
    scores = _check_relevance(relevance)
    n = len(scores)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise DiversityParamError("k", f"must be a non-negative integer, got {k!r}")
    vectors = _check_embeddings(embeddings, n)
    _attribute(brands, n, "brands")
    _attribute(categories, n, "categories")
    if n == 0 or k == 0:
        return DiversityResult([], [], [], [], "none")

    ranked = np.argsort(-scores, kind="stable")  # relevance order; everything below works in it
    relevance_sorted = scores[ranked]
    attributes = CandidateAttributes(brands, categories, ranked.tolist(), query)

    notes: list[str] = []
    method = params.method if params.strength > 0.0 else "none"
    normalised = min_max(relevance_sorted)
    objective: Objective
    reads_brands = False
    if method == "none":
        if params.method != "none":
            notes.append(f"strength 0: relevance order ({params.method} not applied)")
        objective = RelevanceOnly(relevance_sorted, capped=params.has_caps)
    elif method == "xquad":
        objective = XQuAD(normalised, _facet_aspects(params.facets, attributes), params.strength)
        reads_brands = "brand" in params.facets
    else:
        matrix = similarity(None if vectors is None else vectors[ranked], attributes, params.attribute_weight)
        if matrix.note:
            notes.append(f"{method}: {matrix.note}")
        reads_brands = params.attribute_weight > 0.0 or matrix.basis != "embeddings"
        if method == "mmr":
            objective = MMR(normalised, matrix, params.strength)
        else:
            objective = SlidingWindowDPP(normalised, matrix, params.strength, params.window)

    caps = None
    if params.has_caps:
        caps = PageCaps(n, attributes, params.max_per_brand, params.max_per_category, params.page_size)
    picks = (
        relevance_prefix(relevance_sorted, k)
        if method == "none" and caps is None
        else greedy_fill(objective, n, k, caps)
    )

    if (reads_brands or params.max_per_brand is not None) and attributes.named_brands:  # only look when it matters
        named = ", ".join(sorted(repr(attributes.brand_labels[key]) for key in attributes.named_brands))
        notes.append(f"the query names {named}: its products are not counted as repeating a brand")
    relaxed = sum(1 for p in picks if p.over_cap)
    if relaxed:
        notes.append(f"caps could not hold: {relaxed} of {len(picks)} results exceed a cap (no other candidates left)")
    applied = method if caps is None else ("caps" if method == "none" else f"{method}+caps")
    return DiversityResult(
        order=[int(ranked[p.index]) for p in picks],
        scores=[p.score for p in picks],
        terms=[p.term for p in picks],
        reasons=[p.reason for p in picks],
        method=applied,
        notes=tuple(notes),
    )
