"""Simulated shoppers for `shoprank eval-personal`: latent preferences, histories drawn from them, and the
personal relevance they imply. Seeded and pure: the same config gives the same shoppers.

A shopper asking a judged query has a latent preference over up to three attributes, each drawn
from the catalogue's own values: a brand and a leaf category (uniformly among the distinct values
of the query's judged products, so the preference is one a shopper asking it could hold; judged
products of every grade count, so it does not leak relevance), and a price band (one of the
catalogue's price terciles). Their history is `n` interactions on *other* catalogue products
(never one judged for the query): each drawn with probability proportional to match^2 among
products matching the preference on at least one attribute, or, with probability `noise`,
uniformly from the catalogue; actions view/click/add_to_cart/purchase with probabilities
0.5/0.3/0.15/0.05, within the last `history_days` days.

Personal relevance of a product: its ESCI gain x (1 + strength x match), match the share of the
shopper's preference attributes it has. An irrelevant product (gain 0) stays irrelevant whatever
its brand; an exact product of the preferred brand, category and price gains (1 + strength).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shoprank.schema import Product
from shoprank.vocabulary import InteractionAction
from sidecar.personalise import Interaction

ATTRIBUTES = ("brand", "category", "price")
ACTION_PROBABILITIES: Mapping[InteractionAction, float] = {
    "view": 0.5,
    "click": 0.3,
    "add_to_cart": 0.15,
    "purchase": 0.05,
}


@dataclass(frozen=True)
class ShopperConfig:
    """The simulator's parameters (flags of `shoprank eval-personal`)."""

    seed: int = 7
    shoppers: int = 3  # shoppers per query
    histories: tuple[int, ...] = (0, 1, 3, 10)
    attributes: tuple[str, ...] = ATTRIBUTES
    strength: float = 1.0  # how much a full preference match multiplies a gain: 1 + strength
    noise: float = 0.2  # share of history interactions on random catalogue products
    history_days: float = 3.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.attributes) - set(ATTRIBUTES))
        if unknown or not self.attributes:
            raise ValueError(f"preference attributes: choose from {', '.join(ATTRIBUTES)} (got {unknown or 'none'})")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {self.noise}")
        if self.strength < 0 or self.shoppers < 1 or self.history_days <= 0:
            raise ValueError("strength must be >= 0, shoppers >= 1 and history_days > 0")
        if any(n < 0 for n in self.histories):
            raise ValueError("history lengths must be >= 0")


@dataclass(frozen=True)
class Preference:
    """What a shopper likes: a brand, a leaf category, a price band [low, high) (None: no preference on it)."""

    brand: str | None = None
    category: str | None = None
    price: tuple[float, float] | None = None

    def active(self) -> int:
        """How many attributes the preference sets."""
        return sum(value is not None for value in (self.brand, self.category, self.price))


def leaf(product: Product) -> str:
    """A product's leaf category ('' without one)."""
    return product.category[-1] if product.category else ""


def match(product: Product, preference: Preference) -> float:
    """Share of the preference's attributes the product has (0 for no preference)."""
    active = preference.active()
    if active == 0:
        return 0.0
    hits = 0
    if preference.brand is not None and product.brand.strip().lower() == preference.brand:
        hits += 1
    if preference.category is not None and leaf(product) == preference.category:
        hits += 1
    if preference.price is not None and product.price is not None:
        low, high = preference.price
        hits += int(low <= product.price < high)
    return hits / active


def personal_gains(
    gains: Mapping[str, float], products: Mapping[str, Product], preference: Preference, strength: float
) -> dict[str, float]:
    """ESCI gain x (1 + strength x match) per judged product."""
    return {
        pid: gain * (1.0 + strength * match(products[pid], preference)) if pid in products else gain
        for pid, gain in gains.items()
    }


def price_bands(catalogue: Sequence[Product]) -> list[tuple[float, float]]:
    """The catalogue's price terciles as [low, high) bands."""
    prices = np.array([p.price for p in catalogue if p.price is not None], dtype=np.float64)
    if prices.size < 3:
        return []
    q1, q2 = np.quantile(prices, [1 / 3, 2 / 3])
    return [(0.0, float(q1)), (float(q1), float(q2)), (float(q2), float("inf"))]


class Simulator:
    """Draws preferences and histories over one catalogue."""

    def __init__(self, catalogue: Sequence[Product], config: ShopperConfig, now_ms: int) -> None:
        self.catalogue = list(catalogue)
        self.config = config
        self.now_ms = now_ms
        self.bands = price_bands(self.catalogue)

    def preference(self, rng: random.Random, judged: Sequence[Product]) -> Preference:
        """A latent preference for a shopper asking a query whose judged products are `judged`."""
        wanted = set(self.config.attributes)
        brands = sorted({p.brand.strip().lower() for p in judged if p.brand.strip()})
        categories = sorted({leaf(p) for p in judged if leaf(p)})
        return Preference(
            brand=rng.choice(brands) if "brand" in wanted and brands else None,
            category=rng.choice(categories) if "category" in wanted and categories else None,
            price=rng.choice(self.bands) if "price" in wanted and self.bands else None,
        )

    def history(self, rng: random.Random, preference: Preference, length: int, exclude: set[str]) -> list[Interaction]:
        """`length` interactions drawn from the preference (see the module's docstring), most recent first."""
        pool = [p for p in self.catalogue if p.id not in exclude]
        if length == 0 or not pool:
            return []
        scores = np.array([match(p, preference) ** 2 for p in pool], dtype=np.float64)
        total = scores.sum()
        actions = list(ACTION_PROBABILITIES)
        weights = list(ACTION_PROBABILITIES.values())
        out = []
        for _ in range(length):
            if total > 0 and rng.random() >= self.config.noise:
                index = int(np.searchsorted(np.cumsum(scores), rng.random() * total, side="right"))
                product = pool[min(index, len(pool) - 1)]
            else:
                product = rng.choice(pool)
            ago_ms = int(rng.random() * self.config.history_days * 86400 * 1000)
            action = rng.choices(actions, weights)[0]
            out.append(Interaction(product.id, action, self.now_ms - ago_ms))
        return sorted(out, key=lambda i: -i.timestamp_ms)
