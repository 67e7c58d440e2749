"""The user vector and the personal term on hand-built vectors: action weights, time decay, centres, beta."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.personalise import (
    ACTION_WEIGHTS,
    Interaction,
    PersonalParamError,
    PersonalParams,
    affinity,
    beta,
    interaction_weights,
    personal_terms,
    user_centres,
)

DAY_S = 86400.0
NOW_MS = 1_800_000_000_000
X = np.array([1.0, 0.0, 0.0], dtype=np.float32)
Y = np.array([0.0, 1.0, 0.0], dtype=np.float32)
Z = np.array([0.0, 0.0, 1.0], dtype=np.float32)


def test_actions_weigh_purchase_over_cart_over_click_over_view() -> None:
    weights = interaction_weights(["view", "click", "add_to_cart", "purchase"], np.zeros(4), DAY_S)
    assert list(weights) == [1.0, 2.0, 4.0, 8.0]
    assert ACTION_WEIGHTS["purchase"] > ACTION_WEIGHTS["add_to_cart"] > ACTION_WEIGHTS["click"] > ACTION_WEIGHTS["view"]


def test_decay_halves_the_weight_every_half_life_and_a_future_timestamp_counts_as_now() -> None:
    weights = interaction_weights(["click"] * 4, np.array([0.0, DAY_S, 2 * DAY_S, -DAY_S]), DAY_S)
    np.testing.assert_allclose(weights, [2.0, 1.0, 0.5, 2.0])


def test_the_centroid_leans_to_the_heavier_interaction() -> None:
    (centre,) = user_centres(np.stack([X, Y]), np.array([3.0, 1.0]), k=1)
    expected = np.array([3.0, 1.0, 0.0]) / np.sqrt(10.0)
    np.testing.assert_allclose(centre, expected, rtol=1e-6)


def test_vectors_are_normalised_before_averaging() -> None:
    # A long vector must not outweigh a short one: cosine space, the weights alone decide.
    (centre,) = user_centres(np.stack([10 * X, Y]), np.array([1.0, 1.0]), k=1)
    np.testing.assert_allclose(centre, np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0), rtol=1e-6)


def test_two_centres_keep_two_interests_that_a_centroid_averages_away() -> None:
    near_x = np.array([0.9, 0.1, 0.0], dtype=np.float32)
    near_y = np.array([0.1, 0.9, 0.0], dtype=np.float32)
    vectors = np.stack([X, near_x, Y, near_y])
    weights = np.ones(4)
    centres = user_centres(vectors, weights, k=2)
    assert centres.shape == (2, 3)
    products = np.stack([X, Y, Z])
    two = affinity(centres, products)
    one = affinity(user_centres(vectors, weights, k=1), products)
    # With centres, a product like either interest scores near 1; the centroid gives both ~0.71.
    assert two[0] > 0.99
    assert two[1] > 0.99
    assert one[0] == pytest.approx(one[1], abs=1e-6)
    assert one[0] < 0.75
    assert two[2] == pytest.approx(0.0, abs=1e-6)


def test_duplicated_interests_give_fewer_centres_than_asked() -> None:
    assert user_centres(np.stack([X, X, X]), np.ones(3), k=3).shape == (1, 3)


def test_beta_ramps_linearly_to_its_cap_and_is_zero_without_history() -> None:
    assert beta(0, 0.4, 4) == 0.0
    assert beta(1, 0.4, 4) == pytest.approx(0.1)
    assert beta(2, 0.4, 4) == pytest.approx(0.2)
    assert beta(4, 0.4, 4) == pytest.approx(0.4)
    assert beta(40, 0.4, 4) == pytest.approx(0.4)
    assert beta(10, 0.0, 4) == 0.0


def test_terms_use_sent_embeddings_and_window_vectors_and_skip_unresolvable_interactions() -> None:
    window = np.stack([X, Y, Z])
    interactions = [
        Interaction("b", "purchase", NOW_MS),  # its vector: candidate b's (Y)
        Interaction("elsewhere", "view", NOW_MS, embedding=Y),  # not in the window, sent with its embedding
        Interaction("unknown", "click", NOW_MS),  # neither: left out
    ]
    params = PersonalParams(weight=0.3, ramp=4)
    out = personal_terms(interactions, ["a", "b", "c"], lambda: window, params, NOW_MS)
    assert out.used == 2
    assert out.applied
    assert out.beta == pytest.approx(0.15)
    np.testing.assert_allclose(out.terms, [0.0, 0.15, 0.0], atol=1e-6)


def test_no_history_or_weight_zero_adds_nothing_and_never_asks_for_vectors() -> None:
    def vectors() -> np.ndarray:
        raise AssertionError("the window's vectors were computed for a shopper without a term")

    none = personal_terms([], ["a"], vectors, PersonalParams(weight=1.0), NOW_MS)
    off = personal_terms([Interaction("a", "click", NOW_MS)], ["a"], vectors, PersonalParams(weight=0.0), NOW_MS)
    for out in (none, off):
        assert not out.applied
        assert out.used == 0
        assert list(out.terms) == [0.0]


def test_an_old_purchase_loses_to_a_fresh_click() -> None:
    window = np.stack([X, Y])
    old = NOW_MS - int(10 * DAY_S * 1000)
    interactions = [Interaction("a", "purchase", old), Interaction("b", "click", NOW_MS)]
    out = personal_terms(
        interactions, ["a", "b"], lambda: window, PersonalParams(weight=1.0, half_life_s=DAY_S), NOW_MS
    )
    assert out.terms[1] > out.terms[0]
    # Within one half-life the purchase (8 vs 2) would still lead.
    recent = [Interaction("a", "purchase", NOW_MS - int(DAY_S * 1000)), Interaction("b", "click", NOW_MS)]
    out = personal_terms(recent, ["a", "b"], lambda: window, PersonalParams(weight=1.0, half_life_s=DAY_S), NOW_MS)
    assert out.terms[0] > out.terms[1]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"weight": -0.1}, "weight"),
        ({"ramp": 0}, "ramp"),
        ({"half_life_s": 0.0}, "half_life_s"),
        ({"centres": 0}, "centres"),
    ],
)
def test_bad_parameters_name_their_field(overrides: dict[str, float], field: str) -> None:
    with pytest.raises(PersonalParamError) as error:
        PersonalParams(**overrides)  # type: ignore[arg-type]
    assert error.value.field == field
