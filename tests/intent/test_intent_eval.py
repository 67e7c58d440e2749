"""eval-intent's measurement: settings chosen out of fold, baselines and the WANDS check on known data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from evaluation.intent_quality import OFF, Prediction, QueryIntent, out_of_fold
from evaluation.intent_wands import load_wands_queries, measure_wands


def _query(name: str, scores: dict[tuple[float, float], float]) -> QueryIntent:
    return QueryIntent(name, {"Mugs"}, {"intent": Prediction(("Mugs",), 1.0)}, 0.9, scores)


def test_each_fold_is_scored_with_the_setting_the_other_folds_chose() -> None:
    boost = (0.5, 1.0)
    # Nine queries gain from the boost; one loses: its own fold must still use the boost.
    queries = [_query(f"q{i}", {OFF: 0.5, boost: 0.7}) for i in range(9)] + [_query("loser", {OFF: 0.5, boost: 0.1})]
    values, chosen = out_of_fold(queries, [OFF, boost], folds=5)
    assert chosen == [boost] * 5
    assert values == pytest.approx([0.7] * 9 + [0.1])


def test_a_setting_that_helps_only_the_held_out_fold_is_not_chosen_for_it() -> None:
    boost = (0.5, 1.0)
    # Each query is its own fold (folds = queries): the boost helps only "lucky", so lucky's fold
    # (trained on the others, where the boost loses) keeps intent off, and the others see it lose.
    queries = [_query(f"q{i}", {OFF: 0.5, boost: 0.45}) for i in range(4)] + [_query("lucky", {OFF: 0.5, boost: 1.0})]
    values, chosen = out_of_fold(queries, [OFF, boost], folds=5)
    lucky = [v for q, v in zip(queries, values, strict=True) if q.query == "lucky"]
    assert lucky == [0.5]
    assert chosen.count(OFF) == 1


def test_equal_settings_keep_the_simplest() -> None:
    boost = (0.5, 1.0)
    queries = [_query(f"q{i}", {OFF: 0.5, boost: 0.5}) for i in range(5)]
    assert out_of_fold(queries, [OFF, boost], folds=5)[1] == [OFF] * 5


class ClassEncoder:
    """Each query's vector is its class's direction plus a little noise (the class is its first word)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(1)
        self.directions: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            cls = text.split()[0]
            if cls not in self.directions:
                self.directions[cls] = self.rng.normal(size=8)
            v = self.directions[cls] + 0.1 * self.rng.normal(size=8)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


def test_the_wands_check_learns_classes_from_half_the_queries(tmp_path: Path) -> None:
    path = tmp_path / "query.csv"
    rows = ["query_id\tquery\tquery_class"]
    rows += [f"{i}\t{cls} query {i}\t{cls.title()}" for i, cls in enumerate(["sofa", "lamp", "rug", "desk"] * 10)]
    rows.append("99\tunclassified query\t")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    queries = load_wands_queries(path)
    assert len(queries) == 40  # the row without a class is left out
    report = measure_wands(queries, ClassEncoder())
    assert (report.train, report.test, report.classes, report.unseen) == (20, 20, 4, 0)
    assert report.accuracy("intent", 1).mean == 1.0
    assert report.accuracy("majority", 1).mean < 0.5


def test_a_wands_file_without_its_columns_says_which(tmp_path: Path) -> None:
    path = tmp_path / "query.csv"
    path.write_text("id,query\n1,sofa\n", encoding="utf-8")
    with pytest.raises(ValueError, match="query_class"):
        load_wands_queries(path)


def test_the_served_ranking_is_chosen_out_of_fold_on_its_own_ndcg() -> None:
    boost = (0.5, 1.0)
    # The boost helps the first stage everywhere but hurts the reranked page: each measure chooses its own.
    queries = [_query(f"q{i}", {OFF: 0.5, boost: 0.7}) for i in range(5)]
    for q in queries:
        q.served = {OFF: 0.8, boost: 0.6}
    assert out_of_fold(queries, [OFF, boost], folds=5)[1] == [boost] * 5
    values, chosen = out_of_fold(queries, [OFF, boost], folds=5, scores=lambda q: q.served)
    assert chosen == [OFF] * 5
    assert values == pytest.approx([0.8] * 5)


