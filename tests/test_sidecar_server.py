"""The sidecar over real gRPC with the tiny model: health, reflection, timings, cache, metrics, TLS, drain."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar import metrics
from sidecar.client import RerankClient
from sidecar.model_loading import load_service
from sidecar.ops_http import OpsEndpoint
from sidecar.rerank_service import RerankService
from sidecar.server import start_sidecar
from sidecar.tls import channel_credentials
from tests.sidecar_harness import request, running, settings_with, slowed_loader
from tests.tls_certs import certificates


def health_status(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(reply.status)


def test_not_serving_until_the_model_is_loaded_and_warmed(tiny_models: Path, tmp_path: Path) -> None:
    release = threading.Event()

    def gated(settings: Settings) -> RerankService:
        release.wait(30)
        return load_service(settings)

    sidecar = start_sidecar(settings_with(tiny_models, tmp_path), gated, background_load=True)
    try:
        assert health_status(sidecar.port) == health_pb2.HealthCheckResponse.NOT_SERVING
        with grpc.insecure_channel(f"127.0.0.1:{sidecar.port}") as channel, pytest.raises(grpc.RpcError) as refused:
            pb_grpc.RerankerStub(channel).Rerank(request(3), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        release.set()
        deadline = time.monotonic() + 30
        while health_status(sidecar.port) != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        release.set()
        sidecar.shutdown(0)


def test_reflection_lists_the_services(tiny_models: Path, tmp_path: Path) -> None:
    with (
        running(settings_with(tiny_models, tmp_path)) as (sidecar, _),
        grpc.insecure_channel(f"127.0.0.1:{sidecar.port}") as channel,
    ):
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in next(iter(replies)).list_services_response.service}
    assert {"shoprank.v1.Reranker", "grpc.health.v1.Health"} <= names


def test_timings_report_queue_and_batching_and_the_cache_serves_repeats(tiny_models: Path, tmp_path: Path) -> None:
    with running(settings_with(tiny_models, tmp_path, score_cache_entries=1000)) as (_, stub):
        first = stub.Rerank(request(30), timeout=30)
        assert first.reranked
        assert first.cache_hits == 0
        t = first.timings
        assert t.batches >= 1
        assert t.batch_pairs >= 30
        assert 0 < t.tokens <= t.padded_tokens
        assert t.inference_ms > 0
        assert t.queue_ms >= 0
        assert t.total_ms >= t.inference_ms
        again = stub.Rerank(request(30), timeout=30)
        assert again.cache_hits == 30
        assert again.timings.batches == 0
        assert again.timings.tokens == 0
        assert [r.relevance_score for r in again.results] == [r.relevance_score for r in first.results]
        edited = request(30)
        edited.candidates[0].product.title += " (new edition)"
        assert stub.Rerank(edited, timeout=30).cache_hits == 29  # the edited product is rescored
        other_query = request(30, query="blue stoneware mug")
        assert stub.Rerank(other_query, timeout=30).cache_hits == 0


def test_cache_off_scores_everything(tiny_models: Path, tmp_path: Path) -> None:
    with running(settings_with(tiny_models, tmp_path, score_cache_entries=0)) as (_, stub):
        stub.Rerank(request(10), timeout=30)
        assert stub.Rerank(request(10), timeout=30).cache_hits == 0


def test_rerank_window_is_separate_from_the_page(tiny_models: Path, tmp_path: Path) -> None:
    with running(settings_with(tiny_models, tmp_path)) as (_, stub):
        reply = stub.Rerank(request(40, top_k=7), timeout=30)
    assert len(reply.results) == 7
    assert reply.timings.tokens > 0
    assert reply.timings.batch_pairs >= 40


def test_metrics_endpoint_exposes_requests_queue_batches_and_cache(tiny_models: Path, tmp_path: Path) -> None:
    with running(settings_with(tiny_models, tmp_path, score_cache_entries=100)) as (sidecar, stub):
        stub.Rerank(request(12), timeout=30)
        stub.Rerank(request(12), timeout=30)
        with pytest.raises(grpc.RpcError):
            stub.Rerank(pb.RerankRequest(query=""), timeout=30)
        ops = OpsEndpoint("127.0.0.1:0", sidecar.reload)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ops.port}/metrics", timeout=10) as reply:
                text = reply.read().decode()
        finally:
            ops.close()
    for series in (
        'shoprank_sidecar_requests_total{status="OK"}',
        'shoprank_sidecar_requests_total{status="INVALID_ARGUMENT"}',
        'shoprank_sidecar_request_seconds_bucket{le="0.005",status="OK"}',
        "shoprank_sidecar_queue_seconds_count",
        "shoprank_sidecar_inference_seconds_count",
        "shoprank_sidecar_batch_pairs_count",
        'shoprank_sidecar_batch_tokens_count{kind="padded"}',
        "shoprank_sidecar_score_cache_hits_total",
        "shoprank_sidecar_score_cache_misses_total",
        "shoprank_sidecar_score_cache_hit_ratio",
        "shoprank_sidecar_model_info{",
        "process_resident_memory_bytes",
    ):
        assert series in text, series
    hits = [line for line in text.splitlines() if line.startswith("shoprank_sidecar_score_cache_hits_total")]
    assert float(hits[0].split()[-1]) >= 12


class _Hit:
    def __init__(self, i: int) -> None:
        self.id = f"h{i}"
        self.first_stage_score = float(10 - i)
        self.product = pb.Product(title=f"grey kitchen towel {i}", brand="Utopia")
        self.embedding = None


def test_tls_and_mutual_tls(tiny_models: Path, tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    hits = [_Hit(i) for i in range(5)]
    tls = settings_with(tiny_models, tmp_path, tls_cert=certs["server"], tls_key=certs["server_key"])
    sidecar = start_sidecar(tls, background_load=False)
    try:
        client = RerankClient(f"127.0.0.1:{sidecar.port}", 10_000, channel_credentials(certs["ca"]))
        assert client.rerank("towels", hits, 3).reranked
        plaintext = RerankClient(f"127.0.0.1:{sidecar.port}", 2_000)
        assert not plaintext.rerank("towels", hits, 3).reranked  # fails open, never talks plaintext
    finally:
        sidecar.shutdown(0)

    mutual = settings_with(
        tiny_models, tmp_path, tls_cert=certs["server"], tls_key=certs["server_key"], tls_client_ca=certs["ca"]
    )
    sidecar = start_sidecar(mutual, background_load=False)
    try:
        address = f"127.0.0.1:{sidecar.port}"
        with_cert = channel_credentials(certs["ca"], certs["client"], certs["client_key"])
        assert RerankClient(address, 10_000, with_cert).rerank("towels", hits, 3).reranked
        without_cert = RerankClient(address, 2_000, channel_credentials(certs["ca"])).rerank("towels", hits, 3)
        assert not without_cert.reranked
        assert without_cert.error is not None
        assert without_cert.error.startswith("UNAVAILABLE")
        from_settings = Settings(
            sidecar=address,
            sidecar_tls_ca=certs["ca"],
            sidecar_tls_cert=certs["client"],
            sidecar_tls_key=certs["client_key"],
        )
        assert RerankClient.from_settings(from_settings).rerank("towels", hits, 3).reranked
    finally:
        sidecar.shutdown(0)


def test_half_configured_tls_is_an_error_not_plaintext(tiny_models: Path, tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    with pytest.raises(ValueError, match="--tls-key"):
        start_sidecar(settings_with(tiny_models, tmp_path, tls_cert=certs["server"]), background_load=False)
    with pytest.raises(ValueError, match="tls-client-ca"):
        start_sidecar(settings_with(tiny_models, tmp_path, tls_client_ca=certs["ca"]), background_load=False)


def test_graceful_shutdown_finishes_in_flight_requests(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path, batch_token_budget=512)
    sidecar = start_sidecar(settings, slowed_loader(0.15), background_load=False)
    address = f"127.0.0.1:{sidecar.port}"
    results: list[pb.RerankResponse | grpc.RpcError] = []

    def call() -> None:
        with grpc.insecure_channel(address) as channel:
            try:
                results.append(pb_grpc.RerankerStub(channel).Rerank(request(40), timeout=30))
            except grpc.RpcError as error:
                results.append(error)

    callers = [threading.Thread(target=call) for _ in range(3)]
    for caller in callers:
        caller.start()
    time.sleep(0.3)  # all three are in flight: ~10 slowed calls of work queued
    assert sidecar.servicer.in_flight == 3
    assert sidecar.shutdown(grace_seconds=20) == 0
    for caller in callers:
        caller.join(30)
    assert len(results) == 3
    assert all(isinstance(r, pb.RerankResponse) and r.reranked for r in results), results
    assert metrics.REGISTRY.get_sample_value("shoprank_sidecar_queued_pairs") == 0
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as after:
        pb_grpc.RerankerStub(channel).Rerank(request(3), timeout=2)
    assert after.value.code() == grpc.StatusCode.UNAVAILABLE


def test_shutdown_reports_requests_cut_off_at_the_grace_period(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path, batch_token_budget=512)
    sidecar = start_sidecar(settings, slowed_loader(0.15), background_load=False)
    results: list[grpc.StatusCode] = []

    def call() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{sidecar.port}") as channel:
            try:
                pb_grpc.RerankerStub(channel).Rerank(request(40), timeout=30)
                results.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                results.append(error.code())

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)  # ~10 slowed model calls queued: far more than the 0.05 s grace
    assert sidecar.shutdown(grace_seconds=0.05) == 1
    caller.join(30)
    assert len(results) == 1
    assert results[0] in {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}, results
