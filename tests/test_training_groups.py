"""Training data: groups from judgments, hard negatives, pseudo-queries, losses."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from relevance.judgments import Judgments, split_queries
from shoprank.schema import Product
from training.config import Holdout, TrainConfig
from training.distillation import distillation_groups, teacher_targets
from training.groups import Group, labelled_groups, target_for
from training.hard_negatives import RetrievedLists, select_hard_negatives
from training.losses import listwise_softmax_ce, pointwise_bce
from training.pipeline import training_queries
from training.pseudo_queries import pseudo_groups, pseudo_queries, pseudo_query, title_words

SLIPPERS = Product(
    id="P1",
    title="UGG Women's Fluff Yeah Slide Slipper, Black",
    brand="UGG",
    color="Black",
    category=["Clothing, Shoes & Jewelry", "Women", "Shoes", "Slippers"],
)


def _product(pid: str, title: str) -> Product:
    return Product(id=pid, title=title)


def test_targets_follow_the_recipe() -> None:
    config = TrainConfig(target_s=0.3, target_c=0.05)
    assert [target_for(g, config) for g in (1.0, 0.1, 0.01, 0.0)] == [1.0, 0.3, 0.05, 0.0]


def test_labelled_groups_keep_catalogue_products_and_append_weighted_hard_negatives() -> None:
    judgments = Judgments({"q": {"A": 1.0, "B": 0.1, "gone": 1.0}})
    available = {"A": 1, "B": 1, "H": 1, "H2": 1}
    config = TrainConfig(hard_negative_weight=0.25)
    (group,) = labelled_groups(judgments, config, available, {"q": ["A", "H", "missing"]})
    assert group.product_ids == ("A", "B", "H")  # judged A is not also a negative; unknown ids dropped
    assert group.targets == (1.0, 0.1, 0.0)
    assert group.weights == (1.0, 1.0, 0.25)


def test_sampling_keeps_a_best_product_and_the_size() -> None:
    group = Group("q", tuple("abcdefghij"), (0.0,) * 9 + (1.0,), (1.0,) * 10)
    for seed in range(20):
        sampled = group.sample(3, random.Random(seed))
        assert len(sampled.product_ids) == 3
        assert "j" in sampled.product_ids
        assert dict(zip(sampled.product_ids, sampled.targets, strict=True))["j"] == 1.0
    assert group.sample(50, random.Random(0)) is group


def test_hard_negatives_skip_the_top_unjudged_hits() -> None:
    judgments = Judgments({"q": {"A": 1.0, "B": 0.0}})
    hits = {"q": ["A", "U1", "B", "U2", "U3", "U4", "U5"]}
    assert select_hard_negatives(hits, judgments, count=2, skip=1) == {"q": ["U2", "U3"]}
    assert select_hard_negatives(hits, judgments, count=10, skip=0) == {"q": ["U1", "U2", "U3", "U4", "U5"]}


def test_title_words_drop_stopwords_and_repeats() -> None:
    assert title_words("The Kitchen Towels for the Kitchen, 100% Cotton - Pack of 6") == [
        "kitchen",
        "towels",
        "100",
        "cotton",
        "6",
    ]


def test_pseudo_queries_come_from_the_product_and_are_reproducible() -> None:
    vocabulary = {*title_words(SLIPPERS.title), "ugg", "black", "slippers", "women"}
    queries = {pseudo_query(SLIPPERS, random.Random(seed)) for seed in range(40)}
    assert len(queries) > 3  # several templates are used
    for query in queries:
        assert query is not None
        assert set(query.split()) <= vocabulary
    products = [SLIPPERS, _product("P2", "Kindle Paperwhite 8 GB"), _product("P3", "Lodge Cast Iron Skillet")]
    first = pseudo_queries(products, 3, seed=5)
    assert first == pseudo_queries(products, 3, seed=5)
    banned = pseudo_queries(products, 3, seed=5, exclude=[first[0][0]])
    assert first[0][0] not in [q for q, _ in banned]


def test_pseudo_groups_take_the_source_as_positive_and_skip_its_variants() -> None:
    products = {
        "P1": SLIPPERS,
        "V": _product("V", SLIPPERS.title),  # a size variant: same title, not a negative
        "N1": _product("N1", "Dearfoams Slipper"),
        "N2": _product("N2", "Crocs Clog"),
        "TOP": _product("TOP", "UGG Slide"),
    }
    hits = {"ugg slippers": ["TOP", "P1", "V", "N1", "N2"]}
    (group,) = pseudo_groups([("ugg slippers", SLIPPERS)], hits, products, negatives_from=1, negatives=5)
    assert group.product_ids == ("P1", "N1", "N2")
    assert group.targets == (1.0, 0.0, 0.0)
    assert group.kind == "pseudo"


def test_listwise_loss_is_the_cross_entropy_against_normalised_targets() -> None:
    logits = torch.tensor([2.0, 0.0, 0.0])
    targets = torch.tensor([1.0, 1.0, 0.0])
    log_z = math.log(math.exp(2) + 2)
    expected = -(0.5 * (2 - log_z) + 0.5 * (0 - log_z))
    assert float(listwise_softmax_ce(logits, targets)) == pytest.approx(expected, rel=1e-6)
    assert float(listwise_softmax_ce(logits, torch.zeros(3))) == 0.0


def test_pointwise_loss_weights_pairs() -> None:
    logits = torch.tensor([0.0, 0.0])
    targets = torch.tensor([1.0, 0.0])
    # Both pairs cost log 2 at logit 0, whatever their weights.
    assert float(pointwise_bce(logits, targets, torch.tensor([1.0, 0.1]))) == pytest.approx(math.log(2), rel=1e-6)
    confident = torch.tensor([5.0, -5.0])
    assert float(pointwise_bce(confident, targets, torch.ones(2))) < 0.01


def test_teacher_targets_are_a_softmax_that_sharpens_with_lower_temperature() -> None:
    cosines = np.array([0.8, 0.6, 0.2], dtype=np.float32)
    soft, sharp = teacher_targets(cosines, 1.0), teacher_targets(cosines, 0.05)
    assert sum(soft) == pytest.approx(1.0)
    assert soft[0] > soft[1] > soft[2]
    assert soft[0] == pytest.approx(math.exp(0.8) / (math.exp(0.8) + math.exp(0.6) + math.exp(0.2)), rel=1e-5)
    assert sharp[0] > 0.98


def test_distillation_groups_order_targets_by_bi_encoder_cosine() -> None:
    products = {"A": _product("A", "far"), "B": _product("B", "near"), "C": _product("C", "no vector")}
    retrieved = RetrievedLists(
        ids={"q": ["A", "B", "C", "missing"]},
        query_vectors={"q": np.array([1.0, 0.0], dtype=np.float32)},
        product_vectors={"A": np.array([0.0, 1.0], dtype=np.float32), "B": np.array([0.8, 0.6], dtype=np.float32)},
    )
    (group,) = distillation_groups(retrieved, products, size=10, temperature=0.1)
    assert group.product_ids == ("A", "B")
    assert group.targets == pytest.approx(teacher_targets(np.array([0.0, 0.8], dtype=np.float32), 0.1))
    assert group.targets[1] > group.targets[0]
    assert group.weights == (0.0, 0.0)  # listwise only
    assert group.kind == "distill"


@pytest.mark.parametrize(
    ("holdout", "trained", "scored"),
    [("test", ("train", "dev"), ("",)), ("dev", ("train",), ("dev",)), ("train", ("dev", "test"), ("train",))],
)
def test_each_holdout_trains_on_the_other_parts_and_scores_its_own(
    holdout: Holdout, trained: tuple[str, ...], scored: tuple[str, ...]
) -> None:

    split = split_queries([f"q{i}" for i in range(100)], dev=20, test=30)
    parts = {"train": list(split.train), "dev": list(split.dev), "test": list(split.test), "": []}
    on, figures = training_queries(split, TrainConfig(holdout=holdout))
    assert on == [q for part in trained for q in parts[part]]
    assert figures == [q for part in scored for q in parts[part]]
    assert not set(on) & set(parts["test" if holdout == "test" else holdout])
