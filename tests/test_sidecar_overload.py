"""Overload: offered load several times capacity sheds with RESOURCE_EXHAUSTED at once, admitted
requests meet their deadline, and memory and the queue return to their baseline; a retry storm
is refused before any request is validated."""

from __future__ import annotations

import functools
import gc
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest

from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar import metrics
from sidecar.batching import _Work
from sidecar.errors import RETRY_AFTER_KEY
from sidecar.wire_request import request_to_domain
from tests.sidecar_harness import request, running, settings_with, slowed_loader

# The slowed tiny model costs 40 us per padded token: a 20-candidate request (~1,500 tokens)
# takes ~60 ms, so the sidecar's capacity is ~15 requests/s. The flood offers 60/s.
SECONDS_PER_TOKEN = 40e-6
OFFERED_PER_S = 60
FLOOD_S = 2.5
DEADLINE_S = 0.5


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def flood(stub: pb_grpc.RerankerStub) -> list[tuple[grpc.StatusCode, float]]:
    """Open-loop load: a request every 1/OFFERED_PER_S seconds whatever the answers; (status, seconds)."""
    requests = [request(20, seed=i) for i in range(int(OFFERED_PER_S * FLOOD_S))]
    pending = []
    finished: dict[int, float] = {}

    def mark_done(index: int, _future: object) -> None:
        finished[index] = time.monotonic()

    started = time.monotonic()
    for i, message in enumerate(requests):
        time.sleep(max(0.0, started + i / OFFERED_PER_S - time.monotonic()))
        future = stub.Rerank.future(message, timeout=DEADLINE_S)
        future.add_done_callback(functools.partial(mark_done, i))
        pending.append((time.monotonic(), future))
    outcomes = []
    for i, (sent, future) in enumerate(pending):
        try:
            future.result()
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
        outcomes.append((code, finished.get(i, time.monotonic()) - sent))
    return outcomes


def answered_at(outcome_futures: list[tuple[grpc.StatusCode, float]], code: grpc.StatusCode) -> list[float]:
    return [seconds for status, seconds in outcome_futures if status == code]


