"""The OpenSearch engine's real code against a recording transport: every request and canned
response is validated against the pinned spec (the `cluster` fixture fails a test otherwise)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engines.base import EngineError, Filters, NoLiveIndexError, RetrievalQuery
from engines.opensearch import OpenSearchEngine
from engines.opensearch_bulk import BulkPolicy, classify_bulk_error
from engines.opensearch_setup import apply_setup
from engines.opensearch_versions import BuilderMark, kept_alias
from shoprank.schema import Product
from shoprank.settings import REPO_ROOT, Settings
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster, search_response

ASSETS = REPO_ROOT / "opensearch"


@pytest.fixture
def cluster(spec_validator: SpecValidator) -> Iterator[FakeCluster]:
    fake = FakeCluster(spec_validator)
    yield fake
    fake.assert_valid()


def make_engine(cluster: FakeCluster, **kwargs: Any) -> OpenSearchEngine:
    client = cluster.client()
    apply_setup(client, ASSETS, "products", 0.5)
    policy = kwargs.pop("bulk_policy", BulkPolicy(chunk_docs=3, max_retries=2, initial_backoff_s=1, max_backoff_s=1))
    return OpenSearchEngine(client, bulk_policy=policy, **kwargs)


def products(n: int, prefix: str = "p") -> list[Product]:
    return [
        Product(
            id=f"{prefix}{i}",
            title=f"trail shoe {i}",
            brand="Acme" if i % 2 else "Zed",
            color="red",
            category=["Shoes", "Running" if i % 2 else "Hiking"],
            price=5.0 + 20 * i,
        )
        for i in range(n)
    ]


def vectors(n: int, dim: int = 384) -> np.ndarray[Any, np.dtype[np.float32]]:
    rng = np.random.default_rng(n)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    normalised: np.ndarray[Any, np.dtype[np.float32]] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return normalised


def full_index(engine: OpenSearchEngine, items: list[Product]) -> str:
    builder = engine.begin_version(384)
    assert builder.write(items, vectors(len(items))) == []
    return builder.commit()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_setup_installs_everything_under_the_alias_name(cluster: FakeCluster) -> None:
    report = apply_setup(cluster.client(), ASSETS, "shop-eu", 0.25)
    assert report.index_patterns == ["shop-eu-*"]
    assert set(cluster.templates) == {"shop-eu"}
    assert set(cluster.pipelines) == {"shop-eu-hybrid-min-max", "shop-eu-hybrid-rrf"}
    weights = cluster.pipelines["shop-eu-hybrid-min-max"]["phase_results_processors"][0]["normalization-processor"]
    assert weights["combination"]["parameters"]["weights"] == [0.75, 0.25]
    assert cluster.scripts["shop-eu-shop-box"]["script"]["lang"] == "mustache"


def test_full_reindex_loads_with_refresh_off_then_swaps_atomically(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    first = full_index(engine, products(7))
    created = cluster.calls("PUT", first)[0].body
    assert created["settings"]["index"] == {
        "refresh_interval": "-1",
        "number_of_replicas": 0,
        "auto_expand_replicas": "false",
    }
    bulks = cluster.calls("POST", "/_bulk")
    assert len(bulks) == 3  # 7 documents in chunks of 3
    assert all(line["index"]["_index"] == first for line in bulks[0].body[::2])
    restored = cluster.calls("PUT", "/_settings")[0].body
    assert restored == {"index": {"refresh_interval": "1s", "auto_expand_replicas": "0-1"}}
    assert cluster.alias_targets("products") == [first]
    order = [f"{r.method} {r.path.rsplit('/', 1)[-1]}" for r in cluster.requests]
    assert order.index("PUT _settings") < order.index("POST _refresh") < order.index("POST _aliases")

    second = full_index(engine, products(4))
    swap = cluster.calls("POST", "/_aliases")[-1].body["actions"]
    assert {"remove": {"index": first, "alias": "products"}} in swap
    assert {"add": {"index": second, "alias": "products"}} in swap
    assert cluster.alias_targets("products") == [second]
    assert engine.versions() == [second, first]  # previous kept for rollback

    third = full_index(engine, products(2))
    assert engine.versions() == [third, second]  # keep_versions=2 prunes the oldest
    assert first not in cluster.indices
    assert cluster.alias_targets(kept_alias("products")) == sorted([second, third])


def test_rollback_makes_the_previous_version_live_and_drops_the_bad_one(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    with pytest.raises(NoLiveIndexError):
        engine.rollback()
    first = full_index(engine, products(3))
    with pytest.raises(EngineError, match="nothing to roll back"):
        engine.rollback()
    second = full_index(engine, products(5))
    assert engine.count() == 5
    assert engine.rollback() == first
    assert cluster.alias_targets("products") == [first]
    assert second not in cluster.indices
    assert engine.count() == 3


def test_killed_reindex_leaves_the_alias_and_the_next_run_cleans_up(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    live = full_index(engine, products(3))
    builder = engine.begin_version(384)
    builder.write(products(6, "new"), vectors(6))
    # The run is SIGKILLed here: no commit, no abort. Its mark names a process that is gone.
    cluster.indices[builder.version].mappings["_meta"] = BuilderMark("x", 1, 0).as_meta("products") | {}
    cluster.indices[builder.version].mappings["_meta"]["shoprank"]["builder"].update(
        {"host": BuilderMark.here().host, "pid": dead_pid(), "heartbeat": BuilderMark.here().heartbeat}
    )
    assert cluster.alias_targets("products") == [live]
    assert {h.product.id for h in engine.retrieve(RetrievalQuery("shoe", None, mode="bm25")).hits} == {"p0", "p1", "p2"}

    rerun = full_index(engine, products(4))
    assert builder.version not in cluster.indices  # the orphan is gone
    assert cluster.alias_targets("products") == [rerun]
    assert engine.versions() == [rerun, live]


def test_a_live_build_blocks_a_second_run(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    first = engine.begin_version(384)
    with pytest.raises(EngineError, match="another indexing run"):
        engine.begin_version(384)
    first.abort()
    assert first.version not in cluster.indices
    full_index(engine, products(2))


def test_a_wrong_vector_dimension_is_refused_before_anything_is_written(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    before = len(cluster.requests)
    with pytest.raises(EngineError, match="128 dimensions but index template 'products' has 384"):
        engine.begin_version(128)
    assert [r.method for r in cluster.requests[before:]] == ["GET"]
    assert not cluster.indices


def test_no_template_says_to_run_setup(cluster: FakeCluster) -> None:
    with pytest.raises(EngineError, match="shoprank opensearch setup"):
        OpenSearchEngine(cluster.client()).begin_version(384)


def test_only_429s_are_retried_with_capped_backoff(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("opensearchpy.helpers.actions.time.sleep", sleeps.append)
    engine = make_engine(
        cluster, bulk_policy=BulkPolicy(chunk_docs=10, max_retries=3, initial_backoff_s=1, max_backoff_s=3)
    )
    rejected = {"type": "es_rejected_execution_exception", "reason": "rejected execution of write"}
    bad_field = {"type": "mapper_parsing_exception", "reason": "failed to parse field [price] of type [double]"}

    def hook(op: str, index: str, doc_id: str, doc: Any, attempt: int) -> tuple[int, dict[str, Any]] | None:
        if doc_id == "p1" and attempt < 2:
            return 429, rejected  # recovers on the third try
        if doc_id == "p2":
            return 429, rejected  # never recovers
        if doc_id == "p3":
            return 400, bad_field  # not retried
        return None

    cluster.bulk_hook = hook
    builder = engine.begin_version(384)
    failures = builder.write(products(5), vectors(5))
    assert {f.id: f.reason.split(":")[0] for f in failures} == {"p2": "overloaded", "p3": "mapping"}
    assert sleeps == [1, 2, 3]  # 1 s, doubled, capped at 3 s
    sent = [line["index"]["_id"] for r in cluster.calls("POST", "/_bulk") for line in r.body[::2]]
    assert sent.count("p3") == 1
    assert sent.count("p2") == 4
    assert sent.count("p1") == 3
    builder.commit()
    assert engine.count() == 3


@pytest.mark.parametrize(
    ("status", "error", "category"),
    [
        (429, {"type": "es_rejected_execution_exception", "reason": "queue full"}, "overloaded"),
        (409, {"type": "version_conflict_engine_exception", "reason": "version conflict"}, "version_conflict"),
        (400, {"type": "mapper_parsing_exception", "reason": "failed to parse"}, "mapping"),
        (400, {"type": "strict_dynamic_mapping_exception", "reason": "field [x] not allowed"}, "mapping"),
        (404, {"type": "index_not_found_exception", "reason": "no such index"}, "index_missing"),
        (413, "request too large", "too_large"),
        (503, {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}, "server"),
        (400, {"type": "action_request_validation_exception", "reason": "id is too long"}, "invalid"),
    ],
)
def test_bulk_errors_are_classified(status: int, error: Any, category: str) -> None:
    reason = classify_bulk_error(status, error)
    assert reason.split(":")[0] == category
    assert len(reason) <= 300


def test_classification_keeps_the_cause() -> None:
    error = {"type": "mapper_parsing_exception", "reason": "failed to parse", "caused_by": {"type": "x", "reason": "y"}}
    assert classify_bulk_error(400, error) == "mapping: mapper_parsing_exception: failed to parse (x: y)"


def test_incremental_changes_go_through_the_alias(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    with pytest.raises(NoLiveIndexError):
        engine.upsert(products(1), vectors(1))
    live = full_index(engine, products(3))
    changed = [Product(id="p1", title="renamed shoe"), Product(id="n9", title="new boot")]
    assert engine.upsert(changed, vectors(2)) == []
    assert engine.delete(["p0", "missing"]) == 2
    bulks = cluster.calls("POST", "/_bulk")[-2:]
    assert bulks[0].params["refresh"] in (b"wait_for", "wait_for")
    assert bulks[0].body[0] == {"index": {"_index": "products", "_id": "p1", "require_alias": True}}
    assert bulks[1].body == [
        {"delete": {"_index": "products", "_id": "p0"}},
        {"delete": {"_index": "products", "_id": "missing"}},
    ]
    assert sorted(cluster.indices[live].docs) == ["n9", "p1", "p2"]
    assert [p.title for p in engine.get(["p1", "gone", "n9"])] == ["renamed shoe", "new boot"]
    with pytest.raises(EngineError, match="384 dimensions"):
        engine.upsert(changed, vectors(2, dim=16))


def test_queries_carry_filters_pipelines_and_no_query_syntax(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    full_index(engine, products(4))
    text = 'title:(shoe AND "trail") OR brand:* \\ {}'
    filters = Filters(brands=("Acme",), categories=("Running",), colors=("red",), price_min=1, price_max=99)
    query = RetrievalQuery(text, vectors(1)[0], mode="hybrid", size=25, filters=filters, with_facets=True)
    engine.retrieve(query)
    search = cluster.calls("POST", "/_search")[-1]
    assert search.params["search_pipeline"] in (b"products-hybrid-min-max", "products-hybrid-min-max")
    bm25, knn = search.body["query"]["hybrid"]["queries"]
    assert bm25["bool"]["must"][0]["multi_match"]["query"] == text
    assert knn["knn"]["vector"]["k"] == 25
    assert len(knn["knn"]["vector"]["vector"]) == 384
    assert bm25["bool"]["filter"] == knn["knn"]["vector"]["filter"]["bool"]["filter"]
    assert {"range": {"price": {"gte": 1.0, "lte": 99.0}}} in bm25["bool"]["filter"]
    assert search.body["_source"]["includes"].count("vector") == 0
    everything = json.dumps([r.body for r in cluster.requests])
    assert "query_string" not in everything

    engine.hybrid_technique = "rrf"
    engine.retrieve(RetrievalQuery("shoe", vectors(1)[0], mode="knn", size=5, with_vectors=True))
    knn_only = cluster.calls("POST", "/_search")[-1]
    # No pipeline at all, not even an index default (a rerank pipeline would rerank the first stage).
    assert knn_only.params["search_pipeline"] in (b"_none", "_none")
    assert "knn" in knn_only.body["query"]
    assert "vector" in knn_only.body["_source"]["includes"]
    engine.retrieve(RetrievalQuery("shoe", vectors(1)[0], mode="hybrid", size=5))
    assert cluster.calls("POST", "/_search")[-1].params["search_pipeline"] in (
        b"products-hybrid-rrf",
        "products-hybrid-rrf",
    )
    assert engine.retrieve(RetrievalQuery("   ", None, mode="bm25")).hits == []


def test_hits_vectors_and_facets_are_read_back(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    live = full_index(engine, products(3))
    docs = cluster.indices[live].docs
    aggregations = {
        "brand": {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": [{"key": "Zed", "doc_count": 2}, {"key": "Acme", "doc_count": 1}],
        },
        "category": {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": [{"key": "Hiking", "doc_count": 2}, {"key": "Running", "doc_count": 1}],
        },
        "color": {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": [{"key": "red", "doc_count": 3}],
        },
        "price": {
            "buckets": [
                {"key": "0-10", "from": 0.0, "to": 10.0, "doc_count": 1},
                {"key": "10-25", "from": 10.0, "to": 25.0, "doc_count": 0},
                {"key": "25-50", "from": 25.0, "to": 50.0, "doc_count": 2},
            ]
        },
    }
    cluster.search_hook = lambda index, body, params: search_response(
        index, [("p2", 0.9, docs["p2"]), ("p0", 0.4, docs["p0"])], {"facets": {"doc_count": 3, **aggregations}}
    )
    result = engine.retrieve(RetrievalQuery("shoe", vectors(1)[0], size=10, with_vectors=True, with_facets=True))
    assert [(h.product.id, h.score) for h in result.hits] == [("p2", 0.9), ("p0", 0.4)]
    assert result.hits[0].product.category == ["Shoes", "Hiking"]
    assert result.hits[0].vector is not None
    assert result.hits[0].vector.shape == (384,)
    # Price buckets in price order on every engine (engines.facet_counts), empty ones left out.
    assert [(b.value, b.count) for b in result.facets["price"]] == [("0-10", 1), ("25-50", 2)]
    assert [(b.value, b.count) for b in result.facets["category"]] == [("Hiking", 2), ("Running", 1)]


def test_search_before_any_index_says_what_to_do(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    with pytest.raises(NoLiveIndexError, match="shoprank index"):
        engine.retrieve(RetrievalQuery("shoe", None, mode="bm25"))
    with pytest.raises(NoLiveIndexError):
        engine.count()


def test_the_password_is_never_logged(cluster: FakeCluster, caplog: pytest.LogCaptureFixture) -> None:
    from pydantic import SecretStr

    from engines.opensearch_client import client_from_settings
    from tests.recording_transport import RecordingConnection

    settings = Settings(opensearch_url="https://fake:9200", opensearch_password=SecretStr("Sup3r-S3cret!"))
    caplog.set_level(logging.DEBUG)
    client = client_from_settings(settings, connection_class=RecordingConnection, cluster=cluster)
    apply_setup(client, ASSETS, "products", 0.5)
    assert "Sup3r-S3cret!" not in caplog.text
    assert "Sup3r-S3cret!" not in repr(settings)


def test_the_indexer_dead_letters_engine_refusals_and_keeps_the_old_index_past_the_threshold(
    cluster: FakeCluster, tiny_models: Path, tmp_path: Path
) -> None:
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import IndexAbortedError, Indexer
    from shoprank.bi_encoder import BiEncoder

    engine = make_engine(cluster)
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("\n".join(json.dumps({"id": f"p{i}", "title": f"shoe {i}", "price": i}) for i in range(10)))
    encoder = BiEncoder(tiny_models)
    refused = {"p3"}
    cluster.bulk_hook = lambda op, index, doc_id, doc, attempt: (
        (400, {"type": "mapper_parsing_exception", "reason": "bad price"}) if doc_id in refused else None
    )
    with DeadLetter(tmp_path / "dead.jsonl") as dead:
        report = Indexer(engine, encoder, dead, max_reject_ratio=0.2).full(catalogue)
    assert (report.indexed, report.rejected) == (9, 1)
    letter = json.loads((tmp_path / "dead.jsonl").read_text().splitlines()[0])
    assert "mapping" in json.dumps(letter)
    live = cluster.alias_targets("products")

    refused.update({"p1", "p2", "p4"})
    with DeadLetter(tmp_path / "dead2.jsonl") as dead, pytest.raises(IndexAbortedError):
        Indexer(engine, encoder, dead, max_reject_ratio=0.2).full(catalogue)
    assert cluster.alias_targets("products") == live  # the old index stays live
    assert len(cluster.indices) == 1  # the refused version was dropped


def test_an_id_over_512_bytes_is_never_sent_in_a_bulk_delete(cluster: FakeCluster) -> None:
    # A real node refuses such an id for the whole bulk request (tests/test_opensearch_live.py);
    # products cannot carry one (the schema refuses it), a delete by id can.
    engine = make_engine(cluster)
    long_id = "é" * 300  # 300 characters, 600 bytes
    builder = engine.begin_version(384)
    assert builder.write(products(2), vectors(2)) == []
    builder.write_deletes([long_id, "p0"])  # deleting it is a no-op, not an error
    sent = [line["delete"]["_id"] for r in cluster.calls("POST", "/_bulk") for line in r.body if "delete" in line]
    assert sent == ["p0"]
    builder.commit()
    assert engine.count() == 1


def test_category_boosts_wrap_each_list_and_deepen_the_knn_cut(cluster: FakeCluster) -> None:
    from dataclasses import replace

    from engines.base import BOOST_POOL, CategoryBoost
    from engines.opensearch_query import search_body

    query = RetrievalQuery("trail shoe", vectors(1)[0], mode="hybrid", size=10, with_facets=True)
    boosts = (CategoryBoost("Running", 0.5), CategoryBoost("Hiking", 0.2))
    body = search_body(replace(query, boosts=boosts))
    text, knn = body["query"]["hybrid"]["queries"]
    for clause in (text, knn):
        scored = clause["function_score"]
        assert (scored["score_mode"], scored["boost_mode"]) == ("max", "multiply")
        assert [(f["filter"]["term"]["category"], f["weight"]) for f in scored["functions"]] == [
            ("Running", 1.5),
            ("Hiking", 1.2),
        ]
    assert knn["function_score"]["query"]["knn"]["vector"]["k"] == 10 * BOOST_POOL
    assert body["size"] == 10
    # The facets' scope is the unboosted window, as without boosts.
    assert body["aggs"] == search_body(query)["aggs"]
    engine = make_engine(cluster)
    full_index(engine, products(4))
    engine.retrieve(replace(query, boosts=boosts))  # the spec accepts the body (checked at teardown)


def test_the_cluster_client_keeps_a_connection_per_concurrent_search() -> None:
    from engines.opensearch_client import POOL_CONNECTIONS, search_client_from_settings
    from shoprank.settings import Settings

    client = search_client_from_settings(Settings(opensearch_url="http://127.0.0.1:9"))
    (connection,) = client.transport.connection_pool.connections
    # urllib3's default keeps one: four concurrent searches opened and discarded a connection each.
    assert connection.pool.pool.maxsize == POOL_CONNECTIONS >= 8
