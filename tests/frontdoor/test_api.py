"""The HTTP search API over the tiny-model stack: bad input, filters, facets, pagination, fail-open."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.base import PRICE_BUCKETS, price_bucket_label
from shoprank.settings import Settings
from tests.frontdoor.conftest import catalogue_rows

Api = Callable[..., TestClient]


def ids(body: dict[str, Any]) -> list[str]:
    return [r["id"] for r in body["results"]]


def rows_of(kind: str) -> list[dict[str, Any]]:
    return [row for row in catalogue_rows() if row["id"].startswith(kind + "-")]


# ---- bad input: 400 with a message saying what to do ----------------------------------------

BAD_REQUESTS = [
    ({}, "q: Field required"),
    ({"q": ""}, "q: String should have at least 1 character"),
    ({"q": "   "}, "q must contain words"),
    ({"q": "mug " * 2560}, "at most 512 characters"),
    ({"q": "mug", "page_size": 10000}, "ask for at most 100 results per page"),
    ({"q": "mug", "page_size": 0}, "page_size"),
    ({"q": "mug", "page": 0}, "pages start at 1"),
    ({"q": "mug", "page": "two"}, "page: Input should be a valid integer"),
    ({"q": "mug", "brnd": "Acme"}, "unknown parameter 'brnd'"),
    ({"q": "mug", "filter": "brand:Acme"}, "unknown parameter 'filter'"),
    ({"q": "mug", "price_min": -5}, "price_min: Input should be greater than or equal to 0"),
    ({"q": "mug", "price_min": "inf"}, "price_min: Input should be a finite number"),
    ({"q": "mug", "price_max": "nan"}, "price_max: Input should be a finite number"),
    ({"q": "mug", "price_min": 50, "price_max": 10}, "price_min (50) is above price_max (10)"),
    ({"q": "mug", "brand": ["b"] * 21}, "at most 20 values"),
    ({"q": "mug", "brand": "x" * 201}, "brand.0"),
    ({"q": "mug", "mode": "sql"}, "first stage: bm25, knn or hybrid"),
    ({"q": "mug", "diversity": "random"}, "diversity method: none, mmr, xquad or dpp"),
    ({"q": "mug", "strength": 1.5}, "strength: Input should be less than or equal to 1"),
    ({"q": "mug", "max_per_brand": 0}, "max_per_brand"),
    ({"q": "mug", "diversity_facets": "colour"}, "xQuAD aspects: repeat the parameter for category and/or brand"),
    ({"q": "mug", "attribute_weight": 2}, "attribute_weight: Input should be less than or equal to 1"),
    ({"q": "mug", "page": ["1", "2"]}, "page given more than once"),
    ({"q": "mug", "page": 11, "page_size": 10}, "starts past the 100 results a search ranks"),
]


@pytest.mark.parametrize(("params", "message"), BAD_REQUESTS)
def test_bad_input_is_a_400_that_says_what_to_do(
    api_for: Api, closed_address: str, params: dict[str, Any], message: str
) -> None:
    response = api_for(closed_address).get("/api/search", params=params)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_page_beyond_this_querys_results_is_a_400(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    mugs = len(rows_of("mug"))
    assert api.get("/api/search", params={"q": "mug", "mode": "bm25", "page_size": 10, "page": 2}).status_code == 200
    response = api.get("/api/search", params={"q": "mug", "mode": "bm25", "page_size": 10, "page": 3})
    assert response.status_code == 400
    assert f"past the last page (2) of the {mugs} results" in response.json()["error"]


# ---- user text never reaches a query parser ---------------------------------------------------


@pytest.mark.parametrize(
    ("weird", "plain"),
    [
        ('"title:mug" OR -zenith (', "title mug or zenith"),
        ("brand:Acme AND NOT mug", "brand acme and not mug"),
        ("mug^10 +lamp~2 [1 TO 5] *", "mug 10 lamp 2 1 to 5"),
    ],
)
def test_query_syntax_is_plain_text(api_for: Api, closed_address: str, weird: str, plain: str) -> None:
    api = api_for(closed_address)
    odd = api.get("/api/search", params={"q": weird, "mode": "bm25", "page_size": 50, "rerank": False})
    words = api.get("/api/search", params={"q": plain, "mode": "bm25", "page_size": 50, "rerank": False})
    assert odd.status_code == 200, odd.text
    assert ids(odd.json()) == ids(words.json())
    found = ids(odd.json())
    assert found, "the words still match"
    if "-zenith" in weird:
        assert any("zenith" in i for i in found), "'-zenith' must not exclude Zenith products"


def test_filter_values_are_literals_not_sql(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    quoted = api.get("/api/search", params={"q": "mug", "brand": "O'Reilly", "mode": "bm25", "rerank": False})
    assert quoted.status_code == 200
    assert {r["brand"] for r in quoted.json()["results"]} == {"O'Reilly"}
    injected = api.get("/api/search", params={"q": "mug", "brand": "x' OR '1'='1", "rerank": False})
    assert injected.status_code == 200
    assert injected.json()["results"] == []


# ---- filters and facets -----------------------------------------------------------------------


def test_filters_narrow_results(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    params: dict[str, Any] = {"q": "jacket", "mode": "bm25", "page_size": 100, "rerank": False}
    body = api.get("/api/search", params={**params, "brand": ["Acme", "Zenith"], "color": "Blue"}).json()
    expected = {r["id"] for r in rows_of("jacket") if r["brand"] in ("Acme", "Zenith") and r["color"] == "Blue"}
    assert set(ids(body)) == expected
    priced = api.get("/api/search", params={**params, "price_min": 10, "price_max": 60}).json()
    expected = {r["id"] for r in rows_of("jacket") if r["price"] is not None and 10 <= r["price"] <= 60}
    assert set(ids(priced)) == expected
    category = api.get("/api/search", params={"q": "red", "category": "Outerwear", "page_size": 100}).json()
    assert category["results"]
    assert all("Outerwear" in r["category"] for r in category["results"])


def test_facets_count_every_bm25_match_not_just_the_window(api_for: Api, closed_address: str) -> None:
    # A window of 5 but 18 mugs: the facets must count all 18.
    api = api_for(closed_address, rerank_window=5)
    body = api.get("/api/search", params={"q": "mug", "mode": "bm25", "page_size": 5}).json()
    mugs = rows_of("mug")
    assert body["window"] == 5
    facets = body["facets"]
    assert {b["value"]: b["count"] for b in facets["brand"]} == Counter(r["brand"] for r in mugs)
    assert {b["value"]: b["count"] for b in facets["color"]} == Counter(r["color"] for r in mugs)
    assert facets["category"] == [{"value": "Mugs", "count": len(mugs), "selected": False}]
    expected_prices = []
    for low, high in PRICE_BUCKETS:
        n = sum(1 for r in mugs if r["price"] is not None and r["price"] >= low and (high is None or r["price"] < high))
        if n:
            expected_prices.append((price_bucket_label(low, high), n))
    assert [(b["value"], b["count"]) for b in facets["price"]] == expected_prices


def test_price_facet_selects_its_bucket(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    base: dict[str, Any] = {"q": "lamp", "mode": "bm25", "page_size": 100, "rerank": False}
    buckets = api.get("/api/search", params=base).json()["facets"]["price"]
    bucket = next(b for b in buckets if b["value"] == "10-25")
    chosen = api.get(
        "/api/search", params={**base, "price_min": bucket["price_min"], "price_max": bucket["price_max"]}
    ).json()
    assert len(chosen["results"]) == bucket["count"]
    assert all(10 <= r["price"] < 25 for r in chosen["results"])
    assert [b["selected"] for b in chosen["facets"]["price"]] == [True]


def test_hybrid_facets_are_the_text_matches_inside_the_knn_window(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address, rerank_window=5)
    knn = ids(api.get("/api/search", params={"q": "mug", "mode": "knn", "rerank": False}).json())
    hybrid = api.get("/api/search", params={"q": "mug", "mode": "hybrid", "rerank": False}).json()
    scope = {r["id"] for r in rows_of("mug")} & set(knn)
    # engines.facet_counts: the text matches inside the kNN window, else the ranked window (5 here).
    assert sum(b["count"] for b in hybrid["facets"]["brand"]) == (len(scope) or len(ids(hybrid)))


def test_selected_filter_values_are_marked(api_for: Api, closed_address: str) -> None:
    body = (
        api_for(closed_address)
        .get("/api/search", params={"q": "mug", "brand": "Acme", "mode": "bm25", "rerank": False})
        .json()
    )
    assert body["facets"]["brand"] == [{"value": "Acme", "count": 6, "selected": True}]


# ---- reranking, compare view, pagination --------------------------------------------------------


def test_reranked_search_with_compare_columns(api_for: Api, tiny_sidecar: str) -> None:
    api = api_for(tiny_sidecar)
    params: dict[str, Any] = {"q": "shoes", "page_size": 5, "compare": True, "explain": True}
    body = api.get("/api/search", params=params).json()
    assert body["reranked"] is True
    assert body["fail_open"] is False
    assert body["model_version"].startswith("tiny-ce")
    first_stage = ids(api.get("/api/search", params={"q": "shoes", "page_size": 5, "rerank": False}).json())
    compare = body["compare"]
    assert [r["id"] for r in compare["first_stage"]] == first_stage
    assert [r["id"] for r in compare["diversified"]] == ids(body)
    reranked = compare["reranked"]
    assert [r["explanation"]["scored_rank"] for r in reranked] == list(range(5))
    for name in ("tokenize_ms", "inference_ms", "total_ms"):
        assert body["timings"][f"sidecar_{name}"] > 0
    for name in ("embed_ms", "first_stage_ms", "rerank_ms", "total_ms"):
        assert body["timings"][name] > 0


def test_attribute_weight_reaches_the_sidecars_similarity(api_for: Api, tiny_sidecar: str) -> None:
    api = api_for(tiny_sidecar)
    params: dict[str, Any] = {"q": "mug", "page_size": 5, "diversity": "dpp", "strength": 0.5, "explain": True}

    def reasons(weight: float) -> str:
        body = api.get("/api/search", params={**params, "attribute_weight": weight}).json()
        assert body["reranked"] is True
        return " ".join(r["explanation"]["reason"] for r in body["results"])

    assert "similarity" not in reasons(0.0)
    assert "; closest #1, similarity" in reasons(0.5)  # cosine and attributes mixed
    # Attributes alone need no vectors: the reasons name the shared brand/category, not a cosine.
    only = reasons(1.0)
    assert "DPP (attribute similarity)" in only
    assert "cos " not in only


def test_caps_that_cannot_hold_still_fill_the_page_and_say_so(api_for: Api, tiny_sidecar: str) -> None:
    api = api_for(tiny_sidecar)
    # The catalogue has three brands: a page of five at one per brand cannot hold the cap.
    body = api.get("/api/search", params={"q": "mug", "page_size": 5, "max_per_brand": 1}).json()
    assert body["reranked"] is True
    assert len(body["results"]) == 5
    brands = [r["brand"] for r in body["results"]]
    assert len(set(brands[:3])) == 3, "the first three results take one brand each"
    assert any("caps could not hold" in note for note in body["diversity_notes"])
    holds = api.get("/api/search", params={"q": "mug", "page_size": 3, "max_per_brand": 1}).json()
    assert len({r["brand"] for r in holds["results"]}) == 3
    assert not any("caps could not hold" in note for note in holds["diversity_notes"])


@pytest.mark.parametrize("cache_entries", [256, 0])
def test_page_two_never_repeats_page_one(api_for: Api, tiny_sidecar: str, cache_entries: int) -> None:
    api = api_for(tiny_sidecar, search_cache_entries=cache_entries)
    params: dict[str, Any] = {"q": "red", "page_size": 7, "diversity": "mmr", "strength": 0.5}
    pages = [api.get("/api/search", params={**params, "page": n}).json() for n in (1, 2, 3)]
    assert all(p["reranked"] for p in pages)
    seen = [i for p in pages for i in ids(p)]
    assert len(seen) == 21
    assert len(set(seen)) == len(seen), "an item appeared on two pages"
    whole = api.get("/api/search", params={**params, "page_size": 21}).json()
    assert ids(whole) == seen, "pages are slices of one ranked window"
    assert pages[1]["cached"] is (cache_entries > 0)
    assert pages[1]["window_timings"]["sidecar_inference_ms"] > 0, "a cached page still says what ranking took"


# ---- fail-open --------------------------------------------------------------------------------


def test_no_sidecar_fails_open_to_first_stage_order(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    response = api.get("/api/search", params={"q": "lamp", "page_size": 8})
    assert response.status_code == 200
    body = response.json()
    assert body["fail_open"] is True
    assert body["reranked"] is False
    assert "UNAVAILABLE" in body["fail_open_reason"]
    first_stage = api.get("/api/search", params={"q": "lamp", "page_size": 8, "rerank": False}).json()
    assert ids(body) == ids(first_stage)
    assert first_stage["fail_open"] is False, "switching reranking off is not a failure"


def test_slow_sidecar_fails_open_at_the_deadline(api_for: Api, slow_sidecar: str) -> None:
    api = api_for(slow_sidecar, sidecar_deadline_ms=200)
    response = api.get("/api/search", params={"q": "jacket", "page_size": 4, "compare": True})
    assert response.status_code == 200
    body = response.json()
    assert body["fail_open"] is True
    assert "DEADLINE_EXCEEDED" in body["fail_open_reason"]
    assert body["timings"]["rerank_ms"] < 1500, "the front door waited past its deadline"
    columns = body["compare"]
    assert ids(body) == [r["id"] for r in columns["first_stage"]] == [r["id"] for r in columns["reranked"]]


def test_healthz_and_demo_page(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    assert api.get("/healthz").json() == {"status": "ok"}
    page = api.get("/")
    assert page.status_code == 200
    assert 'id="compare"' in page.text
    assert api.get("/static/app.js").status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"diversity_method": "xquad", "diversity_strength": 0.6, "blend_weight": 0.2, "rerank_window": 40},
        {"intent": True, "intent_boost": 0.3, "intent_filter_threshold": 0.9},
    ],
)
def test_defaults_report_what_the_server_applies(api_for: Api, closed_address: str, overrides: dict[str, Any]) -> None:
    body = api_for(closed_address, **overrides).get("/api/defaults").json()
    settings = Settings(**overrides)
    assert body == {
        "mode": "hybrid",
        "rerank": True,
        "page_size": 10,
        "rerank_window": settings.rerank_window,
        "blend_weight": settings.blend_weight,
        "diversity": settings.diversity_method,
        "strength": settings.diversity_strength,
        "attribute_weight": settings.diversity_attribute_weight,
        "diversity_window": settings.diversity_window,
        "diversity_facets": list(settings.diversity_facets),
        "intent": settings.intent,
        "intent_boost": settings.intent_boost,
        "intent_threshold": settings.intent_filter_threshold,
    }


# ---- nothing a shopper types is a server error --------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    q=st.text(min_size=0, max_size=600),
    brand=st.lists(st.text(max_size=40), max_size=3),
    mode=st.sampled_from(["bm25", "knn", "hybrid"]),
)
def test_any_text_is_answered_200_or_400(
    api_for: Api, closed_address: str, q: str, brand: list[str], mode: str
) -> None:
    api = api_for(closed_address)
    response = api.get("/api/search", params={"q": q, "brand": brand, "mode": mode})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]
