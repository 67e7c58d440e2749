"""xQuAD's facets: category aspects, brand aspects or both, on hand-computed cases, against a
direct implementation of the formula, and through validation, settings and the wire."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from sidecar.client import RerankOptions, build_request
from sidecar.diversify import DiversityParamError, DiversityParams, Facet, diversify
from sidecar.diversify.attributes import brand_key, category_aspect
from sidecar.errors import InvalidRequestError
from sidecar.server import defaults_from
from sidecar.wire_request import RequestDefaults, RequestLimits, request_to_domain

# Four Acme towels and one Bolt towel: one category, a brand-monopolised relevance order.
MONOPOLY_RELEVANCE = [1.0, 0.9, 0.8, 0.6, 0.0]
MONOPOLY_BRANDS = ["Acme", "Acme", "Acme", "Bolt", "Acme"]
TOWELS = [["Home", "Towels"]] * 5


def _xquad(strength: float, *facets: Facet) -> DiversityParams:
    return DiversityParams(method="xquad", strength=strength, facets=facets)


def test_brand_facet_puts_a_second_brand_at_position_two() -> None:
    # P(Acme) = 2.7 / 3.3, P(Bolt) = 0.6 / 3.3, so Bolt's weight relative to Acme is 0.6 / 2.7 = 2/9.
    # After Acme at #1 (rel 1: Acme fully covered), #2 is Bolt when
    # (1 - s) 0.6 + s (2/9) 0.6 > (1 - s) 0.9, i.e. s > 0.3 / (0.3 + 0.6 * 2/9) = 0.692...
    page = diversify(MONOPOLY_RELEVANCE, 3, _xquad(0.7, "brand"), brands=MONOPOLY_BRANDS, categories=TOWELS)
    assert page.order == [0, 3, 1]
    assert page.scores[1] == pytest.approx(0.3 * 0.6 + 0.7 * (2 / 9) * 0.6)
    assert page.terms[1] == pytest.approx((2 / 9) * 0.6)
    assert page.reasons[1] == "moved up 2: xQuAD: new brand 'Bolt' (weight 0.18, aspect gain 0.13)"
    below = diversify(MONOPOLY_RELEVANCE, 3, _xquad(0.69, "brand"), brands=MONOPOLY_BRANDS, categories=TOWELS)
    # Just below the threshold Acme keeps #2; Bolt still passes the 0.8 Acme for #3:
    # 0.31 * 0.6 + 0.69 * (2/9) * 0.6 = 0.278 > 0.31 * 0.8 = 0.248.
    assert below.order == [0, 1, 3]


def test_category_facet_alone_leaves_a_one_category_list_in_relevance_order() -> None:
    page = diversify(MONOPOLY_RELEVANCE, 3, _xquad(0.7, "category"), brands=MONOPOLY_BRANDS, categories=TOWELS)
    assert page.order == [0, 1, 2]
    assert page.reasons[1] == "kept at #2: xQuAD: category 'Towels' already at #1 (weight 1.00, aspect gain 0.00)"


def test_both_facets_average_their_gains_and_explain_each() -> None:
    # One category, so the category term is 0 after #1 and Bolt's gain is half the brand-only gain:
    # (1 - s) 0.6 + s (1/9) 0.6 > (1 - s) 0.9 needs s > 0.3 / (0.3 + 0.6 / 9) = 0.818...
    both = _xquad(0.85, "category", "brand")
    page = diversify(MONOPOLY_RELEVANCE, 2, both, brands=MONOPOLY_BRANDS, categories=TOWELS)
    assert page.order == [0, 3]
    assert page.terms[1] == pytest.approx(0.6 / 9)
    assert page.reasons[1] == (
        "moved up 2: xQuAD: category 'Towels' already at #1 (weight 1.00), new brand 'Bolt' (weight 0.18); "
        "aspect gain 0.07"
    )
    weaker = _xquad(0.8, "category", "brand")
    weaker_page = diversify(MONOPOLY_RELEVANCE, 2, weaker, brands=MONOPOLY_BRANDS, categories=TOWELS)
    assert weaker_page.order == [0, 1]


def test_brands_compare_as_keys_and_show_as_spelled() -> None:
    brands = [" Acme ", "ACME", "", "Bolt", ""]
    page = diversify([1.0, 0.9, 0.8, 0.7, 0.0], 4, _xquad(0.9, "brand"), brands=brands, categories=TOWELS)
    assert page.order == [0, 2, 3, 1]
    reasons = dict(zip(page.order, page.reasons, strict=True))
    assert "brand 'Acme' already at #1" in reasons[1]
    assert "new brand 'no brand'" in reasons[2]  # products without a brand pool into one aspect


def _reference(rel: np.ndarray, keys: dict[str, list[str]], s: float, k: int) -> tuple[list[int], list[float]]:
    """xQuAD straight from its formula: loops over facets, aspects and the page."""
    facets = list(keys)
    share = {
        f: {a: sum(rel[i] for i in range(len(rel)) if keys[f][i] == a) / rel.sum() for a in set(keys[f])}
        for f in facets
    }
    page: list[int] = []
    scores: list[float] = []
    for _ in range(k):
        best, best_value = -1, -np.inf
        for i in range(len(rel)):
            if i in page:
                continue
            gain = 0.0
            for f in facets:
                uncovered = float(np.prod([1 - rel[j] for j in page if keys[f][j] == keys[f][i]]))
                gain += share[f][keys[f][i]] / max(share[f].values()) * rel[i] * uncovered / len(facets)
            value = (1 - s) * rel[i] + s * gain
            if value > best_value + 1e-12:
                best, best_value = i, value
        page.append(best)
        scores.append(best_value)
    return page, scores


@pytest.mark.parametrize("facets", [("category",), ("brand",), ("category", "brand")])
@pytest.mark.parametrize("seed", range(3))
def test_every_facet_choice_matches_the_formula(facets: tuple[Facet, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, s = 40, 0.8
    relevance = rng.permutation(n).astype(np.float64)  # distinct, so the greedy order is unambiguous
    categories = [["Root", f"leaf {rng.integers(5)}"] if i % 9 else [] for i in range(n)]
    brands = [f"brand {rng.integers(7)}" if i % 11 else "" for i in range(n)]
    rel = (relevance - relevance.min()) / (relevance.max() - relevance.min())
    keys = {
        "category": [category_aspect(c) for c in categories],
        "brand": [brand_key(b) for b in brands],
    }
    order, scores = _reference(rel, {f: keys[f] for f in facets}, s, 15)
    page = diversify(relevance, 15, _xquad(s, *facets), brands=brands, categories=categories)
    assert page.order == order
    np.testing.assert_allclose(page.scores, scores, atol=1e-9)


def test_facets_are_deterministic_and_independent_of_input_order() -> None:
    rng = np.random.default_rng(5)
    n = 100
    relevance = rng.permutation(n).astype(np.float64)
    brands = [f"b{rng.integers(12)}" for _ in range(n)]
    categories = [["R", f"c{rng.integers(8)}"] for _ in range(n)]
    params = _xquad(0.9, "category", "brand")
    first = diversify(relevance, 10, params, brands=brands, categories=categories)
    again = diversify(relevance, 10, params, brands=brands, categories=categories)
    assert first == again
    shuffle = rng.permutation(n)
    moved = diversify(
        relevance[shuffle], 10, params, brands=[brands[i] for i in shuffle], categories=[categories[i] for i in shuffle]
    )
    assert [int(shuffle[i]) for i in moved.order] == first.order
    assert moved.reasons == first.reasons


@pytest.mark.parametrize(
    ("facets", "message"),
    [
        (("colour",), "facets: unknown facet 'colour'; use category and/or brand"),
        ((), "facets: must name at least one of category, brand"),
        (("brand", "brand"), "facets: names a facet twice: brand, brand"),
        ("brand", "facets: must be a list of category and/or brand, got 'brand'"),
    ],
)
def test_bad_facets_name_the_field(facets: object, message: str) -> None:
    with pytest.raises(DiversityParamError) as raised:
        DiversityParams(method="xquad", facets=facets)  # type: ignore[arg-type]
    assert raised.value.field == "facets"
    assert str(raised.value) == message


def test_facets_compare_equal_in_any_order() -> None:
    listed = DiversityParams(facets=["brand", "category"])  # type: ignore[arg-type]
    assert listed == DiversityParams(facets=("category", "brand"))
    assert listed.facets == ("category", "brand")
    assert hash(listed) == hash(DiversityParams(facets=("category", "brand")))


def _wire(facets: list[int]) -> pb.RerankRequest:
    message = pb.RerankRequest(query="towel", top_k=2)
    for i in range(3):
        message.candidates.add(id=f"p{i}", first_stage_score=float(i), product=pb.Product(title=f"towel {i}"))
    message.options.diversity.method = pb.DIVERSITY_METHOD_XQUAD
    message.options.diversity.facets.extend(facets)  # type: ignore[arg-type]
    return message


@pytest.mark.parametrize(
    ("facets", "expected"),
    [
        ((), ("category", "brand")),  # the server default below
        (("brand",), ("brand",)),
        (("category",), ("category",)),
        (("brand", "category"), ("category", "brand")),
    ],
)
def test_facets_round_trip_through_the_client_and_the_converter(
    facets: tuple[Facet, ...], expected: tuple[Facet, ...]
) -> None:
    wire = build_request("towel", [], 2, RerankOptions(diversity="xquad", facets=facets))
    decoded = pb.RerankRequest.FromString(wire.SerializeToString())
    message = _wire(list(decoded.options.diversity.facets))
    defaults = RequestDefaults(diversity=DiversityParams(method="xquad", facets=("category", "brand")))
    query = request_to_domain(message, RequestLimits(), defaults)
    assert query.diversity.facets == expected


@pytest.mark.parametrize(
    ("facets", "field", "problem"),
    [
        ([pb.DIVERSITY_FACET_UNSPECIFIED], "options.diversity.facets[0]", "unknown facet 0"),
        ([pb.DIVERSITY_FACET_BRAND, 9], "options.diversity.facets[1]", "unknown facet 9"),
        ([pb.DIVERSITY_FACET_BRAND] * 2, "options.diversity.facets", "names a facet twice: brand, brand"),
    ],
)
def test_bad_wire_facets_are_invalid_requests_naming_the_field(facets: list[int], field: str, problem: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        request_to_domain(_wire(facets), RequestLimits(), RequestDefaults())
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: {problem}")


def test_the_server_default_facets_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPRANK_DIVERSITY_FACETS", "brand")
    assert defaults_from(Settings()).diversity.facets == ("brand",)
    assert Settings(diversity_facets="brand, category").diversity_facets == ("brand", "category")
    monkeypatch.delenv("SHOPRANK_DIVERSITY_FACETS")
    assert defaults_from(Settings()).diversity.facets == Settings.model_fields["diversity_facets"].default


def test_the_search_api_passes_facets_in_canonical_order() -> None:
    from frontdoor.params import SearchParams

    asked = SearchParams(q="mug", diversity="xquad", diversity_facets=["brand", "category"])
    assert asked.to_request().options.facets == ("category", "brand")
    twice = SearchParams(q="mug", diversity_facets=["brand", "brand"])
    assert twice.to_request().options.facets == ("brand",)
    assert SearchParams(q="mug").to_request().options.facets == ()  # the sidecar's default
