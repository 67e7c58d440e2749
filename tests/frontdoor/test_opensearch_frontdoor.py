"""The same front door over the OpenSearch engine (real engine code, recording transport, every
request validated against the pinned API spec): filters reach the query, facets come back
shaped like the embedded engine's, pages come from one window, the sidecar fails open."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from engines.opensearch import OpenSearchEngine
from engines.opensearch_setup import apply_setup
from frontdoor.http import create_app
from frontdoor.search import RankedWindow, SearchService
from frontdoor.window_cache import WindowCache
from shoprank.bi_encoder import BiEncoder
from shoprank.schema import Product
from shoprank.settings import REPO_ROOT
from tests.frontdoor.conftest import catalogue_rows
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster, search_response


@pytest.fixture
def cluster(spec_validator: SpecValidator) -> Iterator[FakeCluster]:
    fake = FakeCluster(spec_validator)
    yield fake
    fake.assert_valid()


def aggregations_over(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """What OpenSearch's facet aggregations (engines.opensearch_query FACET_SCOPE) would count over these documents."""

    def terms(values: list[str]) -> dict[str, Any]:
        counted = Counter(v for v in values if v)
        buckets = [{"key": k, "doc_count": n} for k, n in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": buckets}

    prices = [d["price"] for d in docs if d.get("price") is not None]
    ranges = [(0, 10), (10, 25), (25, 50), (50, 100), (100, 250), (250, None)]
    price_buckets = []
    for low, high in ranges:
        key = f"{low}+" if high is None else f"{low}-{high}"
        count = sum(1 for p in prices if p >= low and (high is None or p < high))
        price_buckets.append(
            {"key": key, "from": float(low), **({"to": float(high)} if high else {}), "doc_count": count}
        )
    return {
        "facets": {
            "doc_count": len(docs),
            "brand": terms([d["brand"] for d in docs]),
            "category": terms([(d.get("category") or [""])[-1] for d in docs]),
            "color": terms([d["color"] for d in docs]),
            "price": {"buckets": price_buckets},
        }
    }


@pytest.fixture
def api(cluster: FakeCluster, stack_dir: Path, closed_address: str) -> Iterator[TestClient]:
    from sidecar.client import RerankClient

    client = cluster.client()
    apply_setup(client, REPO_ROOT / "opensearch", "products", 0.5)
    engine = OpenSearchEngine(client)
    encoder = BiEncoder(stack_dir / "models")
    products = [Product(**row) for row in catalogue_rows() if row["id"].startswith(("mug-", "lamp-"))]
    builder = engine.begin_version(384)
    assert builder.write(products, encoder.encode([p.title for p in products])) == []
    live = builder.commit()
    docs = cluster.indices[live].docs

    def answer(index: str, body: dict[str, Any], _params: dict[str, Any]) -> dict[str, Any]:
        # The fake does not score: the "matches" are the mugs, best first by id, cut to the asked size.
        matching = sorted((doc_id, doc) for doc_id, doc in docs.items() if doc_id.startswith("mug-"))
        hits = [(doc_id, 1.0 / (rank + 1), doc) for rank, (doc_id, doc) in enumerate(matching)][: body["size"]]
        return search_response(index, hits, aggregations_over([d for _, d in matching]) if "aggs" in body else None)

    cluster.search_hook = answer
    rerank = RerankClient(closed_address, 500)
    service = SearchService(engine, encoder, rerank, window=12, cache=WindowCache[RankedWindow](16))
    yield TestClient(create_app(service))
    rerank.close()


def test_the_front_door_runs_unchanged_on_opensearch(api: TestClient, cluster: FakeCluster) -> None:
    response = api.get("/api/search", params={"q": "mug", "page_size": 5, "brand": "Acme", "price_max": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fail_open"] is True
    assert [r["id"] for r in body["results"]] == sorted(i for i in (r["id"] for r in catalogue_rows()) if "mug-" in i)[
        :5
    ]
    assert [b["value"] for b in body["facets"]["price"]] == ["0-10", "10-25", "25-50", "50-100", "100-250", "250+"]
    assert body["facets"]["price"][1]["price_max"] == 24.99
    assert body["facets"]["category"] == [{"value": "Mugs", "count": 18, "selected": False}]
    assert body["facets"]["brand"][0]["selected"] is True

    sent = [call.body for call in cluster.calls("POST", "_search") + cluster.calls("GET", "_search")]
    assert sent, "the engine queried the cluster"
    query = repr(sent[-1])
    assert "'Acme'" in query, "the brand filter reaches the OpenSearch query"
    assert "'lte': 100.0" in query, "the price filter reaches the OpenSearch query"
    assert "aggs" in sent[-1]


def test_opensearch_pages_come_from_one_window(api: TestClient, cluster: FakeCluster) -> None:
    pages = [api.get("/api/search", params={"q": "mug", "page_size": 5, "page": n}).json() for n in (1, 2, 3)]
    ids = [r["id"] for p in pages for r in p["results"]]
    assert len(ids) == 12 == len(set(ids))
    assert [p["cached"] for p in pages] == [False, True, True]
    beyond = api.get("/api/search", params={"q": "mug", "page_size": 5, "page": 4})
    assert beyond.status_code == 400
    assert "ask for page 1 to 3" in beyond.json()["error"]
    assert np.isfinite(pages[0]["timings"]["first_stage_ms"])
