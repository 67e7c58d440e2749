"""Hybrid fusion behaves like OpenSearch's normalization and score-ranker processors."""

from __future__ import annotations

import pytest

from engines.fusion import min_max_fusion, rrf_fusion


def test_min_max_fusion_normalises_each_list_and_weights_them() -> None:
    bm25 = {"a": 10.0, "b": 5.0, "c": 0.0}
    knn = {"b": 0.9, "d": 0.7}
    fused = dict(min_max_fusion([bm25, knn], [0.5, 0.5]))
    assert fused == pytest.approx({"a": 0.5, "b": 0.75, "c": 0.0, "d": 0.0})
    assert [doc for doc, _ in min_max_fusion([bm25, knn], [0.5, 0.5])] == ["b", "a", "c", "d"]


def test_min_max_fusion_constant_list_scores_one() -> None:
    assert dict(min_max_fusion([{"a": 3.0, "b": 3.0}], [1.0])) == {"a": 1.0, "b": 1.0}


def test_min_max_fusion_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="one weight"):
        min_max_fusion([{"a": 1.0}], [0.5, 0.5])
    with pytest.raises(ValueError, match="positive"):
        min_max_fusion([{"a": 1.0}], [0.0])


def test_rrf_fusion_sums_reciprocal_ranks() -> None:
    fused = dict(rrf_fusion([["a", "b"], ["b", "c"]], rank_constant=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)
    assert next(iter(fused)) == "b"
