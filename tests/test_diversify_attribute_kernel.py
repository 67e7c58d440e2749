"""MMR/DPP similarity mixing embedding cosine with the catalogue's structure (same brand, same
leaf category): the formula, its PSD property, the named-brand exception, and the wire."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.diversify import DiversityParams, diversify
from sidecar.diversify.attributes import CandidateAttributes
from sidecar.diversify.similarity import similarity

BRANDS = ["Acme", "Acme", "Bolt", "Bolt", ""]
CATEGORIES = [["Home", "Mugs"], ["Home", "Cups"], ["Home", "Mugs"], ["Home", "Mugs"], []]


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, 8))
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def test_similarity_is_the_weighted_mix_of_cosine_and_attributes() -> None:
    vectors = _unit(np.random.default_rng(0), 5)
    cosine = np.clip(vectors.astype(np.float64) @ vectors.T.astype(np.float64), -1, 1)
    same_brand = np.array([[b == c and b != "" for c in BRANDS] for b in BRANDS], dtype=float)
    leaves = [c[-1] if c else "" for c in CATEGORIES]
    same_leaf = np.array([[a == b and a != "" for b in leaves] for a in leaves], dtype=float)
    attributes = CandidateAttributes(BRANDS, CATEGORIES, range(5))
    for weight in (0.0, 0.25, 0.75, 1.0):
        matrix = similarity(vectors, attributes, weight).matrix
        expected = (1 - weight) * cosine + weight * (0.5 * same_brand + 0.5 * same_leaf)
        np.fill_diagonal(expected, 1.0)
        np.testing.assert_allclose(matrix, expected, atol=1e-6)
        assert np.linalg.eigvalsh(matrix).min() > -1e-9  # DPP needs a PSD kernel


def test_a_brand_the_query_names_is_not_a_similarity() -> None:
    vectors = _unit(np.random.default_rng(1), 5)
    named = CandidateAttributes(BRANDS, CATEGORIES, range(5), "acme mugs")
    plain = CandidateAttributes(BRANDS, CATEGORIES, range(5), "mugs")
    with_name, without = similarity(vectors, named, 1.0).matrix, similarity(vectors, plain, 1.0).matrix
    assert without[0, 1] == pytest.approx(0.5)  # same brand, other leaf
    assert with_name[0, 1] == pytest.approx(0.0)  # the shopper asked for Acme
    assert with_name[2, 3] == without[2, 3] == pytest.approx(1.0)  # Bolt mugs still repeat each other


def test_attribute_weight_moves_a_same_brand_near_duplicate_down() -> None:
    # Products whose embeddings are equally far apart (orthogonal); #2 repeats #1's brand and leaf.
    vectors = np.eye(4, dtype=np.float32)
    relevance = [1.0, 0.9, 0.85, 0.0]
    brands, categories = ["Acme", "Acme", "Bolt", "Cobalt"], [["Mugs"], ["Mugs"], ["Cups"], ["Jugs"]]
    cosine_only = diversify(relevance, 3, DiversityParams(method="dpp", strength=0.3), vectors, brands, categories)
    assert cosine_only.order == [0, 1, 2]
    # Mixed at 0.75, #2 is 0.75 similar to #1: 0.7 * 0.9 + 0.3 * log(1 - 0.75^2) = 0.382 < 0.7 * 0.85.
    mixed = DiversityParams(method="dpp", strength=0.3, attribute_weight=0.75)
    page = diversify(relevance, 3, mixed, vectors, brands, categories)
    assert page.order == [0, 2, 1]
    assert page.scores[2] == pytest.approx(0.7 * 0.9 + 0.3 * np.log(1 - 0.75**2))
    assert page.reasons[2].endswith("closest #1, similarity 0.75: cos 0.00, same brand and category)")


def test_attribute_weight_one_needs_no_embeddings() -> None:
    # The sidecar embeds candidates sent without a vector only when the similarity reads them.
    assert DiversityParams(method="dpp", strength=0.1, attribute_weight=0.75).needs_embeddings
    assert not DiversityParams(method="dpp", strength=0.1, attribute_weight=1.0).needs_embeddings
    assert not DiversityParams(method="mmr", strength=0.0, attribute_weight=0.5).needs_embeddings
    attributes_only = DiversityParams(method="dpp", strength=0.3, attribute_weight=1.0)
    brands, categories = ["Acme", "Acme", "Bolt", "Cobalt"], [["Mugs"], ["Mugs"], ["Cups"], ["Jugs"]]
    page = diversify([1.0, 0.9, 0.85, 0.0], 3, attributes_only, brands=brands, categories=categories)
    assert page.order[:2] == [0, 2]  # #2 duplicates #1's brand and leaf
    assert page.notes == ()  # attributes were asked for: no fallback to report


def test_cosine_of_huge_finite_vectors_is_their_direction() -> None:
    # Components near float32's maximum: the norm overflows float32, which made every such cosine 0.
    vectors = np.array([[3e38, 3e38], [3e38, 3e38], [3e38, -3e38], [-3e38, -3e38], [1.0, 1.0]], dtype=np.float32)
    matrix = similarity(vectors, CandidateAttributes([""] * 5, [[]] * 5, range(5)), 0.0).matrix
    np.testing.assert_allclose(matrix[0], [1.0, 1.0, 0.0, -1.0, 1.0], atol=1e-9)
