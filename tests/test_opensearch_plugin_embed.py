"""The plugin's `shoprank_embed` on the live node with a real sidecar (tiny models, free port): a
shop box that sends text only gets the hybrid hits the Python engine finds with a client-side
vector; the index's recorded bi-encoder is checked; a down sidecar leaves a hybrid its text clause."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from engines.base import RetrievalQuery
from engines.opensearch import OpenSearchEngine
from engines.opensearch_assets import pipeline_body, pipeline_name
from engines.opensearch_query import search_body
from shoprank.bi_encoder import BiEncoder
from shoprank.settings import REPO_ROOT
from shoprank.template import bi_encoder_text
from sidecar.server import Sidecar, start_sidecar
from tests.opensearch_live import LiveCluster, engine_under_alias
from tests.sidecar_harness import settings_with
from tests.test_opensearch_plugin import DIM, PLUGIN_CLASS, catalogue

pytestmark = pytest.mark.opensearch

QUERIES = ("trail running shoe", "waterproof kettle", "light road mug")
KNN_WEIGHT = 0.5


@pytest.fixture(scope="module")
def encoder(tiny_models: Path) -> BiEncoder:
    return BiEncoder(tiny_models)


@pytest.fixture(scope="module")
def indexed(opensearch_cluster: LiveCluster, encoder: BiEncoder) -> Iterator[OpenSearchEngine]:
    """The catalogue embedded by the tiny bi-encoder, its version recorded in the index's _meta."""
    with engine_under_alias(opensearch_cluster) as engine:
        plugins = engine.client.cat.plugins(format="json")
        if not any(p.get("component") in (PLUGIN_CLASS, "shoprank") for p in plugins):
            pytest.skip(f"the cluster at {opensearch_cluster.url} has no shoprank plugin (install it: make plugin)")
        items = catalogue(60)
        builder = engine.begin_version(DIM, encoder.version)
        assert builder.write(items, encoder.encode([bi_encoder_text(p) for p in items])) == []
        builder.commit()
        assert engine.bi_encoder_version() == encoder.version
        yield engine
        engine.client.transport.perform_request("DELETE", "/_search/pipeline/shoprank-embed-*", params={"ignore": 404})


@pytest.fixture
def sidecar(tiny_models: Path, tmp_path: Path) -> Iterator[Sidecar]:
    running = start_sidecar(settings_with(tiny_models, tmp_path), background_load=False)
    yield running
    running.shutdown(0)


def put_embed_pipeline(client: OpenSearch, name: str, target: str, rerank: bool = False, **embed: Any) -> None:
    """shoprank_embed (+ optionally shoprank_rerank) with the same hybrid fusion as the engine's own pipeline."""
    fusion = pipeline_body(REPO_ROOT / "opensearch", "min_max", KNN_WEIGHT)["phase_results_processors"]
    body: dict[str, Any] = {
        "request_processors": [{"shoprank_embed": {"targets": [target], "deadline_ms": 5000, **embed}}],
        "phase_results_processors": fusion,
    }
    if rerank:
        body["request_processors"].append({"shoprank_rerank": {"window": 20}})
        body["response_processors"] = [{"shoprank_rerank": {"targets": [target], "deadline_ms": 5000}}]
    client.transport.perform_request("PUT", f"/_search/pipeline/{name}", body=body)


def text_only(body: dict[str, Any], neural: bool = False) -> dict[str, Any]:
    """The engine's hybrid body with the vector taken out: a placeholder, or OpenSearch's neural clause."""
    out = copy.deepcopy(body)
    knn = out["query"]["hybrid"]["queries"][1]["knn"]["vector"]
    if neural:
        text = out["query"]["hybrid"]["queries"][0]["bool"]["must"][0]["multi_match"]["query"]
        out["query"]["hybrid"]["queries"][1] = {"neural": {"vector": {"query_text": text, "k": knn["k"]}}}
    else:
        knn["vector"] = [0.0]
    return out


def hybrid_query(text: str, encoder: BiEncoder) -> RetrievalQuery:
    """The engine's hybrid query of `text`, its vector made client-side."""
    return RetrievalQuery(text=text, vector=encoder.encode_one(text), mode="hybrid", size=10)


def hit_ids(response: dict[str, Any]) -> list[str]:
    return [hit["_id"] for hit in response["hits"]["hits"]]


