"""Which products facets count (engines.facet_counts), on both engines, for queries whose words also
appear in unrelated products: "red mug" shares "red" with red lamps, jackets and shoes, which the
ranking may retrieve but the facets must not count.

LanceDB runs for real on the test stack. OpenSearch runs through the recording transport: the fake
cluster evaluates the facet scope the engine sends (the shop-box `multi_match` with its
minimum_should_match, and the `knn` window) over the stored documents, so the test checks that the
body says what the definition says and that the engine reads the answer back, fallback included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from engines.base import FacetBucket, Filters, RetrievalMode, RetrievalQuery
from engines.facet_counts import count_facets, facet_row
from engines.lance import LanceEngine
from engines.opensearch import OpenSearchEngine
from engines.opensearch_setup import apply_setup
from frontdoor.facets import shape_facets
from shoprank.bi_encoder import BiEncoder
from shoprank.schema import Product
from shoprank.settings import REPO_ROOT
from tests.frontdoor.conftest import catalogue_rows
from tests.frontdoor.test_opensearch_frontdoor import aggregations_over
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster, search_response

CATALOGUE = len(catalogue_rows())
RED_MUGS = [r for r in catalogue_rows() if r["id"].startswith("mug-") and r["color"] == "Red"]
TEXT_FIELDS = ("title", "brand", "category_path", "color", "bullet_points", "description")


def _pairs(buckets: list[FacetBucket]) -> list[tuple[str, int]]:
    return [(b.value, b.count) for b in buckets]


def _expected_red_mugs() -> dict[str, list[tuple[str, int]]]:
    facets = count_facets(facet_row(Product(**row)) for row in RED_MUGS)
    return {name: _pairs(buckets) for name, buckets in facets.items()}


# ---- LanceDB ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lance(stack_dir: Path) -> LanceEngine:
    return LanceEngine(stack_dir / "lancedb")


@pytest.fixture(scope="module")
def encoder(stack_dir: Path) -> BiEncoder:
    return BiEncoder(stack_dir / "models")


def _query(encoder: BiEncoder, text: str, mode: RetrievalMode, size: int) -> RetrievalQuery:
    return RetrievalQuery(text, encoder.encode_one(text), mode, size, Filters(), with_facets=True)


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_lance_facets_count_only_the_products_matching_every_word(
    lance: LanceEngine, encoder: BiEncoder, mode: RetrievalMode
) -> None:
    # A window as large as the catalogue: the kNN window holds every product, so the scope is
    # exactly the products with both words, the six red mugs.
    result = lance.retrieve(_query(encoder, "red mug", mode, CATALOGUE))
    assert {name: _pairs(buckets) for name, buckets in result.facets.items()} == _expected_red_mugs()
    assert _pairs(result.facets["category"]) == [("Mugs", 6)]
    if mode != "knn":
        retrieved = {h.product.category[-1] for h in result.hits}
        assert retrieved > {"Mugs"}, "the ranking retrieves unrelated red products, the facets do not count them"


def test_lance_facets_are_the_text_matches_inside_the_knn_window(lance: LanceEngine, encoder: BiEncoder) -> None:
    query = _query(encoder, "red mug", "hybrid", 20)
    knn = {h.product.id for h in lance.retrieve(RetrievalQuery(query.text, query.vector, "knn", 20)).hits}
    scope = sorted(set(lance.text_matches(query)) & knn)
    assert scope, "the tiny model's kNN window of 20 holds some red mug"
    assert set(scope) <= {r["id"] for r in RED_MUGS}
    assert lance.retrieve(query).facets == count_facets(facet_row(p) for p in lance.get(scope))


def test_lance_facets_fall_back_to_the_ranked_window_when_no_product_matches_the_words(
    lance: LanceEngine, encoder: BiEncoder
) -> None:
    result = lance.retrieve(_query(encoder, "xylophone", "hybrid", 7))
    assert len(result.hits) == 7
    assert result.facets == count_facets(facet_row(h.product) for h in result.hits)
    assert sum(b.count for b in result.facets["brand"]) == 7


def test_lance_text_matches_follow_minimum_should_match(lance: LanceEngine) -> None:
    def matches(text: str, rule: str | None = "2<75%") -> set[str]:
        return set(lance.text_matches(RetrievalQuery(text, None, "bm25"), minimum_should_match=rule))

    mugs = {r["id"] for r in catalogue_rows() if r["id"].startswith("mug-")}
    assert matches("red mug") == {r["id"] for r in RED_MUGS}
    assert matches("the red mug") == matches("red mug"), "stop words do not count"
    # Three words: two are enough ("blue" matches no mug, "coffee mug" every mug).
    assert matches("blue coffee mug") == mugs
    assert len(matches("red mug", None)) == len({r["id"] for r in catalogue_rows() if r["color"] == "Red"} | mugs)


def test_the_front_door_shows_facets_of_what_was_searched_for(
    api_for: Callable[..., TestClient], closed_address: str
) -> None:
    body = api_for(closed_address).get("/api/search", params={"q": "red mug", "rerank": "false"}).json()
    assert [(b["value"], b["count"]) for b in body["facets"]["category"]] == [("Mugs", 6)]
    assert [(b["value"], b["count"]) for b in body["facets"]["color"]] == [("Red", 6)]
    assert {r["color"] for r in body["results"]} >= {"Red"}


def test_equal_counts_follow_the_ranked_window_and_absent_values_come_last() -> None:
    window = [Product(id=str(i), title="t", brand=brand) for i, brand in enumerate(["Zed", "Acme", "Mid"])]
    counts = {"brand": [FacetBucket("Absent", 2), FacetBucket("Acme", 2), FacetBucket("Zed", 2), FacetBucket("Mid", 3)]}
    shaped = shape_facets(counts, Filters(), window)
    assert [b["value"] for b in shaped["brand"]] == ["Mid", "Zed", "Acme", "Absent"]


# ---- OpenSearch (recording transport) ---------------------------------------------------------


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


class ScopeEvaluator:
    """Evaluates the few query clauses a facet scope is made of over the fake's documents."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs

    def matching(self, clause: dict[str, Any]) -> set[str]:
        (kind, spec), *_ = clause.items()
        if kind == "bool":
            sets = [self.matching(c) for key in ("must", "filter") for c in spec.get(key, [])]
            return set.intersection(*sets) if sets else set(self.docs)
        if kind == "multi_match":
            return self._multi_match(spec)
        if kind == "knn":
            return self._knn(spec["vector"])
        raise AssertionError(f"the facet scope uses a clause this fake does not evaluate: {kind}")

    def _multi_match(self, spec: dict[str, Any]) -> set[str]:
        assert spec["minimum_should_match"] == "2<75%"
        assert spec["type"] == "cross_fields"
        fields = [f.split("^")[0] for f in spec["fields"]]
        assert set(fields) == set(TEXT_FIELDS)
        terms = _words(spec["query"])
        need = len(terms) if len(terms) <= 2 else math.floor(len(terms) * 0.75)
        found = set()
        for doc_id, doc in self.docs.items():
            text = _words(" ".join(str(doc.get(f) or "") for f in fields))
            if terms and len(terms & text) >= need:
                found.add(doc_id)
        return found

    def _knn(self, spec: dict[str, Any]) -> set[str]:
        assert "filter" not in spec, "these tests search without shopper filters"
        query = np.asarray(spec["vector"], dtype=np.float32)
        scores = {i: float(np.dot(query, np.asarray(d["vector"], dtype=np.float32))) for i, d in self.docs.items()}
        return set(sorted(scores, key=lambda i: (-scores[i], i))[: spec["k"]])


