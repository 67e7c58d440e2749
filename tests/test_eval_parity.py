"""Engine parity figures on hand-built rankings: NDCG, recall and list overlap per engine and stage."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from engines.base import Hit, RetrievalQuery, RetrievalResult, SearchEngine
from evaluation.engine_parity import compare_engines, overlap
from relevance.judgments import Judgments
from shoprank.schema import Product


class FixedEngine:
    """Answers each (query text, mode) with a fixed ranking of ids."""

    def __init__(self, rankings: dict[tuple[str, str], list[str]]) -> None:
        self.rankings = rankings
        self.seen: list[RetrievalQuery] = []

    def retrieve(self, query: RetrievalQuery) -> RetrievalResult:
        self.seen.append(query)
        ids = self.rankings.get((query.text, query.mode), [])[: query.size]
        return RetrievalResult([Hit(Product(id=pid, title=pid), 1.0) for pid in ids])


class CountingEncoder:
    def __init__(self) -> None:
        self.calls = 0

    def encode_one(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        self.calls += 1
        return np.ones(4, dtype=np.float32)


def test_overlap_is_the_share_of_the_shorter_list_found_in_the_other() -> None:
    assert overlap(["a", "b"], ["b", "c", "d", "a"]) == 1.0
    assert overlap(["a", "b", "c", "d"], ["a", "x"]) == 0.5
    assert overlap([], ["a"]) is None


def test_parity_scores_each_engine_and_compares_their_lists() -> None:
    judgments = Judgments({"red shoe": {"a": 1.0, "b": 0.1}, "kettle": {"k": 1.0}})
    first = FixedEngine(
        {
            ("red shoe", "bm25"): ["a", "b", "c"],
            ("kettle", "bm25"): ["k"],
            ("red shoe", "knn"): ["a", "b"],
            ("kettle", "knn"): ["k", "z"],
        }
    )
    second = FixedEngine(
        {
            ("red shoe", "bm25"): ["c", "x", "y"],  # a and b missing: NDCG 0
            ("kettle", "bm25"): [],  # no hits at all
            ("red shoe", "knn"): ["a", "b"],
            ("kettle", "knn"): ["k", "z"],
        }
    )
    encoder = CountingEncoder()
    report = compare_engines(
        {"one": cast(SearchEngine, first), "two": cast(SearchEngine, second)},
        encoder,
        judgments,
        window=3,
        stages=("bm25", "knn"),
    )
    assert encoder.calls == 2  # one embedding per query, shared by both engines
    assert {q.size for q in first.seen + second.seen} == {3}
    bm25 = report.stages["bm25"]
    assert bm25.ndcg["one"] == [1.0, 1.0]
    assert bm25.ndcg["two"] == [0.0, 0.0]
    assert bm25.recall["two"] == [0.0, 0.0]
    assert bm25.overlap_window == [pytest.approx(1 / 3)]  # the kettle query has an empty list: left out
    assert bm25.empty == {"two": 1}
    knn = report.stages["knn"]
    assert knn.overlap_window == [1.0, 1.0]
    assert knn.overlap_page == [1.0, 1.0]
    data = report.as_dict()
    assert data["stages"]["bm25"]["ndcg@10 difference"]["one - two"]["mean"] == 1.0
    assert data["stages"]["knn"]["ndcg@10"]["one"]["mean"] == data["stages"]["knn"]["ndcg@10"]["two"]["mean"]
    table = report.format()
    assert "| bm25 | 1.000 [1.000, 1.000] | 0.000 [0.000, 0.000] | +1.000" in table


def test_parity_compares_exactly_two_engines() -> None:
    with pytest.raises(ValueError, match="two engines"):
        compare_engines({"one": cast(SearchEngine, FixedEngine({}))}, CountingEncoder(), Judgments({"q": {}}))
