"""The intent model on a synthetic catalogue: known categories give a known top-1, at both depths;
a model built for another index version is refused; boost and filter do what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.base import Filters, Hit
from frontdoor.intent_policy import boost_hits, intent_filters, intent_ordered_categories
from intent.apply import boosted_scores, confident_category
from intent.model import INTENT_DEPTHS, CategorySums, IntentDistribution, IntentModel, label_at_depth
from intent.store import IntentModelError, StaleIntentModelError, load_model, save_sums
from shoprank.schema import Product
from shoprank.settings import Settings

DIM = 16
PATHS = {
    "mugs": ["Home", "Kitchen", "Mugs"],
    "kettles": ["Home", "Kitchen", "Kettles"],
    "lamps": ["Home", "Lighting", "Desk Lamps"],
    "sneakers": ["Clothing", "Footwear", "Sneakers"],
}


def _unit(v: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (v / np.linalg.norm(v)).astype(np.float32)
    return unit


def _catalogue(per_kind: dict[str, int] | None = None) -> tuple[list[Product], np.ndarray, dict[str, np.ndarray]]:
    """Products of each kind scattered around one direction per kind."""
    rng = np.random.default_rng(3)
    directions = {kind: _unit(rng.normal(size=DIM)) for kind in PATHS}
    products, vectors = [], []
    for kind, path in PATHS.items():
        for i in range((per_kind or {}).get(kind, 20)):
            products.append(Product(id=f"{kind}-{i}", title=f"{kind} {i}", category=path))
            vectors.append(_unit(directions[kind] + 0.3 * rng.normal(size=DIM)))
    return products, np.stack(vectors), directions


def _model(depth: str = "leaf", per_kind: dict[str, int] | None = None) -> tuple[IntentModel, dict[str, np.ndarray]]:
    products, vectors, directions = _catalogue(per_kind)
    sums = CategorySums(DIM)
    sums.add(products[:30], vectors[:30])  # in two batches, as the indexer adds them
    sums.add(products[30:], vectors[30:])
    return IntentModel.from_sums("v1", *sums.arrays(), depth=depth), directions  # type: ignore[arg-type]


def test_a_query_near_a_category_predicts_it_first_with_most_of_the_mass() -> None:
    model, directions = _model()
    assert set(model.labels) == {"Mugs", "Kettles", "Desk Lamps", "Sneakers"}
    for kind, leaf in (("mugs", "Mugs"), ("lamps", "Desk Lamps"), ("sneakers", "Sneakers")):
        intent = model.predict(directions[kind], top=3)
        assert intent.categories[0] == leaf
        assert intent.probabilities[0] > 0.9
        assert list(intent.probabilities) == sorted(intent.probabilities, reverse=True)
    assert model.probabilities(directions["mugs"]).sum() == pytest.approx(1.0, abs=1e-5)


def test_between_two_categories_the_mass_is_shared() -> None:
    model, directions = _model()
    intent = model.predict(_unit(directions["mugs"] + directions["kettles"]), top=2)
    assert set(intent.categories) == {"Mugs", "Kettles"}
    assert all(0.2 < p < 0.8 for p in intent.probabilities)


def test_the_prior_favours_the_category_the_catalogue_stocks_more_of() -> None:
    model, directions = _model(per_kind={"mugs": 60, "kettles": 3})
    query = _unit(directions["mugs"] + directions["kettles"])
    intent = model.predict(query, top=2)
    assert intent.categories[0] == "Mugs"
    flat = IntentModel.from_sums("v1", *_sums(per_kind={"mugs": 60, "kettles": 3}), prior_weight=0.0)
    assert model.predict(query).probability("Mugs") > flat.predict(query).probability("Mugs")


def _sums(per_kind: dict[str, int] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    products, vectors, _ = _catalogue(per_kind)
    sums = CategorySums(DIM)
    sums.add(products, vectors)
    return sums.arrays()


def test_at_depth_2_leaves_are_grouped_under_their_second_level() -> None:
    model, directions = _model(depth="2")
    assert set(model.labels) == {"Kitchen", "Lighting", "Footwear"}
    assert model.predict(directions["kettles"]).categories[0] == "Kitchen"
    assert model.predict(directions["mugs"]).categories[0] == "Kitchen"
    assert label_at_depth(["Books"], "2") == "Books"
    assert label_at_depth([], "leaf") is None


def test_intent_depths_are_the_settings_choices() -> None:
    assert set(INTENT_DEPTHS) == set(Settings.model_fields["intent_depth"].annotation.__args__)  # type: ignore[union-attr]


def test_a_query_vector_of_another_size_is_refused_with_what_to_do() -> None:
    model, _ = _model()
    with pytest.raises(ValueError, match="rebuild it"):
        model.predict(np.ones(DIM + 1, dtype=np.float32))


def test_a_model_built_for_another_index_version_is_refused(tmp_path: Path) -> None:
    products, vectors, directions = _catalogue()
    sums = CategorySums(DIM)
    sums.add(products, vectors)
    path = tmp_path / "intent" / "products.npz"
    save_sums(path, "products-v1", sums)
    model = load_model(path, "products-v1")
    assert model.index_version == "products-v1"
    assert model.predict(directions["lamps"]).categories[0] == "Desk Lamps"
    with pytest.raises(StaleIntentModelError, match="built for index version products-v1, the live one is products-v2"):
        load_model(path, "products-v2")
    with pytest.raises(IntentModelError, match="shoprank index"):
        load_model(tmp_path / "missing.npz", "products-v1")


def test_an_uncategorised_catalogue_gives_no_model() -> None:
    sums = CategorySums(DIM)
    sums.add([Product(id="a", title="a")], np.ones((1, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match="no categorised products"):
        IntentModel.from_sums("v1", *sums.arrays())


INTENT = IntentDistribution(("Mugs", "Kettles"), (0.7, 0.2))


def test_the_boost_adds_the_weighted_probability_to_the_scaled_score() -> None:
    scores = boosted_scores([10.0, 8.0, 6.0], ["Lamps", "Kettles", "Mugs"], INTENT, 1.0)
    assert scores == pytest.approx([1.0 + 0.0, 0.5 + 0.2, 0.0 + 0.7])


def _hit(pid: str, score: float, leaf: str) -> Hit:
    return Hit(Product(id=pid, title=pid, category=["Home", leaf]), score)


def test_boosting_a_window_reorders_it_as_predicted() -> None:
    hits = [_hit("lamp", 10.0, "Lamps"), _hit("kettle", 8.0, "Kettles"), _hit("mug", 6.0, "Mugs")]
    assert [h.product.id for h in boost_hits(hits, INTENT, 0.0, "leaf")] == ["lamp", "kettle", "mug"]
    # lamp 1.0, kettle 0.5 + 0.2 x 2 = 0.9, mug 0 + 0.7 x 2 = 1.4
    boosted = boost_hits(hits, INTENT, 2.0, "leaf")
    assert [h.product.id for h in boosted] == ["mug", "lamp", "kettle"]
    assert [h.score for h in boosted] == pytest.approx([1.4, 1.0, 0.9])


def test_the_filter_applies_only_at_the_threshold_and_never_over_the_shoppers_category() -> None:
    assert confident_category(INTENT, 0.7) == "Mugs"
    assert confident_category(INTENT, 0.71) is None
    assert confident_category(IntentDistribution(("Mugs",), (1.0,)), 1.0) is None  # 1 never filters
    assert intent_filters(Filters(), INTENT, 0.5) == (Filters(categories=("Mugs",)), "Mugs")
    assert intent_filters(Filters(), INTENT, 0.8) == (Filters(), None)
    mine = Filters(categories=("Lamps",))
    assert intent_filters(mine, INTENT, 0.5) == (mine, None)


def test_the_category_facet_lists_the_likely_categories_first_and_keeps_the_counts() -> None:
    shaped = [
        {"value": "Lamps", "count": 9, "selected": False},
        {"value": "Kettles", "count": 5, "selected": False},
        {"value": "Rugs", "count": 4, "selected": False},
        {"value": "Mugs", "count": 2, "selected": False},
    ]
    ordered = intent_ordered_categories(shaped, INTENT)
    assert [b["value"] for b in ordered] == ["Mugs", "Kettles", "Lamps", "Rugs"]
    assert {b["value"]: b["count"] for b in ordered} == {b["value"]: b["count"] for b in shaped}


def test_each_engine_keeps_its_own_intent_models_under_one_data_dir(tmp_path: Path) -> None:
    from intent.store import models_dir, prune_models

    lance, opensearch = models_dir(tmp_path, "lancedb", "products"), models_dir(tmp_path, "opensearch", "products")
    assert lance != opensearch
    products, vectors, _ = _catalogue()
    sums = CategorySums(DIM)
    sums.add(products, vectors)
    save_sums(lance / "products-1.npz", "products-1", sums)
    save_sums(opensearch / "products-2.npz", "products-2", sums)
    prune_models(opensearch, {"products-2"})  # an OpenSearch reindex prunes what OpenSearch no longer keeps
    assert load_model(lance / "products-1.npz", "products-1").index_version == "products-1"


def test_a_missing_intent_model_is_a_user_error_that_says_what_to_run(tmp_path: Path) -> None:
    from shoprank.errors import UserError

    with pytest.raises(UserError, match="run a full `shoprank index"):
        load_model(tmp_path / "missing.npz", "v1")
