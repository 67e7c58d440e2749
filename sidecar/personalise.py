"""Personalisation: a user vector from the shopper's recent interactions, and the term it adds to a score.

The practical state of the art in search, kept light: each interaction is a product embedding
weighted by its action (purchase > add_to_cart > click > view) and by an exponential time decay
with a half-life; the user is their weighted centroid, or k interest centres (PinnerSage-style:
weighted spherical k-means, a product's affinity is its best cosine over the centres). The
ranking gains beta(n) * affinity, with beta ramping linearly from 0 at no history to its cap at
`ramp` interactions: a new shopper (n = 0) is ranked exactly as before.

The term reads product content (embeddings) only, never a product's own behaviour, so a product
nobody has interacted with yet (a new one) is never pushed down for lacking history.

Pure numpy; knows nothing of gRPC.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shoprank.arrays import Float64Array, FloatArray
from shoprank.vocabulary import InteractionAction
from sidecar.errors import InvalidRequestError

# Relative weight of one interaction by what the shopper did (PinnerSage and most e-commerce
# sessions models weigh a purchase several clicks' worth; the order matters more than the values).
ACTION_WEIGHTS: Mapping[InteractionAction, float] = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
KMEANS_ITERATIONS = 10


class PersonalParamError(ValueError):
    """A personalisation parameter is out of range; `field` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class PersonalParams:
    """How the personal term is built. weight 0 (the default) turns it off."""

    weight: float = 0.0  # cap of beta(n)
    ramp: int = 5  # interactions at which beta reaches its cap
    half_life_s: float = 3 * 86400.0
    centres: int = 1  # interest centres (1: the weighted centroid)

    def __post_init__(self) -> None:
        if not math.isfinite(self.weight) or self.weight < 0:
            raise PersonalParamError("weight", f"must be a finite number >= 0, got {self.weight}")
        if self.ramp < 1:
            raise PersonalParamError("ramp", f"must be at least 1, got {self.ramp}")
        if not math.isfinite(self.half_life_s) or self.half_life_s <= 0:
            raise PersonalParamError("half_life_s", f"must be a positive number of seconds, got {self.half_life_s}")
        if self.centres < 1:
            raise PersonalParamError("centres", f"must be at least 1, got {self.centres}")

    def with_weight(self, weight: float | None) -> PersonalParams:
        """These parameters with a request's weight (None keeps the default)."""
        if weight is None:
            return self
        return PersonalParams(weight=weight, ramp=self.ramp, half_life_s=self.half_life_s, centres=self.centres)


@dataclass(frozen=True)
class Interaction:
    """One thing the shopper did: a product (its embedding when the caller sent it), an action, when (ms)."""

    product_id: str
    action: InteractionAction
    timestamp_ms: int
    embedding: FloatArray | None = None


@dataclass(frozen=True)
class PersonalTerms:
    """The term per candidate, beta, and how many interactions the user vector was built from."""

    terms: FloatArray
    beta: float
    used: int

    @property
    def applied(self) -> bool:
        """Whether any term was added (a non-zero beta on at least one interaction)."""
        return self.used > 0 and self.beta > 0


def beta(n: int, weight: float, ramp: int) -> float:
    """The weight of the personal term after n interactions: weight * min(1, n / ramp); 0 at n = 0."""
    if n <= 0 or weight <= 0:
        return 0.0
    return float(weight * min(1.0, n / ramp))


def interaction_weights(actions: Sequence[InteractionAction], ages_s: Float64Array, half_life_s: float) -> Float64Array:
    """Action weight x 0.5 ** (age / half_life) per interaction; a future timestamp counts as now."""
    action = np.array([ACTION_WEIGHTS[a] for a in actions], dtype=np.float64)
    ages = np.maximum(np.asarray(ages_s, dtype=np.float64), 0.0)
    weights: Float64Array = action * np.power(0.5, ages / half_life_s)
    return weights


def _unit_rows(vectors: Float64Array) -> Float64Array:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Float64Array = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