@pytest.fixture
def opensearch(spec_validator: SpecValidator, encoder: BiEncoder) -> Iterator[tuple[OpenSearchEngine, FakeCluster]]:
    cluster = FakeCluster(spec_validator)
    client = cluster.client()
    apply_setup(client, REPO_ROOT / "opensearch", "products", 0.5)
    engine = OpenSearchEngine(client)
    products = [Product(**row) for row in catalogue_rows()]
    builder = engine.begin_version(384)
    assert builder.write(products, encoder.encode([p.title for p in products])) == []
    docs = cluster.indices[builder.commit()].docs
    evaluator = ScopeEvaluator(docs)

    def answer(index: str, body: dict[str, Any], _params: dict[str, Any]) -> dict[str, Any]:
        # Hits: every product sharing a word with the query (as an OR ranking would retrieve them).
        words = _words(body["query"]["hybrid"]["queries"][0]["bool"]["must"][0]["multi_match"]["query"])
        ranked = sorted(i for i, d in docs.items() if words & _words(d["title"]))[: body["size"]]
        hits = [(i, 1.0 / (rank + 1), docs[i]) for rank, i in enumerate(ranked)]
        scope = evaluator.matching(body["aggs"]["facets"]["filter"])
        return search_response(index, hits, aggregations_over([docs[i] for i in sorted(scope)]))

    cluster.search_hook = answer
    yield engine, cluster
    cluster.assert_valid()


def test_opensearch_facets_count_only_the_products_matching_every_word(
    opensearch: tuple[OpenSearchEngine, FakeCluster], encoder: BiEncoder
) -> None:
    engine, cluster = opensearch
    result = engine.retrieve(_query(encoder, "red mug", "hybrid", CATALOGUE))
    assert {h.product.category[-1] for h in result.hits} > {"Mugs"}, "unrelated red products are retrieved"
    assert {name: _pairs(buckets) for name, buckets in result.facets.items()} == _expected_red_mugs()
    sent = cluster.calls(suffix="_search")[-1].body
    text, knn = sent["aggs"]["facets"]["filter"]["bool"]["filter"]
    assert text == sent["query"]["hybrid"]["queries"][0], "the scope's text clause is the shop-box query itself"
    assert knn == sent["query"]["hybrid"]["queries"][1], "and its kNN clause the same kNN window"


def test_both_engines_count_the_same_facets(
    opensearch: tuple[OpenSearchEngine, FakeCluster], lance: LanceEngine, encoder: BiEncoder
) -> None:
    engine, _ = opensearch
    for text in ("red mug", "blue coffee mug", "acme lamp"):
        query = _query(encoder, text, "hybrid", CATALOGUE)
        assert engine.retrieve(query).facets == lance.retrieve(query).facets, text


def test_opensearch_facets_fall_back_to_the_ranked_window(
    opensearch: tuple[OpenSearchEngine, FakeCluster], encoder: BiEncoder
) -> None:
    engine, _ = opensearch
    # "desk xylophone": one of two words, so no product is in the scope; the hits (sharing "desk") are counted.
    result = engine.retrieve(_query(encoder, "desk xylophone", "hybrid", CATALOGUE))
    assert result.hits
    assert result.facets == count_facets(facet_row(h.product) for h in result.hits)
    assert _pairs(result.facets["category"]) == [("Desk Lamps", 18)]
