"""Diversity metrics on hand-computed examples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from evaluation.diversity_metrics import (
    UNCATEGORISED_ASPECT,
    alpha_ndcg_at_k,
    brand_coverage_at_k,
    category_aspects,
    category_coverage_at_k,
    coverage_at_k,
    entropy_at_k,
    ideal_alpha_ranking,
    intra_list_diversity,
    page_diversity,
)

LOG2_3 = math.log2(3)


@dataclass(frozen=True)
class Item:
    brand: str
    category: Sequence[str]


def test_category_coverage_counts_distinct_leaf_paths_over_k() -> None:
    categories = [["A", "x"], ["A", "x"], ["B", "y"], []]
    assert category_coverage_at_k(categories, 4) == 0.5  # {A>x, B>y}; no category counts nothing
    assert category_coverage_at_k(categories, 10) == 0.2  # a short list is scored over k
    assert category_coverage_at_k(categories, 1) == 1.0
    # Same leaf name under different parents is a different category.
    assert category_coverage_at_k([["Phones", "Cases"], ["Cameras", "Cases"]], 2) == 1.0
    assert category_coverage_at_k([], 10) == 0.0


def test_brand_coverage_ignores_case_spaces_and_missing_brands() -> None:
    assert brand_coverage_at_k(["Nike", "nike ", "Adidas", ""], 4) == 0.5
    assert brand_coverage_at_k(["", ""], 2) == 0.0
    assert coverage_at_k(["a", "b", "c"], 2) == 1.0


def test_entropy_in_bits_of_known_values() -> None:
    expected = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert entropy_at_k(["a", "a", "b", ""], 4) == pytest.approx(expected)  # 0.918
    assert entropy_at_k(["a", "b", "c", "d"], 4) == pytest.approx(2.0)
    assert entropy_at_k(["a", "b", "c", "d"], 2) == pytest.approx(1.0)
    assert entropy_at_k(["a", "a"], 2) == 0.0
    assert entropy_at_k(["", ""], 2) == 0.0


def test_intra_list_diversity_is_mean_pairwise_cosine_distance() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
    distance_13 = 1 - 1 / math.sqrt(2)
    # pairs: (1,2) distance 1, (1,3) and (2,3) 1 - cos 45 degrees; the zero row is left out
    assert intra_list_diversity(rows, 4) == pytest.approx((1 + 2 * distance_13) / 3)
    assert intra_list_diversity(rows, 2) == pytest.approx(1.0)
    assert intra_list_diversity(rows[:1], 10) == 0.0
    assert intra_list_diversity(np.array([[1.0, 0.0], [-1.0, 0.0]]), 2) == pytest.approx(2.0)


GAINS = {"d1": 1.0, "d2": 1.0, "d3": 1.0, "d4": 0.0, "d5": 0.1}
ASPECTS = {"d1": {"X"}, "d2": {"X"}, "d3": {"Y"}, "d4": {"X"}, "d5": {"Z"}}


def test_alpha_ndcg_discounts_a_repeated_aspect() -> None:
    # ranking d1 d2 d3: gains 1, 1 * 0.5 (X seen once), 1; ideal d1 d3 d2: 1, 1, 0.5
    dcg = 1 + 0.5 / LOG2_3 + 1 / 2
    ideal = 1 + 1 / LOG2_3 + 0.5 / 2
    assert alpha_ndcg_at_k(["d1", "d2", "d3"], GAINS, ASPECTS, 3) == pytest.approx(dcg / ideal)
    assert alpha_ndcg_at_k(["d1", "d3", "d2"], GAINS, ASPECTS, 3) == pytest.approx(1.0)
    assert ideal_alpha_ranking(GAINS, ASPECTS, 4) == ["d1", "d3", "d2", "d5"]


def test_alpha_ndcg_graded_gains_irrelevant_items_and_alpha() -> None:
    # d4 is irrelevant: it covers nothing, so X is still new at rank 2.
    ideal_2 = 1 + 1 / LOG2_3
    assert alpha_ndcg_at_k(["d4", "d1"], GAINS, ASPECTS, 2) == pytest.approx((1 / LOG2_3) / ideal_2)
    # graded: a substitute (0.1) on a new aspect after an exact match
    assert alpha_ndcg_at_k(["d1", "d5"], GAINS, ASPECTS, 2) == pytest.approx((1 + 0.1 / LOG2_3) / ideal_2)
    # alpha = 0: no novelty discount (plain NDCG over aspect hits); the ideal ties break by id
    assert alpha_ndcg_at_k(["d1", "d2"], GAINS, ASPECTS, 2, alpha=0.0) == pytest.approx(1.0)
    assert alpha_ndcg_at_k(["unjudged", "d1"], GAINS, ASPECTS, 2) == pytest.approx((1 / LOG2_3) / ideal_2)
    assert alpha_ndcg_at_k(["d4"], {"d4": 0.0}, ASPECTS, 10) == 0.0
    with pytest.raises(ValueError, match="alpha"):
        alpha_ndcg_at_k(["d1"], GAINS, ASPECTS, 1, alpha=1.5)
    with pytest.raises(ValueError, match="k must be at least 1"):
        alpha_ndcg_at_k(["d1"], GAINS, ASPECTS, 0)


def test_alpha_ndcg_with_products_covering_several_aspects() -> None:
    gains = {"a": 1.0, "b": 1.0, "c": 1.0}
    aspects = {"a": {"X", "Y"}, "b": {"X"}, "c": {"Y"}}
    assert ideal_alpha_ranking(gains, aspects, 3) == ["a", "b", "c"]  # 2, then 0.5 each
    ideal = 2 + 0.5 / LOG2_3 + 0.5 / 2
    assert alpha_ndcg_at_k(["b", "c", "a"], gains, aspects, 3) == pytest.approx((1 + 1 / LOG2_3 + 1 / 2) / ideal)


def test_page_diversity_on_products() -> None:
    products = {
        "p1": Item("Acme", ["Home", "Mugs"]),
        "p2": Item("acme", ["Home", "Mugs"]),
        "p3": Item("Zed", ["Home", "Plates"]),
        "p4": Item("", []),
    }
    gains = {"p1": 1.0, "p2": 1.0, "p3": 1.0, "p4": 1.0}
    assert category_aspects(products)["p4"] == frozenset({UNCATEGORISED_ASPECT})
    embeddings = {pid: np.eye(4, dtype=np.float32)[i] for i, pid in enumerate(products)}
    page = page_diversity(["p1", "p2", "p3", "p4"], products, gains, k=4, embeddings=embeddings)
    assert page.category_coverage == 0.5
    assert page.brand_coverage == 0.5
    assert page.brand_entropy == pytest.approx(-(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3)))
    assert page.category_entropy == page.brand_entropy
    assert page.ild == pytest.approx(1.0)
    # ideal: p1, p3, p4 (three aspects), then p2 at 0.5; this page puts p2 second
    dcg = 1 + 0.5 / LOG2_3 + 1 / 2 + 1 / math.log2(5)
    ideal = 1 + 1 / LOG2_3 + 1 / 2 + 0.5 / math.log2(5)
    assert page.alpha_ndcg == pytest.approx(dcg / ideal)
    assert page_diversity(["p1"], products, gains, k=10).ild is None
    # An id the caller has no product or vector for still takes its slot.
    partial = page_diversity(["p1", "gone", "p3"], products, gains, k=3, embeddings={"p1": embeddings["p1"]})
    assert partial.brand_coverage == pytest.approx(2 / 3)
    assert partial.ild == 0.0