def user_centres(vectors: FloatArray, weights: Float64Array, k: int = 1) -> FloatArray:
    """At most k unit centres of the interactions' (unit) vectors, weighted.

    k = 1: the weighted centroid. k > 1: weighted spherical k-means, seeded deterministically
    (the heaviest interaction, then each time the one least like the centres so far), so the
    same history always gives the same centres; clusters left empty are dropped.
    """
    unit = _unit_rows(np.asarray(vectors, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    if unit.shape[0] == 0 or not np.any(w > 0):
        return np.zeros((0, unit.shape[1] if unit.ndim == 2 else 0), dtype=np.float32)
    k = min(k, unit.shape[0])
    seeds = [int(np.argmax(w))]
    while len(seeds) < k:
        closest = (unit @ unit[seeds].T).max(axis=1)
        closest[seeds] = np.inf
        candidate = int(np.argmin(closest))
        if closest[candidate] >= 1.0 - 1e-9:
            break  # the rest duplicate a seed: fewer distinct interests than k
        seeds.append(candidate)
    centres = unit[seeds]
    for _ in range(KMEANS_ITERATIONS if len(seeds) > 1 else 0):
        assign = np.argmax(unit @ centres.T, axis=1)
        members = (assign[:, None] == np.arange(len(centres))[None, :]) * w[:, None]  # n x k, weighted
        centres = _unit_rows(members.T @ unit)
    if len(seeds) == 1:
        centres = _unit_rows((w[:, None] * unit).sum(axis=0, keepdims=True))
    kept: FloatArray = centres[np.linalg.norm(centres, axis=1) > 0].astype(np.float32)
    return kept


def affinity(centres: FloatArray, products: FloatArray) -> FloatArray:
    """Per product, its best cosine over the centres (0 for a product without a vector, or no centres)."""
    if centres.shape[0] == 0:
        return np.zeros(products.shape[0], dtype=np.float32)
    cosines = _unit_rows(np.asarray(products, dtype=np.float64)) @ centres.astype(np.float64).T
    best: FloatArray = cosines.max(axis=1).astype(np.float32)
    return best


def check_interaction_dims(interactions: Sequence[Interaction], dim: int) -> None:
    """InvalidRequestError naming `interactions[i].embedding` for a sent vector not of the candidates' dimension."""
    for index, interaction in enumerate(interactions):
        size = interaction.embedding.size if interaction.embedding is not None else 0
        if size and dim and size != dim:
            raise InvalidRequestError(
                f"interactions[{index}].embedding",
                f"has {size} values; the candidates' vectors have {dim}: send the same bi-encoder's vectors",
            )


def personal_terms(
    interactions: Sequence[Interaction],
    candidate_ids: Sequence[str],
    candidate_vectors: Callable[[], FloatArray | None],
    params: PersonalParams,
    now_ms: int,
) -> PersonalTerms:
    """beta(n) * affinity(user, candidate) per candidate, n = the interactions with a vector.

    An interaction's vector is its embedding, else its product's among the candidates'; one
    with neither is left out (and not counted). `candidate_vectors` is called only when the
    term can apply (it may embed the window): a new shopper or weight 0 costs nothing.
    """
    count = len(candidate_ids)
    off = PersonalTerms(np.zeros(count, dtype=np.float32), 0.0, 0)
    if not interactions or params.weight <= 0:
        return off
    products = candidate_vectors()
    if products is None or products.shape[0] != count:
        return off
    row = {pid: index for index, pid in enumerate(candidate_ids)}
    kept: list[Interaction] = []
    vectors: list[FloatArray] = []
    for interaction in interactions:
        if interaction.embedding is not None and interaction.embedding.size:
            vector = interaction.embedding
        elif interaction.product_id in row:
            vector = products[row[interaction.product_id]]
        else:
            continue
        if not np.any(vector):
            continue  # a candidate nobody could embed
        kept.append(interaction)
        vectors.append(np.asarray(vector, dtype=np.float32))
    b = beta(len(kept), params.weight, params.ramp)
    if b == 0.0:
        return off
    ages_s = np.array([(now_ms - i.timestamp_ms) / 1000.0 for i in kept], dtype=np.float64)
    weights = interaction_weights([i.action for i in kept], ages_s, params.half_life_s)
    centres = user_centres(np.stack(vectors), weights, params.centres)
    terms = (b * affinity(centres, products)).astype(np.float32)
    return PersonalTerms(terms, b, len(kept))