def test_the_grid_reranks_the_boosted_window_it_would_send() -> None:
    from engines.base import Hit
    from evaluation.intent_quality import _ndcg_grid
    from intent.model import IntentDistribution
    from shoprank.schema import Product

    intent = IntentDistribution(("Mugs",), (0.9,))
    hits = [
        Hit(Product(id=pid, title=pid, category=["Home", cat]), score)
        for pid, cat, score in (("lamp", "Lamps", 3.0), ("kettle", "Kettles", 2.0), ("mug", "Mugs", 1.0))
    ]
    sent: list[list[str]] = []

    def rerank(query: str, window: Sequence[Hit]) -> list[str]:
        sent.append([h.product.id for h in window])
        return sorted(h.product.id for h in window)  # kettle, lamp, mug

    gains = {"mug": 1.0}
    first, served = _ndcg_grid("mug", hits, None, intent, gains, "leaf", rerank)
    assert first[OFF] == pytest.approx(0.5)  # the mug third
    assert first[(2.0, 1.0)] == 1.0  # boosted to the top
    assert served[OFF] == pytest.approx(0.5)  # the reranker's own order puts it third whatever it is sent
    assert sent[0] == ["lamp", "kettle", "mug"]
    assert ["mug", "lamp", "kettle"] in sent  # the boosted window is what the reranker saw
    assert set(served) == set(first)


def test_the_memo_scorer_scores_each_pair_once_with_the_same_logits() -> None:
    from evaluation.memo_scorer import MemoScorer
    from shoprank.schema import Product
    from shoprank.template import ProductText
    from sidecar.domain import PairScores

    class Counting:
        version = "m1"

        def __init__(self) -> None:
            self.pairs = 0

        def score(self, query: str, products: Sequence[ProductText], *args: object, **kw: object) -> PairScores:
            self.pairs += len(products)
            return PairScores(np.array([len(p.title) / 3 for p in products], dtype=np.float32))

    inner = Counting()
    memo = MemoScorer(inner)
    a, b, c = (Product(id=t, title=t) for t in ("ab", "abcd", "abcdefg"))
    first = memo.score("q", [a, b], ids=["a", "b"])
    again = memo.score("q", [b, c, a], ids=["b", "c", "a"])
    assert inner.pairs == 3
    assert again.cache_hits == 2
    assert again.logits.tolist() == [first.logits[1], np.float32(7 / 3), first.logits[0]]
    with pytest.raises(ValueError, match="ids"):
        memo.score("q", [a])


def test_the_engine_boost_grid_sends_weight_times_probability_per_category() -> None:
    from dataclasses import replace as with_

    from engines.base import CategoryBoost, Hit, RetrievalQuery, RetrievalResult, SearchEngine
    from evaluation.intent_quality import BOOSTS, _engine_grid
    from intent.model import IntentDistribution
    from shoprank.schema import Product

    class BoostedEngine:
        def __init__(self) -> None:
            self.seen: list[tuple[CategoryBoost, ...]] = []

        def retrieve(self, query: RetrievalQuery) -> RetrievalResult:
            self.seen.append(query.boosts)
            lifted = query.boosts and query.boosts[0].weight >= 0.5  # a strong enough Mugs boost lifts the mug
            ids = ["mug", "lamp"] if lifted else ["lamp", "mug"]
            return RetrievalResult([Hit(Product(id=pid, title=pid), 1.0) for pid in ids])

    engine = BoostedEngine()
    intent = IntentDistribution(("Mugs", "Kettles"), (0.5, 0.25))
    query = RetrievalQuery("mug", None, "hybrid", 2)
    first, served = _engine_grid(
        cast(SearchEngine, engine), query, intent, {"mug": 1.0}, (0.25, 0.75), lambda q, hits: ["mug"]
    )
    assert engine.seen[0] == (CategoryBoost("Mugs", BOOSTS[1] * 0.5), CategoryBoost("Kettles", BOOSTS[1] * 0.25))
    assert len(engine.seen) == len(BOOSTS) - 1  # every weight but 0, which is intent off
    assert first[OFF] == 0.25  # off comes from the plain first stage, not a second retrieval
    assert first[(1.0, 1.0)] == 1.0  # 1.0 x 0.5 lifts the mug first
    assert first[(0.5, 1.0)] == pytest.approx(0.63092975)  # 0.25: still second
    assert served == {setting: 1.0 for setting in first if setting != OFF} | {OFF: 0.75}
    assert with_(query, boosts=()) == query
