"""Against a real OpenSearch (tests/opensearch_live.py: OPENSEARCH_URL or the session's local
node). One uniquely named alias (and template, pipelines, search template) per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from engines.base import Filters, RetrievalQuery
from engines.opensearch import OpenSearchEngine
from shoprank.schema import Product
from tests.opensearch_live import LiveCluster, engine_under_alias

pytestmark = pytest.mark.opensearch


@pytest.fixture
def engine(opensearch_cluster: LiveCluster) -> Iterator[OpenSearchEngine]:
    with engine_under_alias(opensearch_cluster) as engine:
        yield engine


def catalogue() -> tuple[list[Product], Any]:
    rng = np.random.default_rng(7)
    items = [
        Product(
            id="kettle",
            title="Electric kettle stainless steel",
            brand="Brewco",
            color="silver",
            category=["Kitchen", "Kettles"],
            price=30.0,
        ),
        Product(
            id="boots",
            title="Waterproof hiking boots",
            brand="Trekko",
            color="brown",
            category=["Shoes", "Hiking"],
            price=120.0,
        ),
        Product(
            id="runners",
            title="Lightweight running shoes",
            brand="Trekko",
            color="red",
            category=["Shoes", "Running"],
            price=80.0,
        ),
    ] + [Product(id=f"filler{i}", title=f"Plain widget {i}", brand="Generic", price=5.0) for i in range(20)]
    vectors = rng.normal(size=(len(items), 384)).astype(np.float32)
    return items, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_index_search_incremental_rollback(engine: OpenSearchEngine) -> None:
    items, vectors = catalogue()
    builder = engine.begin_version(384)
    assert builder.write(items, vectors) == []
    first = builder.commit()
    assert engine.count() == len(items)

    bm25 = engine.retrieve(RetrievalQuery("hiking boot", None, mode="bm25", size=5))
    assert bm25.hits[0].product.id == "boots"  # English stemming: boot ~ boots
    knn = engine.retrieve(RetrievalQuery("", vectors[0], mode="knn", size=3, with_vectors=True))
    assert knn.hits[0].product.id == "kettle"
    assert knn.hits[0].vector is not None
    hybrid = engine.retrieve(
        RetrievalQuery(
            "shoes", vectors[2], mode="hybrid", size=10, filters=Filters(brands=("Trekko",)), with_facets=True
        )
    )
    assert {h.product.id for h in hybrid.hits} <= {"boots", "runners"}
    assert hybrid.hits[0].product.id == "runners"
    assert {b.value for b in hybrid.facets["brand"]} == {"Trekko"}
    priced = engine.retrieve(RetrievalQuery("shoes", None, mode="bm25", filters=Filters(price_max=100)))
    assert [h.product.id for h in priced.hits] == ["runners"]

    assert engine.upsert([Product(id="kettle", title="Glass kettle", price=25.0)], vectors[:1]) == []
    assert engine.delete(["boots"]) == 1
    assert engine.get(["kettle", "boots"])[0].title == "Glass kettle"
    assert engine.count() == len(items) - 1

    builder = engine.begin_version(384)
    builder.write(items[:5], vectors[:5])
    builder.commit()
    assert engine.count() == 5
    assert engine.rollback() == first
    assert engine.count() == len(items) - 1
