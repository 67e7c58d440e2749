"""The simulated shoppers of `shoprank eval-personal`: preferences from the catalogue, histories drawn from
them (never a product judged for the query), personal gains, and the same shoppers for the same seed."""

from __future__ import annotations

import random

import pytest

from evaluation.shoppers import Preference, ShopperConfig, Simulator, match, personal_gains, price_bands
from shoprank.schema import Product

NOW_MS = 1_800_000_000_000


def product(pid: str, brand: str, leaf: str, price: float | None) -> Product:
    return Product(id=pid, title=f"{brand} {leaf} {pid}", brand=brand, category=["Root", leaf], price=price)


CATALOGUE = [
    product(f"{brand}-{leaf}-{i}", brand, leaf, price)
    for brand in ("Acme", "Zenith")
    for leaf in ("Mugs", "Lamps")
    for i, price in enumerate((5.0, 20.0, 80.0))
]


def test_match_is_the_share_of_preferred_attributes_a_product_has() -> None:
    preference = Preference(brand="acme", category="Mugs", price=(0.0, 10.0))
    assert match(product("a", "Acme", "Mugs", 5.0), preference) == 1.0
    assert match(product("b", "ACME ", "Lamps", 50.0), preference) == pytest.approx(1 / 3)
    assert match(product("c", "Zenith", "Lamps", None), preference) == 0.0
    assert match(product("d", "Acme", "Mugs", 5.0), Preference()) == 0.0


def test_personal_gain_scales_relevant_products_and_leaves_irrelevant_ones_at_zero() -> None:
    products = {p.id: p for p in CATALOGUE}
    gains = {"Acme-Mugs-0": 1.0, "Zenith-Mugs-0": 1.0, "Acme-Lamps-0": 0.0}
    mine = personal_gains(gains, products, Preference(brand="acme"), strength=1.0)
    assert mine == {"Acme-Mugs-0": 2.0, "Zenith-Mugs-0": 1.0, "Acme-Lamps-0": 0.0}


def test_price_bands_are_the_catalogues_terciles() -> None:
    bands = price_bands(CATALOGUE)
    assert len(bands) == 3
    assert bands[0][0] == 0.0
    assert bands[-1][1] == float("inf")
    assert sum(low <= 20.0 < high for low, high in bands) == 1


def test_histories_follow_the_preference_and_never_touch_the_querys_judged_products() -> None:
    simulator = Simulator(CATALOGUE, ShopperConfig(noise=0.0, attributes=("brand",)), NOW_MS)
    judged = {"Acme-Mugs-0", "Zenith-Mugs-0"}
    rng = random.Random(3)
    preference = simulator.preference(rng, [p for p in CATALOGUE if p.id in judged])
    assert preference.brand in {"acme", "zenith"}
    assert preference.category is None
    assert preference.price is None
    history = simulator.history(rng, preference, 50, judged)
    assert len(history) == 50
    assert not {i.product_id for i in history} & judged
    assert all(i.product_id.lower().startswith(preference.brand or "?") for i in history)
    assert [i.timestamp_ms for i in history] == sorted((i.timestamp_ms for i in history), reverse=True)
    assert all(NOW_MS - 3 * 86400 * 1000 <= i.timestamp_ms <= NOW_MS for i in history)


def test_the_same_seed_draws_the_same_shoppers() -> None:
    simulator = Simulator(CATALOGUE, ShopperConfig(), NOW_MS)

    def draw(seed: str) -> tuple[Preference, list[str]]:
        rng = random.Random(seed)
        preference = simulator.preference(rng, CATALOGUE[:4])
        return preference, [i.product_id for i in simulator.history(rng, preference, 10, set())]

    assert draw("7:0:0") == draw("7:0:0")
    assert draw("7:0:0") != draw("8:0:0")


def test_bad_simulator_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="attributes"):
        ShopperConfig(attributes=("colour",))
    with pytest.raises(ValueError, match="noise"):
        ShopperConfig(noise=1.5)
