"""A query that names a brand has stated it: caps do not count that brand and xQuAD covers only
it, so "dewalt tool cases" keeps its DeWalt page while an unbranded query is still diversified."""

from __future__ import annotations

import pytest

from sidecar.diversify import DiversityParams, diversify
from sidecar.diversify.attributes import CandidateAttributes, names_brand, words

# Relevance order: four DEWALT cases, then a Stanley and a Bolt one, then another DEWALT.
RELEVANCE = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.1]
BRANDS = ["DEWALT", "DEWALT", "DEWALT", "DEWALT", "Stanley", "Bolt", "DeWalt"]
CASES = [["Tools", "Tool Cases"]] * 7


@pytest.mark.parametrize(
    ("query", "brand", "named"),
    [
        ("dewalt tool cases", "DEWALT", True),
        ("tresemme shampoo anti breakage", "TRESemmé", True),  # accents aside
        ("ecloth", "E-Cloth", True),  # one word in the query, two in the brand
        ("e cloth mop", "ECloth", True),  # the other way round
        ("world of golf putting mat", "World of Golf", True),  # the brand's words in a row
        ("golf world putting mat", "World of Golf", False),  # not in a row
        ("us divers snorkel", "U.S. Divers", True),
        ("salted nuts", "Salt", False),  # words, not substrings
        ("tool cases", "", False),
    ],
)
def test_names_brand(query: str, brand: str, named: bool) -> None:
    assert names_brand(words(query), brand) is named


def test_named_brands_must_be_on_the_first_page() -> None:
    brands = ["Acme"] * 10 + ["Salt"]  # a "Salt" product at #11: the ranker does not back it
    attributes = CandidateAttributes(brands, [], list(range(11)), "salt gun")
    assert attributes.named_brands == frozenset()
    attributes = CandidateAttributes(["Salt", *brands], [], list(range(12)), "salt gun")
    assert attributes.named_brands == {"salt"}


def test_a_brand_cap_does_not_count_the_brand_the_query_names() -> None:
    capped = DiversityParams(method="none", strength=0.0, max_per_brand=1)
    named = diversify(RELEVANCE, 4, capped, brands=BRANDS, categories=CASES, query="dewalt tool cases")
    assert named.order == [0, 1, 2, 3]
    assert named.method == "caps"
    assert named.notes == ("the query names 'DEWALT': its products are not counted as repeating a brand",)
    unnamed = diversify(RELEVANCE, 4, capped, brands=BRANDS, categories=CASES, query="tool cases")
    assert unnamed.order == [0, 4, 5, 1]  # one per brand, then the cap relaxes
    assert not any("names" in note for note in unnamed.notes)
    other = diversify(RELEVANCE, 4, capped, brands=["Acme", "Acme", *BRANDS[2:]], categories=CASES, query="dewalt")
    assert other.order[:2] == [0, 2]  # brands the query does not name stay capped


def test_xquad_covers_only_the_brand_the_query_names() -> None:
    strong = DiversityParams(method="xquad", strength=0.9, facets=("brand",))
    unnamed = diversify(RELEVANCE, 3, strong, brands=BRANDS, categories=CASES, query="tool cases")
    assert unnamed.order == [0, 4, 5]
    named = diversify(RELEVANCE, 3, strong, brands=BRANDS, categories=CASES, query="DeWalt tool cases")
    assert named.order == [0, 1, 2]
    reasons = dict(zip(named.order, named.reasons, strict=True))
    assert reasons[1] == "kept at #2: xQuAD: brand 'DEWALT' already at #1 (weight 1.00, aspect gain 0.00)"


def test_the_note_appears_only_when_the_method_reads_brands() -> None:
    query = "dewalt tool cases"
    category_only = DiversityParams(method="xquad", strength=0.9, facets=("category",))
    assert diversify(RELEVANCE, 3, category_only, brands=BRANDS, categories=CASES, query=query).notes == ()
    vectors = [[1.0, float(i)] for i in range(len(RELEVANCE))]
    cosine = DiversityParams(method="dpp", strength=0.3)
    assert diversify(RELEVANCE, 3, cosine, vectors, BRANDS, CASES, query=query).notes == ()
    mixed = DiversityParams(method="dpp", strength=0.3, attribute_weight=0.5)
    assert "the query names 'DEWALT'" in diversify(RELEVANCE, 3, mixed, vectors, BRANDS, CASES, query=query).notes[0]


def test_no_query_keeps_the_old_behaviour() -> None:
    strong = DiversityParams(method="xquad", strength=0.9, facets=("brand",))
    assert diversify(RELEVANCE, 3, strong, brands=BRANDS, categories=CASES).order == [0, 4, 5]
