"""eval-intent's measurement: settings chosen out of fold, baselines and the WANDS check on known data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
