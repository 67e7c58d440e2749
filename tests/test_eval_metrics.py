"""Ranking metrics and bootstrap intervals on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from evaluation.bootstrap import bootstrap_ci, paired_difference
from relevance.metrics import dcg, has_relevant, ndcg_at_k, recall_at_n, reciprocal_rank

# One query: two exact, one substitute, one complement, one irrelevant (ESCI gains).
JUDGED = {"e1": 1.0, "e2": 1.0, "s": 0.1, "c": 0.01, "i": 0.0}


def test_dcg_uses_log2_rank_plus_one_discounts() -> None:
    assert dcg([1.0, 0.1, 0.0, 1.0], 4) == pytest.approx(1.0 + 0.1 / math.log2(3) + 1.0 / math.log2(5))
    assert dcg([1.0, 1.0], 1) == pytest.approx(1.0)


def test_ndcg_of_the_ideal_order_is_one_and_of_a_worse_order_less() -> None:
    assert ndcg_at_k(["e1", "e2", "s", "c", "i"], JUDGED, 10) == pytest.approx(1.0)
    # i, s, e1 at ranks 1..3: DCG = 0 + 0.1/log2(3) + 1/log2(4) = 0.563093;
    # ideal (e1, e2, s) = 1 + 1/log2(3) + 0.1/log2(4) = 1.680930
    ideal = 1.0 + 1.0 / math.log2(3) + 0.1 / math.log2(4)
    expected = (0.1 / math.log2(3) + 1.0 / math.log2(4)) / ideal
    assert ndcg_at_k(["i", "s", "e1"], JUDGED, 3) == pytest.approx(expected)
    assert ndcg_at_k(["i", "s", "e1"], JUDGED, 3) == pytest.approx(0.334989, abs=1e-5)


def test_ndcg_counts_unjudged_products_as_gain_zero_and_ideal_from_all_judgments() -> None:
    # End to end: the engine found only one exact product; the ideal still has both.
    value = ndcg_at_k(["x", "e1", "y"], JUDGED, 2)
    ideal = 1.0 + 1.0 / math.log2(3)
    assert value == pytest.approx((1.0 / math.log2(3)) / ideal)


def test_ndcg_is_zero_for_a_query_without_gain() -> None:
    assert ndcg_at_k(["a", "b"], {"a": 0.0, "b": 0.0}, 10) == 0.0


def test_reciprocal_rank_needs_at_least_a_substitute() -> None:
    assert reciprocal_rank(["i", "c", "s", "e1"], JUDGED) == pytest.approx(1 / 3)
    assert reciprocal_rank(["i", "c"], JUDGED) == 0.0
    assert reciprocal_rank(["i", "e2"], JUDGED, min_gain=1.0) == pytest.approx(0.5)


def test_recall_counts_relevant_judged_products_in_the_first_n() -> None:
    # Relevant (gain >= 0.1): e1, e2, s.
    assert recall_at_n(["e1", "x", "s", "e2"], JUDGED, 3) == pytest.approx(2 / 3)
    assert recall_at_n(["e1", "x", "s", "e2"], JUDGED, 100) == pytest.approx(1.0)
    assert recall_at_n(["c", "i"], JUDGED, 100) == 0.0
    assert not has_relevant({"c": 0.01, "i": 0.0})


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_the_mean() -> None:
    values = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.8]
    first, again = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=3)
    assert first == again
    assert first.mean == pytest.approx(0.5)
    assert first.low < first.mean < first.high
    assert bootstrap_ci(values, seed=4) != first


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    interval = bootstrap_ci([0.4] * 10)
    assert (interval.low, interval.mean, interval.high) == pytest.approx((0.4, 0.4, 0.4))


def test_paired_difference_sees_a_consistent_small_gain_that_unpaired_noise_hides() -> None:
    baseline = [0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8, 0.4, 0.6, 0.35]
    result = [b + 0.02 for b in baseline]
    diff = paired_difference(result, baseline)
    assert diff.mean == pytest.approx(0.02)
    assert diff.excludes_zero()
    mixed = paired_difference([b + (0.05 if i % 2 else -0.05) for i, b in enumerate(baseline)], baseline)
    assert not mixed.excludes_zero()
    with pytest.raises(ValueError, match="one value per query"):
        paired_difference([0.1], [0.1, 0.2])
