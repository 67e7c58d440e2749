"""The front door's client: fail-open fast when the sidecar is down, at the deadline when it is slow,
backing off when it sheds load, and through a sidecar killed under load."""

from __future__ import annotations

import socket
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from sidecar import metrics
from sidecar.client import MAX_BACKOFF_S, RerankClient
from sidecar.errors import RETRY_AFTER_KEY
from sidecar.process import SidecarProcess
from tests.sidecar_harness import running, settings_with, slowed_loader


@dataclass
class Hit:
    id: str
    first_stage_score: float
    product: pb.Product
    embedding: None = None


HITS = [Hit(f"h{i}", float(50 - i), pb.Product(title=f"grey kitchen towel {i}", brand="Utopia")) for i in range(50)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.service
def test_a_dead_sidecar_fails_open_at_once() -> None:
    client = RerankClient(f"127.0.0.1:{free_port()}", deadline_ms=5000)
    for _ in range(3):  # the first call and the ones while gRPC backs off reconnecting
        started = time.monotonic()
        reply = client.rerank("towels", HITS, 10)
        assert time.monotonic() - started < 0.5
        assert not reply.reranked
        assert reply.error is not None
        assert reply.error.startswith("UNAVAILABLE")
        assert reply.failure is not None
        assert reply.failure.code == grpc.StatusCode.UNAVAILABLE
        assert [r.id for r in reply.results] == [h.id for h in HITS[:10]]  # first-stage order


def test_a_slow_sidecar_fails_open_at_the_deadline_and_drops_the_work(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path, score_cache_entries=0, batch_token_budget=256)
    with running(settings, slowed_loader(0.4)) as (sidecar, _):
        client = RerankClient(f"127.0.0.1:{sidecar.port}", deadline_ms=300)
        dropped_before = metrics.REGISTRY.get_sample_value("shoprank_sidecar_dropped_pairs_total") or 0
        started = time.monotonic()
        reply = client.rerank("towels", HITS, 10)
        elapsed = time.monotonic() - started
        assert 0.29 <= elapsed < 1.5
        assert not reply.reranked
        assert reply.error is not None
        assert reply.error.startswith("DEADLINE_EXCEEDED")
        assert reply.failure is not None
        assert reply.failure.code == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(1.0)  # the call in progress ends; the rest of the request is dropped, not computed
        dropped = (metrics.REGISTRY.get_sample_value("shoprank_sidecar_dropped_pairs_total") or 0) - dropped_before
        assert dropped > 0
        assert metrics.REGISTRY.get_sample_value("shoprank_sidecar_queued_pairs") == 0


class Shedding:
    """A Reranker that always answers RESOURCE_EXHAUSTED with a retry-after hint, counting calls."""

    def __init__(self, retry_after_ms: int) -> None:
        self.calls = 0
        self.retry_after_ms = retry_after_ms

    def rerank(self, _request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        context.set_trailing_metadata(((RETRY_AFTER_KEY, str(self.retry_after_ms)),))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full")


def test_resource_exhausted_is_honoured_with_a_back_off() -> None:
    shedding = Shedding(retry_after_ms=400)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(shedding.rerank)
    service = grpc.method_handlers_generic_handler("shoprank.v1.Reranker", {"Rerank": handler})
    server.add_generic_rpc_handlers((service,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = RerankClient(f"127.0.0.1:{port}", deadline_ms=5000)
        first = client.rerank("towels", HITS, 10)
        assert not first.reranked
        assert first.error is not None
        assert first.error.startswith("RESOURCE_EXHAUSTED")
        assert shedding.calls == 1
        during = client.rerank("towels", HITS, 10)  # backing off: the sidecar is not called
        assert shedding.calls == 1
        assert not during.reranked
        assert during.error is not None
        assert "backing off" in during.error
        assert [r.id for r in during.results] == [h.id for h in HITS[:10]]
        time.sleep(0.45)
        client.rerank("towels", HITS, 10)
        assert shedding.calls == 2  # called again once the back-off it asked for is over
        shedding.retry_after_ms = 60_000  # a huge hint is capped
        time.sleep(0.45)
        client.rerank("towels", HITS, 10)
        assert shedding.calls == 3
        time.sleep(MAX_BACKOFF_S + 0.05)
        client.rerank("towels", HITS, 10)
        assert shedding.calls == 4
    finally:
        server.stop(0)


def test_a_request_over_grpcs_own_size_cap_is_a_refused_request_not_overload() -> None:
    # A server whose gRPC cap (4 KiB) is below what the client sends: gRPC itself answers
    # RESOURCE_EXHAUSTED, which must not start the overload back-off.
    shedding = Shedding(retry_after_ms=400)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.max_receive_message_length", 4096)])
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(shedding.rerank)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("shoprank.v1.Reranker", {"Rerank": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = RerankClient(f"127.0.0.1:{port}", deadline_ms=5000)
        hits = [
            Hit(h.id, h.first_stage_score, pb.Product(title=h.product.title, description="soft " * 100)) for h in HITS
        ]
        for _ in range(2):
            reply = client.rerank("towels", hits, 10)
            assert not reply.reranked
            assert reply.error is not None
            assert "larger than max" in reply.error  # each call reached gRPC: no back-off in between
        assert shedding.calls == 0
    finally:
        server.stop(0)


def _start_sidecar(settings: Settings, listen: str) -> tuple[SidecarProcess, str]:
    process = SidecarProcess(settings, listen=listen)
    return process, process.address


def test_killing_the_sidecar_under_load_fails_open_and_it_recovers(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path)
    process, address = _start_sidecar(settings, "127.0.0.1:0")
    client = RerankClient(address, deadline_ms=2000)
    assert client.wait_until_serving(60)
    replies: list[tuple[float, float, bool, str | None, bool]] = []  # (start, seconds, reranked, error, page ok)
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            started = time.monotonic()
            reply = client.rerank("towels", HITS, 10)
            page_ok = len(reply.results) == 10
            replies.append((started, time.monotonic() - started, reply.reranked, reply.error, page_ok))

    callers = [threading.Thread(target=search) for _ in range(4)]
    try:
        for caller in callers:
            caller.start()
        time.sleep(1.5)
        killed_at = time.monotonic()
        process.kill()
        time.sleep(1.5)
        restarted, _ = _start_sidecar(settings, address)
        try:
            recovered = time.monotonic()
            while not any(start > recovered and reranked for start, _, reranked, _, _ in replies):
                assert time.monotonic() - recovered < 60, "the client never used the restarted sidecar"
                time.sleep(0.1)
        finally:
            stop.set()
            for caller in callers:
                caller.join(30)
            restarted.kill()
    finally:
        stop.set()
        process.kill()
    assert all(page_ok for *_, page_ok in replies)  # every search got a full page
    before = [r for r in replies if r[0] + r[1] < killed_at]
    assert any(reranked for _, _, reranked, _, _ in before)
    after_kill = [r for r in replies if killed_at + 0.1 < r[0] < killed_at + 1.5]
    assert after_kill
    assert not any(reranked for _, _, reranked, _, _ in after_kill)
    assert all(seconds < 0.5 for _, seconds, *_ in after_kill)  # refused at once, not at the deadline
    assert all(error is not None and error.startswith("UNAVAILABLE") for *_, error, _ in after_kill)
