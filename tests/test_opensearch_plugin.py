"""The shoprank OpenSearch plugin on the live node with a real sidecar (tiny models, free port):
the `shoprank_rerank` search pipeline reranks OpenSearch's own hits through the sidecar, pages
come from one ranked window, and a stopped sidecar never fails a search."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from opensearchpy import OpenSearch

from engines.base import RetrievalQuery
from engines.opensearch import OpenSearchEngine
from engines.opensearch_query import FACET_SCOPE, search_body
from engines.opensearch_rerank import DEFAULT_PIPELINE_SETTING
from shoprank.schema import Product
from shoprank.settings import REPO_ROOT
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.server import Sidecar, start_sidecar
from tests.opensearch_live import LiveCluster, engine_under_alias
from tests.sidecar_harness import settings_with

pytestmark = pytest.mark.opensearch

DIM = 384
BRANDS = ("Acme", "Zed", "Trekko", "Nordik")
LEAVES = ("Kitchen", "Hiking", "Running")
QUERY = "trail running shoe"
PLUGIN_CLASS = "shoprank.opensearch.plugin.ShoprankPlugin"


def catalogue(n: int) -> list[Product]:
    """Products that all match QUERY somewhat, so the window is full and its order is BM25's."""
    words = ("trail", "running", "shoe", "light", "waterproof", "road", "kettle", "mug")
    return [
        Product(
            id=f"p{i}",
            title=f"{words[i % 3]} {words[(i * 5) % 8]} shoe model {i}",
            description=f"a {words[(i * 3) % 8]} product number {i}",
            bullet_points=f"{words[i % 8]}\n{words[(i + 1) % 8]}",
            brand=BRANDS[i % 4],
            color=("red", "blue", "black")[i % 3],
            category=["Shop", LEAVES[i % 3]],
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def indexed(opensearch_cluster: LiveCluster) -> Iterator[OpenSearchEngine]:
    with engine_under_alias(opensearch_cluster) as engine:
        plugins = engine.client.cat.plugins(format="json")
        if not any(p.get("component") == PLUGIN_CLASS or p.get("component") == "shoprank" for p in plugins):
            pytest.skip(f"the cluster at {opensearch_cluster.url} has no shoprank plugin (install it: make plugin)")
        items = catalogue(60)
        rng = np.random.default_rng(0)
        vectors = rng.normal(size=(len(items), DIM)).astype(np.float32)
        builder = engine.begin_version(DIM)
        assert builder.write(items, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) == []
        builder.commit()
        yield engine
        engine.client.transport.perform_request("DELETE", "/_search/pipeline/shoprank-e2e-*", params={"ignore": 404})


@pytest.fixture
def sidecar(tiny_models: Any, tmp_path: Any) -> Iterator[Sidecar]:
    running = start_sidecar(settings_with(tiny_models, tmp_path), background_load=False)
    yield running
    running.shutdown(0)


def put_pipeline(client: OpenSearch, name: str, port: int, window: int, **response: Any) -> None:
    body = {
        "request_processors": [{"shoprank_rerank": {"window": window}}],
        "response_processors": [
            {"shoprank_rerank": {"targets": [f"127.0.0.1:{port}"], "deadline_ms": 5000, **response}}
        ],
    }
    client.transport.perform_request("PUT", f"/_search/pipeline/{name}", body=body)


def search(
    engine: OpenSearchEngine, from_: int, size: int, pipeline: str | None = None, ext: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "query": {"multi_match": {"query": QUERY, "fields": ["title^2", "brand", "description"]}},
        "from": from_,
        "size": size,
    }
    if ext is not None:
        body["ext"] = {"shoprank": ext}
    params = {"search_pipeline": pipeline} if pipeline else {}
    response: dict[str, Any] = engine.client.transport.perform_request(
        "POST", f"/{engine.alias}/_search", params=params, body=body
    )
    return response


def ids(response: dict[str, Any]) -> list[str]:
    return [hit["_id"] for hit in response["hits"]["hits"]]


def sidecar_ranking(port: int, window: dict[str, Any], page_size: int, method: int) -> list[str]:
    """The sidecar's own ranking of a first-stage window, asked the way the plugin asks."""
    candidates = []
    for hit in window["hits"]["hits"]:
        source = hit["_source"]
        product = pb.Product(
            title=source["title"],
            brand=source.get("brand", ""),
            category=source.get("category", []),
            color=source.get("color", ""),
            bullet_points=source.get("bullet_points", ""),
            description=source.get("description", ""),
        )
        candidates.append(pb.Candidate(id=hit["_id"], first_stage_score=hit["_score"], product=product))
    options = pb.RerankOptions(diversity=pb.DiversityOptions(method=method, page_size=page_size))  # type: ignore[arg-type]
    request = pb.RerankRequest(query=QUERY, candidates=candidates, top_k=0, options=options)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = pb_grpc.RerankerStub(channel).Rerank(request, timeout=30)
    assert reply.reranked
    return [result.id for result in reply.results]


def test_the_plugins_page_is_the_sidecars_ranking_of_the_same_window(
    indexed: OpenSearchEngine, sidecar: Sidecar
) -> None:
    put_pipeline(indexed.client, "shoprank-e2e-page", sidecar.port, window=20, diversity={"method": "none"})
    window = search(indexed, 0, 20)
    expected = sidecar_ranking(sidecar.port, window, 10, pb.DIVERSITY_METHOD_NONE)
    page = search(indexed, 0, 10, "shoprank-e2e-page")
    assert ids(page) == expected[:10]
    assert ids(page) != ids(window)[:10], "the tiny cross-encoder reorders this window"
    ext = page["ext"]["shoprank"]
    assert ext["reranked"] is True
    assert ext["fail_open_reason"] is None
    assert ext["window"] == 20
    assert ext["model_version"]
    first_hit = page["hits"]["hits"][0]
    by_id = {hit["_id"]: hit["_score"] for hit in window["hits"]["hits"]}
    assert first_hit["fields"]["shoprank.first_stage_score"] == [pytest.approx(by_id[first_hit["_id"]], rel=1e-5)]
    assert page["hits"]["total"] == window["hits"]["total"]


def test_pages_one_to_three_are_slices_of_one_ranked_window(indexed: OpenSearchEngine, sidecar: Sidecar) -> None:
    put_pipeline(indexed.client, "shoprank-e2e-pages", sidecar.port, window=30)
    pages = [search(indexed, 10 * n, 10, "shoprank-e2e-pages") for n in range(3)]
    served = [hit for page in pages for hit in ids(page)]
    window = ids(search(indexed, 0, 30))
    assert sorted(served) == sorted(window), "the three pages hold the window's hits, each once"
    assert served == sidecar_ranking(sidecar.port, search(indexed, 0, 30), 10, pb.DIVERSITY_METHOD_UNSPECIFIED)
    beyond = search(indexed, 30, 10, "shoprank-e2e-pages")
    assert ids(beyond) == ids(search(indexed, 30, 10))
    assert beyond["ext"]["shoprank"]["fail_open_reason"].startswith("beyond_window")


def test_explain_and_diversity_options_reach_the_sidecar(indexed: OpenSearchEngine, sidecar: Sidecar) -> None:
    put_pipeline(
        indexed.client,
        "shoprank-e2e-explain",
        sidecar.port,
        window=20,
        diversity={"method": "none", "max_per_brand": 1},
    )
    page = search(indexed, 0, 4, "shoprank-e2e-explain", ext={"explain": True, "method": "mmr", "strength": 0.5})
    ext = page["ext"]["shoprank"]
    assert ext["reranked"] is True
    assert ext["diversity_method"].startswith("mmr")
    assert "caps" in ext["diversity_method"]
    brands = [hit["_source"]["brand"] for hit in page["hits"]["hits"]]
    assert len(set(brands)) == 4, f"max_per_brand 1 over 4 brands: {brands}"
    for hit in page["hits"]["hits"]:
        explanation = hit["fields"]["shoprank.explanation"][0]
        assert {"relevance", "first_stage_rank", "final_rank", "reason"} <= set(explanation)
    off = search(indexed, 0, 4, "shoprank-e2e-explain", ext={"rerank": False})
    assert ids(off) == ids(search(indexed, 0, 4))
    assert off["ext"]["shoprank"]["fail_open_reason"].startswith("rerank_off")


def test_a_stopped_sidecar_fails_open_and_reranking_resumes_when_it_is_back(
    indexed: OpenSearchEngine, tiny_models: Any, tmp_path: Any
) -> None:
    first = start_sidecar(settings_with(tiny_models, tmp_path / "a"), background_load=False)
    port = first.port
    put_pipeline(indexed.client, "shoprank-e2e-down", port, window=20, breaker={"failures": 2, "backoff_ms": 200})
    assert search(indexed, 0, 10, "shoprank-e2e-down")["ext"]["shoprank"]["reranked"] is True
    first.shutdown(0)
    plain = [ids(search(indexed, 10 * n, 10)) for n in range(2)]
    reasons = []
    for _ in range(6):
        for n in range(2):
            page = search(indexed, 10 * n, 10, "shoprank-e2e-down")  # a failed search would raise here
            assert ids(page) == plain[n], "first-stage order, the page as without the plugin"
            assert page["ext"]["shoprank"]["reranked"] is False
            reasons.append(page["ext"]["shoprank"]["fail_open_reason"].split(":")[0])
    assert "unavailable" in reasons, reasons
    assert "circuit_open" in reasons, "the breaker opened: later searches made no call"
    back = start_sidecar(settings_with(tiny_models, tmp_path / "b", listen=f"127.0.0.1:{port}"), background_load=False)
    try:
        resumed = False
        for _ in range(50):  # the breaker probes after its back-off (200 ms, doubling)
            if search(indexed, 0, 10, "shoprank-e2e-down")["ext"]["shoprank"]["reranked"]:
                resumed = True
                break
            time.sleep(0.2)
        assert resumed, "reranking did not resume after the sidecar came back"
    finally:
        back.shutdown(0)


def test_setup_installs_the_rerank_pipeline_as_the_index_default_and_hybrid_runs_through_it(
    indexed: OpenSearchEngine, sidecar: Sidecar, opensearch_cluster: LiveCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    from shoprank.cli import main

    name = f"{indexed.alias}-shoprank"
    flags = ["--opensearch-url", opensearch_cluster.url, "--index-name", indexed.alias, "--rerank-window", "20"]
    flags += ["--sidecar-deadline-ms", "5000", "--rerank-targets", f"127.0.0.1:{sidecar.port}"]
    if opensearch_cluster.password:
        flags += ["--opensearch-user", opensearch_cluster.user, "--opensearch-password", opensearch_cluster.password]
    if not opensearch_cluster.verify_certs:
        flags.append("--no-opensearch-verify-certs")
    assert main(["opensearch", "setup", "--json", "--rerank-pipeline", name, "--default-pipeline", *flags]) == 0
    report = json.loads(capsys.readouterr().out)
    try:
        assert report["rerank_pipeline"] == name
        assert report["default_pipeline"] == name
        stored = indexed.client.search_pipeline.get(id=name)[name]
        assert stored["request_processors"] == [
            {"shoprank_embed": {"targets": [f"127.0.0.1:{sidecar.port}"], "deadline_ms": 200}},
            {"shoprank_rerank": {"window": 20}},
        ]
        template = indexed.client.indices.get_index_template(name=report["index_template"])["index_templates"][0]
        assert template["index_template"]["template"]["settings"]["index"]["search"]["default_pipeline"] == name
        # A shop's plain _search, naming no pipeline, is reranked by the index default.
        page = search(indexed, 0, 10)
        assert page["ext"]["shoprank"]["reranked"] is True
        # Hybrid fusion runs in the same pipeline before the rerank.
        vector = np.random.default_rng(1).normal(size=DIM).astype(np.float32)
        body = search_body(RetrievalQuery(text=QUERY, vector=vector / np.linalg.norm(vector), mode="hybrid", size=10))
        hybrid = indexed.client.search(index=indexed.alias, body=body)
        assert hybrid["ext"]["shoprank"]["reranked"] is True
        assert len(hybrid["hits"]["hits"]) == 10
        assert 0.0 <= hybrid["hits"]["hits"][0]["fields"]["shoprank.first_stage_score"][0] <= 1.0, "fused (min-max)"
        # The shop-box search template (hybrid, filters, facets) through the same default pipeline.
        params = {"query_text": QUERY, "query_vector": (vector / np.linalg.norm(vector)).tolist(), "k": 10}
        template_id = f"{indexed.alias}-shop-box"
        boxed = indexed.client.search_template(index=indexed.alias, body={"id": template_id, "params": params})
        assert boxed["ext"]["shoprank"]["reranked"] is True
        assert len(boxed["hits"]["hits"]) == 10
        assert boxed["aggregations"][FACET_SCOPE]["brand"]["buckets"], "facets survive the rerank"
        # shoprank's own engine asks for no pipeline: its first stage is never reranked by the plugin.
        bm25 = RetrievalQuery(text=QUERY, vector=None, mode="bm25", size=10)
        first_stage = [h.product.id for h in indexed.retrieve(bm25).hits]
        plain = indexed.client.search(index=indexed.alias, body=search_body(bm25), params={"search_pipeline": "_none"})
        defaulted = indexed.client.search(index=indexed.alias, body=search_body(bm25))
        assert "ext" not in plain
        assert first_stage == ids(plain)
        assert first_stage != ids(defaulted), "the same body without _none is reranked by the default pipeline"
    finally:
        indexed.client.indices.put_settings(index=indexed.alias, body={DEFAULT_PIPELINE_SETTING: None})
        indexed.client.search_pipeline.delete(id=name)


def start_sidecar_process(data_dir: Path, listen: str) -> tuple[subprocess.Popen[str], str]:
    """`shoprank sidecar` as its own process (so it can be SIGKILLed); its address once it listens."""
    command = [sys.executable, "-m", "shoprank", "--data-dir", str(data_dir), "sidecar", "--listen", listen]
    process = subprocess.Popen([*command, "--metrics-listen", ""], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"listening on ([\d.]+:\d+)", line)
    assert found, line
    return process, found.group(1)


def test_a_sidecar_sigkilled_under_four_clients_never_fails_a_search_and_reranking_resumes(
    indexed: OpenSearchEngine, tiny_models: Path, tmp_path: Path
) -> None:
    data_dir = settings_with(tiny_models, tmp_path).data_dir
    process, address = start_sidecar_process(data_dir, "127.0.0.1:0")
    port = int(address.rsplit(":", 1)[1])
    put_pipeline(indexed.client, "shoprank-e2e-kill", port, window=20, breaker={"failures": 2, "backoff_ms": 200})
    for _ in range(100):  # the sidecar answers once its model is warm
        if search(indexed, 0, 10, "shoprank-e2e-kill")["ext"]["shoprank"]["reranked"]:
            break
        time.sleep(0.2)
    plain = ids(search(indexed, 0, 10))
    served: list[tuple[float, bool, list[str], str | None]] = []  # (started, reranked, ids, reason)
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        for _ in range(2000):  # bounded; the test stops them much sooner
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                page = search(indexed, 0, 10, "shoprank-e2e-kill")  # any non-2xx raises
            except Exception as exc:  # every failure is the finding
                errors.append(exc)
                return
            ext = page["ext"]["shoprank"]
            served.append((started, ext["reranked"], ids(page), ext["fail_open_reason"]))

    clients = [threading.Thread(target=client) for _ in range(4)]
    restarted: subprocess.Popen[str] | None = None
    try:
        for thread in clients:
            thread.start()
        time.sleep(1.5)
        killed_at = time.monotonic()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        time.sleep(1.5)
        restarted, _ = start_sidecar_process(data_dir, address)
        back_at = time.monotonic()
        for _ in range(600):
            if any(started > back_at and reranked for started, reranked, _, _ in served) or errors:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in clients:
            thread.join(60)
        for proc in (process, restarted):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert errors == [], f"searches failed: {errors[:3]}"
    after_kill = [s for s in served if killed_at < s[0] < back_at]
    assert after_kill, "no search ran while the sidecar was dead"
    for _, reranked, page, reason in after_kill:
        if not reranked:
            assert page == plain, "fail-open serves the first-stage page"
            assert reason is not None
    assert any(not reranked for _, reranked, _, _ in after_kill)
    assert any(r and r.startswith("circuit_open") for _, _, _, r in after_kill), "the breaker skips the dead sidecar"
    assert any(started > back_at and reranked for started, reranked, _, _ in served), "reranking did not resume"


def test_tls_and_mutual_tls_to_the_sidecar(indexed: OpenSearchEngine, tiny_models: Path, tmp_path: Path) -> None:
    from tests.tls_certs import certificates

    certs = certificates(tmp_path)
    server = {"tls_cert": certs["server"], "tls_key": certs["server_key"]}
    tls = start_sidecar(settings_with(tiny_models, tmp_path / "tls", **server), background_load=False)
    try:
        put_pipeline(indexed.client, "shoprank-e2e-tls", tls.port, window=10, tls={"ca_file": str(certs["ca"])})
        assert search(indexed, 0, 5, "shoprank-e2e-tls")["ext"]["shoprank"]["reranked"] is True
        put_pipeline(indexed.client, "shoprank-e2e-plain", tls.port, window=10)
        plain = search(indexed, 0, 5, "shoprank-e2e-plain")["ext"]["shoprank"]
        assert plain["reranked"] is False, "never talks plaintext to a TLS sidecar"
    finally:
        tls.shutdown(0)
    mutual = settings_with(tiny_models, tmp_path / "mtls", **server, tls_client_ca=certs["ca"])
    mtls = start_sidecar(mutual, background_load=False)
    try:
        client_cert = {
            "ca_file": str(certs["ca"]),
            "cert_file": str(certs["client"]),
            "key_file": str(certs["client_key"]),
        }
        put_pipeline(indexed.client, "shoprank-e2e-mtls", mtls.port, window=10, tls=client_cert)
        assert search(indexed, 0, 5, "shoprank-e2e-mtls")["ext"]["shoprank"]["reranked"] is True
        put_pipeline(indexed.client, "shoprank-e2e-nocert", mtls.port, window=10, tls={"ca_file": str(certs["ca"])})
        assert search(indexed, 0, 5, "shoprank-e2e-nocert")["ext"]["shoprank"]["reranked"] is False
    finally:
        mtls.shutdown(0)
