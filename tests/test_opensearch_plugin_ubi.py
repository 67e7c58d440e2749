"""#19 through the plugin, on the live node: every search through `shoprank_rerank` gets a query_id
(UUID4, or the client's own) in ext.shoprank, and its UBI query record, with the hit ids in served
order, lands in the node's ubi_queries index, written off the request path."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opensearchpy.exceptions import NotFoundError

from engines.opensearch import OpenSearchEngine
from frontdoor.ubi_capture import UBI_MAPPINGS
from shoprank.ubi_log import QUERIES
from sidecar.server import Sidecar
from tests.opensearch_live import LiveCluster, engine_under_alias
from tests.test_opensearch_plugin import DIM, PLUGIN_CLASS, QUERY, catalogue, ids, search
from tests.test_opensearch_plugin import sidecar as sidecar  # the fixture, re-exported for pytest

pytestmark = pytest.mark.opensearch

RECORD_WAIT_S = 30.0


@pytest.fixture(scope="module")
def indexed(opensearch_cluster: LiveCluster) -> Iterator[OpenSearchEngine]:
    with engine_under_alias(opensearch_cluster) as engine:
        plugins = engine.client.cat.plugins(format="json")
        if not any(p.get("component") in (PLUGIN_CLASS, "shoprank") for p in plugins):
            pytest.skip(f"the cluster at {opensearch_cluster.url} has no shoprank plugin (install it: make plugin)")
        items = catalogue(40)
        vectors = np.random.default_rng(0).normal(size=(len(items), DIM)).astype(np.float32)
        builder = engine.begin_version(DIM)
        assert builder.write(items, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) == []
        builder.commit()
        yield engine


@pytest.fixture
def ubi_index(indexed: OpenSearchEngine) -> Iterator[str]:
    """This test's own ubi_queries index, with the mapping `shoprank opensearch setup` gives it."""
    name = f"{QUERIES}-{uuid.uuid4().hex[:8]}"
    indexed.client.indices.create(index=name, body={"mappings": UBI_MAPPINGS[QUERIES]})
    yield name
    indexed.client.indices.delete(index=name, ignore_unavailable=True)
    indexed.client.transport.perform_request("DELETE", "/_search/pipeline/shoprank-ubi-*", params={"ignore": 404})


def wait_for_record(engine: OpenSearchEngine, index: str, query_id: str) -> dict[str, Any]:
    """The record once the asynchronous write has landed (it is not on the search's path)."""
    give_up = time.monotonic() + RECORD_WAIT_S
    while True:
        try:
            found: dict[str, Any] = engine.client.get(index=index, id=query_id)["_source"]
            return found
        except NotFoundError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)


def test_the_query_id_comes_back_and_its_ubi_record_lands_with_the_served_hits(
    indexed: OpenSearchEngine, sidecar: Sidecar, ubi_index: str
) -> None:
    body = {
        "request_processors": [{"shoprank_rerank": {"window": 20}}],
        "response_processors": [
            {
                "shoprank_rerank": {
                    "targets": [f"127.0.0.1:{sidecar.port}"],
                    "deadline_ms": 5000,
                    "ubi": {"index": ubi_index, "application": "shop-test"},
                }
            }
        ],
    }
    indexed.client.transport.perform_request("PUT", "/_search/pipeline/shoprank-ubi-e2e", body=body)
    page = search(indexed, 10, 10, "shoprank-ubi-e2e", ext={"client_id": "browser-7f3a"})
    ext = page["ext"]["shoprank"]
    assert ext["reranked"] is True
    query_id = ext["query_id"]
    assert uuid.UUID(query_id).version == 4
    record = wait_for_record(indexed, ubi_index, query_id)
    assert record["query_response_hit_ids"] == ids(page), "the page's hits in served order"
    assert record["user_query"] == QUERY
    assert record["client_id"] == "browser-7f3a"
    assert record["application"] == "shop-test"
    assert record["timestamp"].endswith("Z")
    attributes = record["query_attributes"]
    assert attributes["engine"] == "opensearch-plugin"
    assert attributes["reranked"] == "true"
    assert attributes["model_version"] == ext["model_version"]
    assert attributes["from"] == "10"

    own = search(indexed, 0, 10, "shoprank-ubi-e2e", ext={"query_id": "shop-own-0001"})
    assert own["ext"]["shoprank"]["query_id"] == "shop-own-0001"
    assert wait_for_record(indexed, ubi_index, "shop-own-0001")["query_response_hit_ids"] == ids(own)
    # SRW reads query ids with term queries: the mapping keeps them keywords.
    indexed.client.indices.refresh(index=ubi_index)
    hits = indexed.client.search(index=ubi_index, body={"query": {"term": {"query_id": query_id}}})["hits"]["hits"]
    assert [hit["_id"] for hit in hits] == [query_id]
