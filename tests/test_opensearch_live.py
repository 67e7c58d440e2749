"""Every OpenSearch path of shoprank against a real node (tests/opensearch_live.py: the session's
local node, or OPENSEARCH_URL). Each test works under its own alias. Scores are never compared
with another engine's; ranks and sets are."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engines.base import EngineError, Filters, NoLiveIndexError, RetrievalQuery, RetrievalResult
from engines.opensearch import OpenSearchEngine
from engines.opensearch_assets import pipeline_name, search_template_id, template_name
from engines.opensearch_bulk import BulkPolicy, index_actions, run_bulk
from engines.opensearch_versions import BuilderMark, kept_alias
from shoprank.schema import Product
from shoprank.settings import REPO_ROOT
from tests.opensearch_live import LiveCluster, engine_under_alias, remove_alias_assets, unique_alias

pytestmark = pytest.mark.opensearch

DIM = 384
BRANDS = ("Acme", "Zed", "Trekko")
COLORS = ("red", "blue")
LEAVES = ("Kitchen", "Hiking", "Running")


@pytest.fixture
def engine(opensearch_cluster: LiveCluster) -> Iterator[OpenSearchEngine]:
    with engine_under_alias(opensearch_cluster) as engine:
        yield engine


def products(n: int, prefix: str = "p") -> list[Product]:
    return [
        Product(
            id=f"{prefix}{i}",
            title=f"trail shoe model{i}" if i % 3 else f"electric kettle model{i}",
            brand=BRANDS[i % 3],
            color=COLORS[i % 2],
            category=["Shop", LEAVES[i % 3]],
            price=5.0 + 10 * i,
        )
        for i in range(n)
    ]


def vectors(n: int, seed: int = 0) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    normalised: np.ndarray[Any, np.dtype[np.float32]] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return normalised


def full_index(engine: OpenSearchEngine, items: list[Product], seed: int = 0) -> str:
    builder = engine.begin_version(DIM)
    assert builder.write(items, vectors(len(items), seed)) == []
    return builder.commit()


def alias_targets(engine: OpenSearchEngine, alias: str) -> list[str]:
    found = engine.client.indices.get_alias(name=alias, ignore=404)
    return sorted(name for name in found if name != "error" and name != "status")


def ids(result: RetrievalResult) -> list[str]:
    return [h.product.id for h in result.hits]


def index_settings(engine: OpenSearchEngine, index: str) -> dict[str, Any]:
    settings: dict[str, Any] = engine.client.indices.get_settings(index=index)[index]["settings"]["index"]
    return settings


def test_setup_command_installs_the_assets_idempotently(
    opensearch_cluster: LiveCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    from shoprank.cli import main

    alias = unique_alias()
    flags = ["--opensearch-url", opensearch_cluster.url, "--index-name", alias]
    if opensearch_cluster.password:
        flags += ["--opensearch-user", opensearch_cluster.user, "--opensearch-password", opensearch_cluster.password]
    if not opensearch_cluster.verify_certs:
        flags.append("--no-opensearch-verify-certs")
    with engine_under_alias(opensearch_cluster, alias="unused-" + alias) as other:
        client = other.client
        try:
            assert main(["opensearch", "setup", "--json", *flags]) == 0
            report = json.loads(capsys.readouterr().out)
            assert main(["opensearch", "setup", "--json", *flags]) == 0  # a second run replaces, not fails
            template = client.indices.get_index_template(name=template_name(alias))["index_templates"][0]
            assert template["index_template"]["index_patterns"] == [f"{alias}-*"]
            for technique in ("min_max", "rrf"):
                assert pipeline_name(alias, technique) in client.search_pipeline.get(id=pipeline_name(alias, technique))
            assert client.get_script(id=search_template_id(alias))["script"]["lang"] == "mustache"
            assert report["search_template"] == search_template_id(alias)
        finally:
            remove_alias_assets(client, alias)


def test_full_reindex_loads_with_refresh_off_then_restores_swaps_and_prunes(engine: OpenSearchEngine) -> None:
    builder = engine.begin_version(DIM)
    loading = index_settings(engine, builder.version)
    assert (loading["refresh_interval"], loading["number_of_replicas"], loading["auto_expand_replicas"]) == (
        "-1",
        "0",
        "false",
    )
    assert loading["knn"] == "true"  # the template applied under the loading settings
    builder.write(products(7), vectors(7))
    assert alias_targets(engine, engine.alias) == []  # nothing live before the swap
    first = builder.commit()
    restored = index_settings(engine, first)
    assert (restored["refresh_interval"], restored["auto_expand_replicas"]) == ("1s", "0-1")
    assert alias_targets(engine, engine.alias) == [first]
    assert engine.count() == 7

    second = full_index(engine, products(4))
    assert alias_targets(engine, engine.alias) == [second]
    assert engine.versions() == [second, first]
    third = full_index(engine, products(2))
    assert engine.versions() == [third, second]  # keep_versions=2 pruned the oldest
    assert not engine.client.indices.exists(index=first)
    assert alias_targets(engine, kept_alias(engine.alias)) == sorted([second, third])
    assert engine.count() == 2


def test_rollback_makes_the_previous_version_live_and_drops_the_bad_one(engine: OpenSearchEngine) -> None:
    with pytest.raises(NoLiveIndexError):
        engine.rollback()
    first = full_index(engine, products(3))
    with pytest.raises(EngineError, match="nothing to roll back"):
        engine.rollback()
    second = full_index(engine, products(5))
    assert engine.rollback() == first
    assert alias_targets(engine, engine.alias) == [first]
    assert not engine.client.indices.exists(index=second)
    assert engine.count() == 3


def test_searches_never_fail_or_come_back_empty_during_swaps(engine: OpenSearchEngine) -> None:
    full_index(engine, products(30))
    query_vector = vectors(1, seed=99)[0]
    problems: list[str] = []
    searched = [0]
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set() and searched[0] < 5000:
            for mode in ("bm25", "hybrid"):
                try:
                    hits = engine.retrieve(RetrievalQuery("trail shoe", query_vector, mode=mode, size=10)).hits
                except Exception as exc:
                    problems.append(f"{mode}: {exc!r}")
                    continue
                if not hits:
                    problems.append(f"{mode}: empty")
                searched[0] += 1

    threads = [threading.Thread(target=search) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(3):
            full_index(engine, products(30 + round_), seed=round_)
            engine.rollback() if round_ == 1 else None
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert searched[0] > 0
    assert problems == []


KILLED_BUILDER = """
import sys, time
from engines.opensearch import OpenSearchEngine
from shoprank.settings import Settings
from tests.test_opensearch_live import products, vectors

