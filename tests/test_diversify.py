"""The diversity module on seeded synthetic data: coverage gains, caps, determinism, edge cases,
and each method checked against a direct (slow) implementation of its formula."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.diversity_metrics import brand_coverage_at_k, category_coverage_at_k
from sidecar.diversify import METHODS, DiversityParamError, DiversityParams, Method, diversify
from tests.diversity_data import clustered

DIVERSE: tuple[Method, ...] = ("mmr", "xquad", "dpp")


def relevance_order(relevance: npt.ArrayLike, k: int) -> list[int]:
    return [int(i) for i in np.argsort(-np.asarray(relevance), kind="stable")[:k]]


@pytest.mark.parametrize("method", DIVERSE)
@pytest.mark.parametrize("seed", range(5))
def test_moderate_strength_raises_brand_and_category_coverage(method: Method, seed: int) -> None:
    c = clustered(seed)
    baseline = relevance_order(c.relevance, 10)
    page = diversify(
        c.relevance, 10, DiversityParams(method=method, strength=0.5), c.embeddings, c.brands, c.categories
    )

    def coverage(order: list[int]) -> tuple[float, float]:
        return (
            brand_coverage_at_k([c.brands[i] for i in order], 10),
            category_coverage_at_k([c.categories[i] for i in order], 10),
        )

    base_brand, base_category = coverage(baseline)
    brand, category = coverage(page.order)
    assert brand > base_brand
    assert category > base_category
    assert page.method == method
    assert page.order[0] == baseline[0]  # nothing is redundant with an empty page


def test_mmr_and_dpp_cover_every_cluster_before_repeating_one() -> None:
    c = clustered(3, clusters=6)
    methods: tuple[Method, ...] = ("mmr", "dpp")
    for method in methods:
        page = diversify(c.relevance, 6, DiversityParams(method=method, strength=0.5), c.embeddings, c.brands)
        assert sorted(c.cluster[page.order]) == list(range(6)), method


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=40, deadline=None)
@given(
    relevance=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]), min_size=1, max_size=30),
    k=st.integers(min_value=1, max_value=35),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_strength_zero_is_relevance_order_exactly(method: Method, relevance: list[float], k: int, seed: int) -> None:
    # Few distinct values: lots of ties, which must keep input order.
    rng = np.random.default_rng(seed)
    n = len(relevance)
    embeddings = rng.normal(size=(n, 8)).astype(np.float32)
    brands = [f"b{i % 2}" for i in range(n)]
    page = diversify(np.array(relevance), k, DiversityParams(method=method, strength=0.0), embeddings, brands)
    assert page.order == relevance_order(relevance, k)
    assert page.method == "none"
    assert page.terms == [0.0] * len(page.order)


@pytest.mark.parametrize("method", METHODS)
def test_identical_inputs_give_identical_pages_and_ties_keep_input_order(method: Method) -> None:
    c = clustered(11, n=40)
    params = DiversityParams(method=method, strength=0.4, max_per_brand=3)
    first = diversify(c.relevance, 10, params, c.embeddings, c.brands, c.categories)
    second = diversify(c.relevance.copy(), 10, params, c.embeddings.copy(), list(c.brands), list(c.categories))
    assert first == second
    # Two exact copies of the best product: the earlier input goes first.
    relevance = np.array([0.5, 1.0, 1.0, 0.2], dtype=np.float32)
    embeddings = np.eye(4, dtype=np.float32)
    embeddings[2] = embeddings[1]
    page = diversify(relevance, 4, DiversityParams(method=method, strength=0.4), embeddings, ["a", "b", "b", "c"])
    assert page.order.index(1) < page.order.index(2)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("cap_field", "cap"), [("max_per_brand", 1), ("max_per_brand", 2), ("max_per_category", 3)])
def test_caps_hold_on_the_page_for_every_method(method: Method, cap_field: str, cap: int) -> None:
    c = clustered(5)
    caps: dict[str, Any] = {cap_field: cap}
    params = DiversityParams(method=method, strength=0.3, **caps)
    page = diversify(c.relevance, 6, params, c.embeddings, c.brands, c.categories)
    assert len(page.order) == 6
    keys = c.brands if cap_field == "max_per_brand" else [" > ".join(p) for p in c.categories]
    assert max(Counter(keys[i] for i in page.order).values()) <= cap
    assert page.method == ("caps" if method == "none" else f"{method}+caps")
    assert not page.notes or "caps could not hold" not in " ".join(page.notes)


def test_caps_with_relevance_order_defer_the_capped_product_and_say_why() -> None:
    relevance = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    brands = ["Acme", "ACME ", "acme", "Zed", "Acme"]  # brands compare case- and space-insensitively
    page = diversify(relevance, 4, DiversityParams(max_per_brand=2), brands=brands)
    assert page.order == [0, 1, 3, 2]
    assert page.reasons[0] == "kept at #1: most relevant within the caps"
    assert page.reasons[2] == "moved up 1: most relevant within the caps"
    assert page.reasons[3] == (
        "moved down 1: cap exceeded, no candidate within the caps left: same brand as #1, #2 (brand cap 2); "
        "most relevant within the caps"
    )
    assert page.notes == ("caps could not hold: 1 of 4 results exceed a cap (no other candidates left)",)


def test_a_product_passed_over_by_a_cap_says_which_results_hold_the_cap() -> None:
    relevance = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], dtype=np.float32)
    categories = [["A", "x"], ["A", "x"], ["A", "y"], ["A", "x"], ["A", "z"], ["A", "y"]]
    page = diversify(relevance, 6, DiversityParams(max_per_category=2), categories=categories)
    assert page.order == [0, 1, 2, 4, 5, 3]
    assert page.reasons[5].startswith("moved down 2: cap exceeded")
    page = diversify(relevance, 5, DiversityParams(max_per_category=2), categories=categories)
    assert page.order == [0, 1, 2, 4, 5]  # prefix-stable: the first k picks do not depend on k


def test_caps_that_cannot_hold_still_fill_the_page() -> None:
    c = clustered(2, n=30)
    brands = ["Only Brand"] * 30
    for method in METHODS:
        params = DiversityParams(method=method, strength=0.5, max_per_brand=2)
        page = diversify(c.relevance, 10, params, c.embeddings, brands, c.categories)
        assert len(page.order) == 10
        assert len(set(page.order)) == 10
        assert "8 of 10 results exceed a cap" in " ".join(page.notes)
        assert all("cap exceeded" in r for r in page.reasons[2:])


def test_caps_count_per_page_when_a_window_is_cut_into_pages() -> None:
    relevance = np.linspace(1, 0, 12).astype(np.float32)
    brands = ["A", "A", "B", "A", "B", "C", "A", "B", "B", "C", "C", "C"]
    whole = diversify(relevance, 12, DiversityParams(max_per_brand=1), brands=brands)
    paged = diversify(relevance, 12, DiversityParams(max_per_brand=1, page_size=3), brands=brands)
    for page in range(4):
        on_page = [brands[i] for i in paged.order[page * 3 : page * 3 + 3]]
        assert sorted(on_page) == ["A", "B", "C"], f"page {page + 1}: {on_page}"
    assert paged.notes == ()
    assert "caps could not hold: 9 of 12" in whole.notes[0], "one window-wide cap cannot hold past 3 results"
    assert paged.order[:3] == whole.order[:3] == [0, 2, 5]


def test_unbranded_and_uncategorised_products_are_never_capped() -> None:
    relevance = np.linspace(1, 0, 6).astype(np.float32)
    page = diversify(relevance, 6, DiversityParams(max_per_brand=1, max_per_category=1), brands=[""] * 6)
    assert page.order == list(range(6))
    assert page.notes == ()


@pytest.mark.parametrize("method", METHODS)
def test_edge_sizes(method: Method) -> None:
    params = DiversityParams(method=method, strength=0.5)
    one = diversify(np.array([0.3]), 10, params, np.ones((1, 4), dtype=np.float32), ["a"], [["c"]])
    assert one.order == [0]
    assert len(one.scores) == len(one.terms) == len(one.reasons) == 1
    c = clustered(1, n=7)
    more_than_n = diversify(c.relevance, 50, params, c.embeddings, c.brands, c.categories)
    assert sorted(more_than_n.order) == list(range(7))
    assert diversify(np.array([], dtype=np.float32), 10, params).order == []
    assert diversify(c.relevance, 0, params, c.embeddings).order == []


@pytest.mark.parametrize("method", ["mmr", "dpp"])
def test_without_usable_embeddings_mmr_and_dpp_use_brand_and_category(method: Method) -> None:
    relevance = np.array([1.0, 0.95, 0.9, 0.5], dtype=np.float32)
    brands = ["a", "a", "b", "c"]
    categories = [["x"], ["x"], ["x"], ["y"]]
    params = DiversityParams(method=method, strength=0.5)
    for embeddings in (None, np.zeros((4, 0), dtype=np.float32), np.zeros((4, 8), dtype=np.float32)):
        page = diversify(relevance, 4, params, embeddings, brands, categories)
        # #1 is a same-brand same-category duplicate of #0: it goes last.
        assert page.order[-1] == 1
        assert page.notes == (
            f"{method}: attribute similarity (same brand 0.5 + same category 0.5) for 4 of 4 candidates "
            "without a usable embedding (missing, empty or zero)",
        )
        assert f"{method.upper()} (attribute similarity)" in page.reasons[1]
    mmr = diversify(relevance, 4, DiversityParams(method="mmr", strength=0.5), None, brands, categories)
    assert mmr.reasons[1] == "moved up 1: MMR (attribute similarity): redundancy 0.50 with #1 (same category)"


def test_zero_rows_mix_cosine_and_attribute_similarity() -> None:
    c = clustered(4, n=12, clusters=3)
    embeddings = c.embeddings.copy()
    embeddings[[2, 5]] = 0.0
    page = diversify(c.relevance, 12, DiversityParams(method="mmr", strength=0.5), embeddings, c.brands, c.categories)
    assert sorted(page.order) == list(range(12))
    assert "for 2 of 12 candidates" in page.notes[0]
    assert any("embedding + attribute similarity" in r for r in page.reasons)


def test_dpp_survives_exact_duplicates_and_more_picks_than_kernel_rank() -> None:
    relevance = np.linspace(1, 0.1, 20).astype(np.float32)
    embeddings = np.tile(np.eye(3, dtype=np.float32), (7, 1))[:20]  # rank 3
    page = diversify(relevance, 20, DiversityParams(method="dpp", strength=0.5, window=20), embeddings)
    assert page.order[:3] == [0, 1, 2]  # one of each direction first
    assert page.order[3:] == list(range(3, 20))  # then, with the kernel exhausted, by relevance
    assert all(np.isfinite(page.scores))


def test_a_dpp_window_wider_than_the_candidates_is_the_whole_list() -> None:
    # Any positive window is valid on the wire; a huge one must not size memory by it.
    rng = np.random.default_rng(5)
    relevance, embeddings = rng.random(12), rng.normal(size=(12, 8)).astype(np.float32)
    whole = diversify(relevance, 12, DiversityParams(method="dpp", strength=0.5, window=12), embeddings)
    huge = diversify(relevance, 12, DiversityParams(method="dpp", strength=0.5, window=2**32 - 1), embeddings)
    assert huge.order == whole.order
    assert huge.scores == whole.scores


def _min_max(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray((values - values.min()) / (values.max() - values.min()), dtype=np.float64)


def _cosine(embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return np.asarray(unit @ unit.T, dtype=np.float64)


def _reference_greedy(n: int, k: int, objective):  # type: ignore[no-untyped-def]
    page: list[int] = []
    scores: list[float] = []
    for _ in range(k):
        value, best = max((objective(i, page), i) for i in range(n) if i not in page)
        page.append(best)
        scores.append(value)
    return page, scores


@pytest.mark.parametrize("seed", range(3))
def test_mmr_matches_its_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, s = 25, 0.6
    relevance = rng.permutation(n).astype(np.float64)  # no ties: the reference need not break any
    embeddings = rng.normal(size=(n, 16)).astype(np.float32)
    rel, sim = _min_max(relevance), _cosine(embeddings)

    def objective(i: int, page: list[int]) -> float:
        return float((1 - s) * rel[i] - s * (max(sim[i, j] for j in page) if page else 0.0))

    order, scores = _reference_greedy(n, 10, objective)
    page = diversify(relevance, 10, DiversityParams(method="mmr", strength=s), embeddings)
    assert page.order == order
    np.testing.assert_allclose(page.scores, scores, atol=1e-6)


@pytest.mark.parametrize(("seed", "window"), [(0, 10), (1, 3), (2, 1)])
def test_dpp_matches_log_det_gains_in_its_window(seed: int, window: int) -> None:
    rng = np.random.default_rng(seed)
    n, s = 20, 0.4
    relevance = rng.permutation(n).astype(np.float64)
    embeddings = rng.normal(size=(n, 24)).astype(np.float32)  # dim > n: full-rank kernel
    rel, kernel = _min_max(relevance), _cosine(embeddings)

    def log_det(items: list[int]) -> float:
        return float(np.linalg.slogdet(kernel[np.ix_(items, items)])[1]) if items else 0.0

    def objective(i: int, page: list[int]) -> float:
        context = page[max(0, len(page) - (window - 1)) :] if window > 1 else []
        return float((1 - s) * rel[i] + s * (log_det([*context, i]) - log_det(context)))

    order, scores = _reference_greedy(n, 10, objective)
    page = diversify(relevance, 10, DiversityParams(method="dpp", strength=s, window=window), embeddings)
    assert page.order == order
    np.testing.assert_allclose(page.scores, scores, atol=1e-6)


def test_xquad_matches_its_formula() -> None:
    rng = np.random.default_rng(9)
    n, s = 30, 0.7
    relevance = rng.permutation(n).astype(np.float64)
    categories = [["Root", f"leaf {rng.integers(4)}"] if i % 7 else [] for i in range(n)]
    rel = _min_max(relevance)
    aspect = [" > ".join(c) for c in categories]
    share = {a: sum(rel[i] for i in range(n) if aspect[i] == a) / rel.sum() for a in set(aspect)}
    top_share = max(share.values())

    def objective(i: int, page: list[int]) -> float:
        uncovered = float(np.prod([1 - rel[j] for j in page if aspect[j] == aspect[i]]))
        return float((1 - s) * rel[i] + s * share[aspect[i]] / top_share * rel[i] * uncovered)

    order, scores = _reference_greedy(n, 12, objective)
    page = diversify(relevance, 12, DiversityParams(method="xquad", strength=s), categories=categories)
    assert page.order == order
    np.testing.assert_allclose(page.scores, scores, atol=1e-9)


def test_xquad_explains_new_and_covered_categories() -> None:
    relevance = np.array([1.0, 0.9, 0.5, 0.0], dtype=np.float32)
    categories = [["A", "Shoes"], ["A", "Shoes"], ["A", "Socks"], ["B", "Laces"]]
    page = diversify(relevance, 4, DiversityParams(method="xquad", strength=0.8), categories=categories)
    assert page.order == [0, 2, 1, 3]
    assert page.reasons[0] == "kept at #1: xQuAD: new category 'Shoes' (weight 0.79, aspect gain 1.00)"
    assert page.reasons[2] == "moved down 1: xQuAD: category 'Shoes' already at #1 (weight 0.79, aspect gain 0.00)"


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"strength": 1.5}, "strength", "strength: must be between 0 and 1, got 1.5"),
        ({"strength": -0.1}, "strength", "strength: must be between 0 and 1, got -0.1"),
        ({"strength": float("nan")}, "strength", "strength: must be a number between 0 and 1, got nan"),
        ({"window": 0}, "window", "window: must be an integer of at least 1, got 0"),
        ({"max_per_brand": 0}, "max_per_brand", "max_per_brand: must be an integer of at least 1, got 0"),
        ({"max_per_category": True}, "max_per_category", "max_per_category: must be an integer of at least 1"),
        ({"method": "random"}, "method", "method: unknown method 'random'; use one of none, mmr, xquad, dpp"),
        ({"attribute_weight": 1.2}, "attribute_weight", "attribute_weight: must be between 0 and 1, got 1.2"),
        ({"attribute_weight": "x"}, "attribute_weight", "attribute_weight: must be a number between 0 and 1"),
    ],
)
def test_invalid_params_name_the_field(kwargs: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(DiversityParamError) as raised:
        DiversityParams(**kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: diversify(np.ones((2, 2)), 2, DiversityParams()), "relevance"),
        (lambda: diversify(np.array([1.0, np.nan]), 2, DiversityParams()), "relevance"),
        (lambda: diversify(np.ones(3), 2, DiversityParams(method="mmr"), np.ones((2, 4))), "embeddings"),
        (lambda: diversify(np.ones(2), 2, DiversityParams(method="mmr"), np.full((2, 4), np.inf)), "embeddings"),
        (lambda: diversify(np.ones(3), 2, DiversityParams(), brands=["a"]), "brands"),
        (lambda: diversify(np.ones(3), 2, DiversityParams(), categories=[["a"]] * 4), "categories"),
        (lambda: diversify(np.ones(3), -1, DiversityParams()), "k"),
    ],
)
def test_inconsistent_inputs_name_the_field(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DiversityParamError) as raised:
        call()
    assert raised.value.field == field