def search(engine: OpenSearchEngine, body: dict[str, Any], pipeline: str) -> dict[str, Any]:
    response: dict[str, Any] = engine.client.transport.perform_request(
        "POST", f"/{engine.alias}/_search", params={"search_pipeline": pipeline}, body=body
    )
    return response


@pytest.mark.parametrize("neural", [False, True], ids=["knn-placeholder", "neural"])
def test_a_text_only_hybrid_finds_what_the_engine_finds_with_a_client_side_vector(
    indexed: OpenSearchEngine, sidecar: Sidecar, encoder: BiEncoder, neural: bool
) -> None:
    name = "shoprank-embed-same"
    put_embed_pipeline(indexed.client, name, f"127.0.0.1:{sidecar.port}")
    for text in QUERIES:
        query = RetrievalQuery(text=text, vector=encoder.encode_one(text), mode="hybrid", size=10)
        expected = [hit.product.id for hit in indexed.retrieve(query).hits]
        body = search_body(query)
        assert body["query"]["hybrid"]["queries"][1]["knn"]["vector"]["k"] == 10
        served = search(indexed, text_only(body, neural), name)
        assert len(expected) == 10
        assert hit_ids(served) == expected, text
        # Without the processor the placeholder is no vector at all: the node refuses it.
        with pytest.raises(TransportError):
            search(indexed, text_only(body), "_none")


def test_the_response_says_the_query_was_embedded_with_the_indexs_model(
    indexed: OpenSearchEngine, sidecar: Sidecar, encoder: BiEncoder
) -> None:
    name = "shoprank-embed-ext"
    put_embed_pipeline(indexed.client, name, f"127.0.0.1:{sidecar.port}", rerank=True)
    body = text_only(search_body(hybrid_query(QUERIES[0], encoder)))
    ext = search(indexed, body, name)["ext"]["shoprank"]
    assert ext["reranked"] is True
    assert ext["embed"]["embedded"] is True
    assert ext["embed"]["version_checked"] is True, "read from the index mapping's _meta"
    assert ext["embed"]["model_version"] == encoder.version


def test_a_sidecar_serving_another_bi_encoder_is_a_409_that_says_to_reindex(
    indexed: OpenSearchEngine, sidecar: Sidecar, encoder: BiEncoder
) -> None:
    name = "shoprank-embed-mismatch"
    put_embed_pipeline(indexed.client, name, f"127.0.0.1:{sidecar.port}", model_version="minilm-old-0000")
    body = text_only(search_body(hybrid_query(QUERIES[0], encoder)))
    with pytest.raises(TransportError) as refused:
        search(indexed, body, name)
    assert refused.value.status_code == 409
    assert "reindex" in str(refused.value.info)


def test_a_down_sidecar_answers_a_hybrid_from_its_text_clause_and_fails_a_knn_only_query(
    indexed: OpenSearchEngine, encoder: BiEncoder, closed_port: str
) -> None:
    name = "shoprank-embed-down"
    put_embed_pipeline(indexed.client, name, closed_port, deadline_ms=500)
    text = QUERIES[0]
    bm25 = [h.product.id for h in indexed.retrieve(RetrievalQuery(text=text, vector=None, mode="bm25", size=10)).hits]
    hybrid = search_body(RetrievalQuery(text=text, vector=encoder.encode_one(text), mode="hybrid", size=10))
    served = search(indexed, text_only(hybrid), name)
    lexical = copy.deepcopy(hybrid)
    lexical["query"]["hybrid"]["queries"][1] = {"match_none": {}}
    assert hit_ids(served) == hit_ids(search(indexed, lexical, pipeline_name(indexed.alias, "min_max")))
    assert set(hit_ids(served)) == set(bm25), "answered from the text clause alone"
    knn_only = {"query": {"knn": {"vector": {"vector": [0.0], "k": 10}}}, "ext": {"shoprank": {"query_text": text}}}
    with pytest.raises(TransportError) as failed:
        search(indexed, knn_only, name)
    assert failed.value.status_code == 503
    # opensearch-py retries a 503 (retry_on_status): the retries meet the circuit breaker the first failures opened.
    assert "could not embed the query text (unavailable" in str(failed.value.info) or "circuit_open" in str(
        failed.value.info
    )
    assert "the knn clause is the whole query" in str(failed.value.info)


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A loopback address where nothing listens: bound, never listening, so connections are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"