engine = OpenSearchEngine.from_settings(Settings(opensearch_url=sys.argv[1], index_name=sys.argv[2]))
builder = engine.begin_version(384)
builder.write(products(40, "new"), vectors(40))
print(builder.version, flush=True)
time.sleep(600)
"""


def test_a_sigkilled_reindex_leaves_the_old_index_live_and_the_rerun_cleans_up(
    engine: OpenSearchEngine, opensearch_cluster: LiveCluster
) -> None:
    if opensearch_cluster.password:
        pytest.skip("the killed builder runs without credentials: only on the local node")
    live = full_index(engine, products(3))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILDER, opensearch_cluster.url, engine.alias],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        partial = process.stdout.readline().strip()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert engine.client.indices.exists(index=partial)
    assert engine.state().unfinished.keys() == {partial}
    assert alias_targets(engine, engine.alias) == [live]
    assert set(ids(engine.retrieve(RetrievalQuery("shop", None, mode="bm25")))) == {"p0", "p1", "p2"}

    rerun = full_index(engine, products(4))
    assert not engine.client.indices.exists(index=partial)  # the orphan was deleted
    assert alias_targets(engine, engine.alias) == [rerun]
    assert engine.versions() == [rerun, live]


def test_a_live_build_blocks_a_second_run(engine: OpenSearchEngine) -> None:
    first = engine.begin_version(DIM)
    with pytest.raises(EngineError, match="another indexing run"):
        engine.begin_version(DIM)
    first.abort()
    assert not engine.client.indices.exists(index=first.version)


def test_a_wrong_vector_dimension_is_refused_before_anything_is_written(engine: OpenSearchEngine) -> None:
    with pytest.raises(EngineError, match="128 dimensions but index template"):
        engine.begin_version(128)
    assert engine.client.indices.get(index=f"{engine.alias}-*", allow_no_indices=True) == {}


def test_incremental_upserts_and_deletes_through_the_alias(engine: OpenSearchEngine) -> None:
    with pytest.raises(NoLiveIndexError):
        engine.upsert(products(1), vectors(1))
    assert not engine.client.indices.exists(index=engine.alias)  # require_alias: nothing auto-created
    live = full_index(engine, products(3))
    changed = [Product(id="p1", title="renamed boot"), Product(id="n9", title="new sandal")]
    assert engine.upsert(changed, vectors(2, seed=5)) == []
    assert engine.delete(["p0", "missing"]) == 2
    assert engine.count() == 3
    assert [p.title for p in engine.get(["p1", "gone", "n9"])] == ["renamed boot", "new sandal"]
    assert ids(engine.retrieve(RetrievalQuery("sandal", None, mode="bm25"))) == ["n9"]  # searchable at once
    assert alias_targets(engine, engine.alias) == [live]
    with pytest.raises(EngineError, match="384 dimensions"):
        engine.upsert(changed, vectors(2)[:, :16])


def test_the_indexer_dead_letters_what_the_node_refuses_and_indexes_the_rest(
    engine: OpenSearchEngine, tiny_models: Path, tmp_path: Path
) -> None:
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer
    from shoprank.bi_encoder import BiEncoder

    rows = [{"id": f"p{i}", "title": f"shoe {i}", "price": i, "rating_count": i} for i in range(10)]
    rows[3]["rating_count"] = 3_000_000_000  # valid for shoprank, beyond the mapping's integer
    rows[6]["id"] = "é" * 300  # 300 characters (shoprank's limit is 512) but 600 bytes (OpenSearch's is 512)
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("\n".join(json.dumps(row) for row in rows))
    with DeadLetter(tmp_path / "dead.jsonl") as dead:
        report = Indexer(engine, BiEncoder(tiny_models), dead, max_reject_ratio=0.3).full(catalogue)
    assert (report.indexed, report.rejected) == (8, 2)
    letters = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    reasons = " ".join(json.dumps(letter) for letter in letters)
    assert "mapping" in reasons
    assert "512 bytes" in reasons
    assert engine.count() == 8
    assert engine.get(["p3", "p4"])[0].id == "p4"


def test_an_overlong_id_is_refused_alone_in_incremental_changes(engine: OpenSearchEngine) -> None:
    full_index(engine, products(2))
    long_id = "é" * 300
    failures = engine.upsert([Product(id=long_id, title="x"), Product(id="ok", title="fine")], vectors(2))
    assert [(f.id, f.reason.split(":")[0]) for f in failures] == [(long_id, "invalid")]
    assert engine.delete([long_id, "p0"]) == 2
    assert sorted(p.id for p in engine.get(["ok", "p0", "p1"])) == ["ok", "p1"]


def test_bm25_knn_and_both_hybrid_pipelines_rank(engine: OpenSearchEngine) -> None:
    items = products(12)
    stored = vectors(12)
    full_index(engine, items)
    kettles = {p.id for p in items if "kettle" in p.title}
    bm25 = engine.retrieve(RetrievalQuery("electric kettles", None, mode="bm25", size=12))
    assert set(ids(bm25)) == kettles  # minimal English stemming: kettles ~ kettle; both terms required
    knn = engine.retrieve(RetrievalQuery("", stored[4], mode="knn", size=3, with_vectors=True))
    assert ids(knn)[0] == "p4"
    assert knn.hits[0].vector is not None
    assert np.allclose(knn.hits[0].vector, stored[4], atol=1e-6)

    # p3 is first for the text (its model number matches too) and for the vector: first fused.
    text = "electric kettle model3"
    assert ids(engine.retrieve(RetrievalQuery(text, None, mode="bm25", size=12)))[0] == "p3"
    neighbours = ids(engine.retrieve(RetrievalQuery("", stored[3], mode="knn", size=6)))
    assert neighbours[0] == "p3"
    for technique in ("min_max", "rrf"):
        engine.hybrid_technique = technique
        hybrid = engine.retrieve(RetrievalQuery(text, stored[3], mode="hybrid", size=6))
        top = ids(hybrid)
        assert top[0] == "p3", (technique, top)
        assert set(top) <= kettles | set(neighbours)  # the union of the two sub-queries, nothing else
        assert set(neighbours) - kettles & set(top), (technique, top)  # a vector-only match is fused in
        scores = [h.score for h in hybrid.hits]
        assert scores == sorted(scores, reverse=True)
        if technique == "min_max":
            assert all(0.0 <= score <= 1.0 for score in scores)  # normalised, weighted mean
            assert scores[0] == pytest.approx(1.0)  # the maximum of both sub-queries
        else:
            assert scores[0] == pytest.approx(2 / 61, rel=1e-5)  # rank 1 in both, rank_constant 60


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_filters_hold_in_every_mode_and_facets_count_the_matches(engine: OpenSearchEngine, mode: str) -> None:
    items = products(30)
    full_index(engine, items)
    filters = Filters(brands=("Zed", "Trekko"), categories=("Hiking",), colors=("red",), price_min=50, price_max=250)
    expected = {
        p.id
        for p in items
        if p.brand in filters.brands and p.category[-1] == "Hiking" and p.color == "red" and 50 <= (p.price or 0) <= 250
    }
    assert expected == {"p10", "p16", "p22"}  # all trail shoes by Zed
    query = RetrievalQuery("trail shoe", vectors(1, seed=3)[0], size=30, filters=filters, with_facets=True)
    result = engine.retrieve(dataclasses.replace(query, mode=mode))  # type: ignore[arg-type]
    assert set(ids(result)) == expected
    assert {b.value: b.count for b in result.facets["brand"]} == {"Zed": 3}
    assert {b.value: b.count for b in result.facets["color"]} == {"red": 3}
    assert {b.value: b.count for b in result.facets["category"]} == {"Hiking": 3}
    assert {b.value: b.count for b in result.facets["price"]} == {"100-250": 3}


def test_facets_without_filters_count_every_match(engine: OpenSearchEngine) -> None:
    items = products(9)
    full_index(engine, items)
    result = engine.retrieve(RetrievalQuery("shop", None, mode="bm25", size=9, with_facets=True))  # category_path
    assert len(result.hits) == 9
    assert {b.value: b.count for b in result.facets["brand"]} == {"Acme": 3, "Zed": 3, "Trekko": 3}
    assert {b.value: b.count for b in result.facets["color"]} == {"red": 5, "blue": 4}
    prices = {b.value: b.count for b in result.facets["price"]}
    assert sum(prices.values()) == 9
    assert prices["0-10"] == 1  # price 5.0


def test_the_stored_search_template_finds_what_the_engine_finds(engine: OpenSearchEngine) -> None:
    items = products(15)
    full_index(engine, items)
    text = 'trail "shoe" AND (title:x OR *)'
    query_vector = vectors(1, seed=11)[0]
    filters = Filters(brands=("Zed", "Trekko"), price_max=200)
    params = {
        "query_text": text,
        "query_vector": query_vector.tolist(),
        "k": 10,
        "brand": {"values": list(filters.brands)},
        "price": {"max": 200},
    }
    response = engine.client.search_template(
        index=engine.alias,
        body={"id": search_template_id(engine.alias), "params": params},
        params={"search_pipeline": pipeline_name(engine.alias, "min_max")},
    )
    template_ids = [hit["_id"] for hit in response["hits"]["hits"]]
    engine_ids = ids(engine.retrieve(RetrievalQuery(text, query_vector, mode="hybrid", size=10, filters=filters)))
    assert template_ids == engine_ids
    assert template_ids
    assert {b["key"] for b in response["aggregations"]["brand"]["buckets"]} <= set(filters.brands)


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_the_same_query_ranks_the_same_and_pages_are_prefixes(engine: OpenSearchEngine, mode: str) -> None:
    full_index(engine, products(40))
    query_vector = vectors(1, seed=21)[0]

    def ranked(size: int) -> list[str]:
        return ids(engine.retrieve(RetrievalQuery("shop", query_vector, mode=mode, size=size)))  # type: ignore[arg-type]

    window = ranked(30)
    assert len(window) == 30
    assert ranked(30) == window
    if mode != "hybrid":  # hybrid's kNN clause asks for k=size neighbours: its window depends on the size
        assert ranked(10) == window[:10]


def test_429s_from_a_full_bulk_queue_are_retried_until_every_document_is_in(
    engine: OpenSearchEngine, opensearch_cluster: LiveCluster
) -> None:
    if not opensearch_cluster.local:
        pytest.skip("needs the local node's one-slot bulk queue")
    builder = engine.begin_version(DIM)

    def rejected() -> int:
        stats = engine.client.nodes.stats(metric="thread_pool")["nodes"]
        return sum(int(node["thread_pool"]["write"]["rejected"]) for node in stats.values())

    before = rejected()
    policy = BulkPolicy(chunk_docs=5, max_retries=10, initial_backoff_s=1, max_backoff_s=2)
    failures: list[Any] = []

    def load(part: int) -> None:
        items = products(40, prefix=f"t{part}-")
        failures.extend(run_bulk(engine.client, index_actions(builder.version, items, vectors(40)), policy))

    threads = [threading.Thread(target=load, args=(part,)) for part in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert failures == []
    assert rejected() > before  # the node did answer 429s, and they were retried
    engine.client.indices.refresh(index=builder.version)
    assert int(engine.client.count(index=builder.version)["count"]) == 240
    builder.abort()


def test_a_build_heartbeats_into_its_mapping_meta(engine: OpenSearchEngine) -> None:
    builder = engine.begin_version(DIM)

    def mark() -> BuilderMark | None:
        mappings = engine.client.indices.get_mapping(index=builder.version)[builder.version]["mappings"]
        return BuilderMark.from_meta(mappings.get("_meta"))

    first = mark()
    assert first is not None
    assert first.pid == os.getpid()
    engine.lease_s = 0.0  # every write is due a heartbeat
    builder.write(products(2), vectors(2))
    beat = mark()
    assert beat is not None
    assert beat.heartbeat > first.heartbeat
    builder.abort()


def test_the_readme_cluster_commands_work_against_the_node(
    opensearch_cluster: LiveCluster,
    tiny_models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shoprank.cli import main

    if opensearch_cluster.password:
        pytest.skip("the README's local-node commands carry no credentials")
    alias = unique_alias()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    for name, value in {
        "SHOPRANK_ENGINE": "opensearch",
        "SHOPRANK_OPENSEARCH_URL": opensearch_cluster.url,
        "SHOPRANK_INDEX_NAME": alias,
        "SHOPRANK_DATA_DIR": str(data_dir),
    }.items():
        monkeypatch.setenv(name, value)
    catalogue = tmp_path / "products.jsonl"
    catalogue.write_text(
        "\n".join(json.dumps({"id": f"p{i}", "title": f"kitchen towel {i}", "price": i + 1}) for i in range(20))
    )
    changes = tmp_path / "changes.jsonl"
    changes.write_text(
        json.dumps({"id": "n1", "title": "bamboo kitchen towels", "price": 3})
        + "\n"
        + json.dumps({"id": "p0", "_op": "delete"})
    )
    try:
        assert main(["opensearch", "setup"]) == 0
        assert (
            main(["index", "--catalogue", str(catalogue), "--dead-letter", str(tmp_path / "dead.jsonl"), "--json"]) == 0
        )
        capsys.readouterr()
        assert main(["index", "--incremental", "--changes", str(changes), "--json"]) == 0
        incremental = json.loads(capsys.readouterr().out)
        assert (incremental["indexed"], incremental["deleted"]) == (1, 1)
        assert main(["index", "--catalogue", str(catalogue), "--json"]) == 0  # a second version to roll back from
        assert main(["index", "--rollback", "--json"]) == 0
        capsys.readouterr()
        assert main(["search", "bamboo kitchen towels", "--no-rerank", "--mode", "bm25", "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        # The incremental change is live again after the rollback, and the deleted product gone.
        assert found["results"][0]["id"] == "n1"
        assert "p0" not in {result["id"] for result in found["results"]}
    finally:
        remove_alias_assets(OpenSearchEngine.from_settings(opensearch_cluster.settings(alias)).client, alias)