def test_flood_sheds_at_once_admitted_meet_deadline_and_memory_returns(tiny_models: Path, tmp_path: Path) -> None:
    # Diversity off: the flood measures admission against the scorer's capacity. The default (DPP)
    # would add bi-encoder embedding of the vector-less candidates, outside that estimate.
    settings = settings_with(
        tiny_models, tmp_path, score_cache_entries=0, batch_token_budget=4096, diversity_method="none"
    )
    with running(settings, slowed_loader(0.0, SECONDS_PER_TOKEN)) as (_, stub):
        for i in range(3):  # warm: the throughput estimate sees the slowed model
            stub.Rerank(request(20, seed=1000 + i), timeout=10)
        shed_before = sum(
            metrics.REGISTRY.get_sample_value("shoprank_sidecar_shed_requests_total", {"reason": r}) or 0
            for r in ("queue_full", "deadline_unmeetable")
        )
        first = flood(stub)
        gc.collect()
        after_first = resident_mb()
        second = flood(stub)
        time.sleep(DEADLINE_S)  # any work still queued is past its deadline by now
        gc.collect()
        after_second = resident_mb()

        outcomes = first + second
        statuses = Counter(status for status, _ in outcomes)
        assert set(statuses) <= {
            grpc.StatusCode.OK,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        }, statuses
        # It sheds, and sheds at once rather than at the deadline.
        shed = answered_at(outcomes, grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert len(shed) >= len(outcomes) // 3, statuses
        assert sorted(shed)[len(shed) // 2] < DEADLINE_S / 4
        # It keeps doing useful work, and what it admits it answers in time.
        admitted = answered_at(outcomes, grpc.StatusCode.OK)
        assert len(admitted) >= FLOOD_S * 2 * 5, statuses  # at least a third of capacity
        assert all(seconds <= DEADLINE_S + 0.05 for seconds in admitted)
        # Admission keeps most admitted work within its deadline. The share depends on how much CPU the
        # rest of the machine takes (the suite on 2 cores: up to ~0.3 seen), so the bound is a majority;
        # the speed figures belong to `shoprank bench rerank`.
        assert statuses[grpc.StatusCode.DEADLINE_EXCEEDED] < 0.5 * len(admitted), statuses
        shed_after = sum(
            metrics.REGISTRY.get_sample_value("shoprank_sidecar_shed_requests_total", {"reason": r}) or 0
            for r in ("queue_full", "deadline_unmeetable")
        )
        assert shed_after - shed_before == len(shed)

        # Nothing is left behind: an empty queue, no work objects alive, no memory growth.
        assert metrics.REGISTRY.get_sample_value("shoprank_sidecar_queued_pairs") == 0
        assert not [o for o in gc.get_objects() if isinstance(o, _Work)]
        assert after_second - after_first < 25, (after_first, after_second)
        assert stub.Rerank(request(20, seed=5000), timeout=10).reranked  # and it still serves


STORM_CLIENTS = 8
STORM_ATTEMPTS = 25  # per client: the storm is bounded however the sidecar answers
STORM_DEADLINE_S = 1.0


def retry_storm(stub: pb_grpc.RerankerStub) -> list[tuple[grpc.StatusCode, bool]]:
    """Clients that re-send at once when refused, ignoring retry-after; (status, retry-after sent) per call."""
    outcomes: list[tuple[grpc.StatusCode, bool]] = []
    lock = threading.Lock()

    messages = [request(100, seed=10_000 + i) for i in range(STORM_CLIENTS)]  # ~7,000 tokens each

    def client(index: int) -> None:
        for _ in range(STORM_ATTEMPTS):
            message = messages[index]
            try:
                stub.Rerank(message, timeout=STORM_DEADLINE_S)
                outcome = (grpc.StatusCode.OK, False)
            except grpc.RpcError as error:
                trailing = [item.key for item in error.trailing_metadata() or ()]
                outcome = (error.code(), RETRY_AFTER_KEY in trailing)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(STORM_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_retry_storm_is_refused_before_validation_and_admitted_requests_meet_their_deadline(
    tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = Counter[str]()
    validate = request_to_domain

    def counting(*args: Any, **kwargs: Any) -> Any:
        validated["calls"] += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr("sidecar.servicer.request_to_domain", counting)
    settings = settings_with(
        tiny_models, tmp_path, score_cache_entries=0, batch_token_budget=4096, diversity_method="none"
    )
    with running(settings, slowed_loader(0.0, SECONDS_PER_TOKEN)) as (_, stub):
        for i in range(3):  # warm: the throughput estimate sees the slowed model
            stub.Rerank(request(20, seed=1000 + i), timeout=10)
        validated.clear()
        outcomes = retry_storm(stub)
        statuses = Counter(status for status, _ in outcomes)

        assert len(outcomes) == STORM_CLIENTS * STORM_ATTEMPTS
        assert set(statuses) <= {
            grpc.StatusCode.OK,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        }, statuses
        refused = [
            has_retry_after for status, has_retry_after in outcomes if status == grpc.StatusCode.RESOURCE_EXHAUSTED
        ]
        assert len(refused) >= len(outcomes) // 2, statuses  # it is a storm: most are refused
        assert all(refused)  # each refusal names its back-off
        # No refused request was validated: admission came first, and what it admitted kept its place.
        assert validated["calls"] == len(outcomes) - len(refused), (validated, statuses)
        admitted = statuses[grpc.StatusCode.OK] + statuses[grpc.StatusCode.DEADLINE_EXCEEDED]
        assert statuses[grpc.StatusCode.OK] >= 5, statuses
        assert statuses[grpc.StatusCode.DEADLINE_EXCEEDED] <= 0.2 * admitted, statuses
        assert metrics.REGISTRY.get_sample_value("shoprank_sidecar_queued_pairs") == 0


def test_requests_past_the_in_flight_byte_budget_are_refused_before_parsing(tiny_models: Path, tmp_path: Path) -> None:
    # max_request_bytes 64 KiB: handlers may hold 4 x 64 KiB at once; each request here is ~60 KB.
    settings = settings_with(tiny_models, tmp_path, score_cache_entries=0, max_request_bytes=64 * 1024)
    with running(settings, slowed_loader(1.0)) as (sidecar, stub):
        assert sidecar.servicer.max_in_flight_bytes == 4 * 64 * 1024

        def big(seed: int) -> Any:
            message = request(5, seed=seed)
            for candidate in message.candidates:
                candidate.product.description = "soft cotton " * 1000  # 12 KB a candidate
            assert 50_000 < message.ByteSize() <= 64 * 1024
            return message

        running_calls = [stub.Rerank.future(big(i), timeout=30) for i in range(4)]  # ~240 KiB held
        for _ in range(200):
            if sidecar.servicer.in_flight == 4:
                break
            time.sleep(0.02)
        assert sidecar.servicer.in_flight == 4
        with pytest.raises(grpc.RpcError) as refused:
            stub.Rerank(big(9), timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "requests in flight hold" in (refused.value.details() or "")
        assert RETRY_AFTER_KEY in [item.key for item in refused.value.trailing_metadata() or ()]
        assert all(call.result().reranked for call in running_calls)  # admitted work is unaffected
        assert stub.Rerank(big(10), timeout=30).reranked  # the budget frees as requests end
