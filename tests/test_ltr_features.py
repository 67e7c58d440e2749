"""The LTR features on hand-built products and queries: exact values, and NaN where a request lacks one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sidecar.domain import CandidateProduct
from sidecar.ltr_features import (
    FEATURE_INDEX,
    FEATURES,
    RATING_PRIOR_COUNT,
    cosines,
    coverage,
    number_tokens,
    query_terms,
    window_features,
)

TRESEMME = CandidateProduct(
    title="TRESemmé Anti-Breakage Shampoo 28 oz",
    brand="TRESemmé",
    category=("Beauty", "Hair Care", "Shampoo"),
    color="Clear",
    rating=4.5,
    rating_count=100,
    price=5.0,
)
DOVE = CandidateProduct(title="Dove shampoo 12 oz bottle", brand="Dove", color="white", price=10.0, rating=5.0)
BARE = CandidateProduct(title="Unbranded bottle")


def column(matrix: np.ndarray, name: str) -> list[float]:
    return [float(x) for x in matrix[:, FEATURE_INDEX[name]]]


def same(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == pytest.approx(y) for x, y in zip(a, b, strict=True))


def test_query_terms_drop_stopwords_fold_plurals_and_repeats() -> None:
    assert query_terms("Towels for the kitchen, towel") == ["towel", "kitchen"]
    assert query_terms("boxes glasses") == ["box", "glass"]


def test_number_tokens_join_a_following_unit() -> None:
    assert number_tokens("Shampoo 28 oz, pack of 2") == {"28oz", "2"}
    assert number_tokens("32GB card") == {"32gb"}


def test_coverage_is_the_share_of_query_terms_in_the_text() -> None:
    assert coverage(["shampoo", "28", "clear"], TRESEMME.title) == pytest.approx(2 / 3)
    assert math.isnan(coverage([], "anything"))


def test_window_features_exact_values() -> None:
    m = window_features("tresemme shampoo 28 oz clear", [TRESEMME, DOVE, BARE], [2.0, 1.0, 0.0], [3.0, -1.0, 1.0])
    assert m.shape == (3, len(FEATURES))
    assert column(m, "ce_logit") == [3.0, -1.0, 1.0]
    assert same(column(m, "ce_window"), [1.0, 0.0, 0.5])
    assert same(column(m, "ce_rank"), [0.0, 1.0, 0.5])
    assert same(column(m, "first_stage_window"), [1.0, 0.5, 0.0])
    assert column(m, "first_stage_rank") == [0.0, 1.0, 2.0]
    # Terms: tresemme, shampoo, 28, oz, clear; Dove has shampoo and oz (12 oz, not 28).
    assert same(column(m, "title_coverage"), [4 / 5, 2 / 5, 0.0])
    assert same(column(m, "text_coverage"), [1.0, 2 / 5, 0.0])
    assert same(column(m, "names_brand"), [1.0, 0.0, math.nan])  # "tresemme" names TRESemmé, accents aside
    assert same(column(m, "names_other_brand"), [0.0, 1.0, 1.0])
    assert same(column(m, "colour_match"), [1.0, 0.0, math.nan])
    assert same(column(m, "query_colour_missing"), [0.0, 1.0, 1.0])
    assert same(column(m, "number_coverage"), [1.0, 0.0, 0.0])  # "28oz" in the first only
    assert same(column(m, "rating"), [4.5, 5.0, math.nan])
    assert same(column(m, "rating_count_log"), [math.log1p(100), math.nan, math.nan])
    prior = (4.5 + 5.0) / 2
    first = (4.5 * 100 + prior * RATING_PRIOR_COUNT) / (100 + RATING_PRIOR_COUNT)
    assert same(column(m, "rating_shrunk"), [first, prior, math.nan])  # no count: the prior alone
    assert same(column(m, "price_percentile"), [0.0, 1.0, math.nan])
    assert same(column(m, "knn_cosine"), [math.nan] * 3)


def test_missing_inputs_are_nan_not_errors() -> None:
    m = window_features("towels", [BARE], [0.0])
    assert all(math.isnan(x) for x in m[0, [FEATURE_INDEX[f] for f in ("ce_logit", "rating", "price_percentile")]])
    assert window_features("towels", [], []).shape == (0, len(FEATURES))
    assert same(column(window_features("no numbers here", [DOVE], [1.0]), "number_coverage"), [math.nan])


def test_cosines_per_candidate_nan_without_an_embedding() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    got = cosines(q, [np.array([2.0, 0.0], dtype=np.float32), None, np.array([0.0, 3.0], dtype=np.float32)])
    assert got is not None
    assert same(got, [1.0, math.nan, 0.0])
    assert cosines(q, [None, None]) is None
    assert cosines(None, [q]) is None
