"""The dynamic batcher with a fake model: cross-request batching, deadlines, shedding, failures, drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from sidecar.batching import BatchingConfig, DynamicBatcher
from sidecar.errors import DeadlineExceededError, InferenceError, NotReadyError, OverloadedError


class FakeModel:
    """Logit = sum of token ids; records every call; can block on a gate or fail."""

    def __init__(self, seconds_per_call: float = 0.0) -> None:
        self.calls: list[list[list[int]]] = []
        self.seconds_per_call = seconds_per_call
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_next = False

    def infer(self, ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]]) -> np.ndarray:
        self.entered.set()
        self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("boom")
        time.sleep(self.seconds_per_call)
        self.calls.append([list(i) for i in ids])
        return np.array([sum(i) for i in ids], dtype=np.float32)


def pairs(count: int, length: int = 8, start: int = 1) -> list[list[int]]:
    return [[start + i] * length for i in range(count)]


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def batcher(model: FakeModel) -> Iterator[DynamicBatcher]:
    b = DynamicBatcher(model, BatchingConfig(token_budget=4096, max_pairs=64, queue_max_pairs=100), 1e6)
    yield b
    model.gate.set()
    b.close(5)


def test_logits_come_back_in_submission_order(batcher: DynamicBatcher) -> None:
    ids = [[5] * 3, [1] * 9, [2] * 1, [7] * 4]  # lengths vary, so buckets reorder them
    outcome = batcher.submit(ids, ids, time.monotonic() + 5).wait(5)
    assert outcome.logits.tolist() == [15.0, 9.0, 2.0, 28.0]
    assert outcome.usage.tokens == 17
    assert outcome.usage.padded_tokens >= outcome.usage.tokens
    assert outcome.usage.batches >= 1


def test_concurrent_requests_share_inference_calls(batcher: DynamicBatcher, model: FakeModel) -> None:
    model.gate.clear()  # hold the thread in a first call while three more requests queue up
    first = batcher.submit(pairs(1), pairs(1), time.monotonic() + 5)
    assert model.entered.wait(5)
    tickets = [batcher.submit(pairs(3, start=10 * k), pairs(3), time.monotonic() + 5) for k in range(1, 4)]
    model.gate.set()
    first.wait(5)
    outcomes = [t.wait(5) for t in tickets]
    assert len(model.calls) == 2  # the three queued requests went in one call
    assert [o.usage.batch_pairs for o in outcomes] == [9, 9, 9]
    assert outcomes[0].logits.tolist() == [80.0, 88.0, 96.0]


def test_work_past_its_deadline_is_dropped_not_computed(batcher: DynamicBatcher, model: FakeModel) -> None:
    model.gate.clear()
    blocker = batcher.submit(pairs(1), pairs(1), time.monotonic() + 5)
    assert model.entered.wait(5)
    doomed = batcher.submit(pairs(5, start=100), pairs(5), time.monotonic() + 0.05)
    time.sleep(0.1)  # its deadline passes while the model is busy
    model.gate.set()
    blocker.wait(5)
    with pytest.raises(DeadlineExceededError):
        doomed.wait(5)
    time.sleep(0.05)
    computed = [row[0] for call in model.calls for row in call]
    assert not any(token >= 100 for token in computed)
    assert batcher.queued_pairs == 0


def test_a_waiter_that_times_out_cancels_its_work(batcher: DynamicBatcher, model: FakeModel) -> None:
    model.gate.clear()
    batcher.submit(pairs(1), pairs(1), None)
    assert model.entered.wait(5)
    ticket = batcher.submit(pairs(4, start=200), pairs(4), None)
    with pytest.raises(DeadlineExceededError):
        ticket.wait(0.05)
    assert batcher.queued_pairs == 1  # only the blocker's pair is still counted
    model.gate.set()
    time.sleep(0.1)
    assert not any(row[0] >= 200 for call in model.calls for row in call)


def test_a_cancelled_event_drops_queued_work(batcher: DynamicBatcher, model: FakeModel) -> None:
    model.gate.clear()
    batcher.submit(pairs(1), pairs(1), None)
    assert model.entered.wait(5)
    gone = threading.Event()
    ticket = batcher.submit(pairs(2, start=300), pairs(2), None, gone)
    gone.set()  # the caller went away
    model.gate.set()
    with pytest.raises(DeadlineExceededError):
        ticket.wait(5)
    assert not any(row[0] >= 300 for call in model.calls for row in call)


def test_a_full_queue_refuses_at_once(batcher: DynamicBatcher, model: FakeModel) -> None:
    model.gate.clear()
    batcher.submit(pairs(60), pairs(60), None)
    started = time.monotonic()
    with pytest.raises(OverloadedError) as refused:
        batcher.submit(pairs(50), pairs(50), None)
    assert time.monotonic() - started < 0.1
    assert "limit 100" in str(refused.value)
    assert refused.value.retry_after_ms is not None


def test_a_reservation_holds_queue_space_until_submitted_or_released(batcher: DynamicBatcher, model: FakeModel) -> None:
    model.gate.clear()
    held = batcher.reserve(60, None)  # admitted before the request is parsed
    with pytest.raises(OverloadedError):
        batcher.reserve(50, None)  # the held space counts: no second request into the same room
    with pytest.raises(OverloadedError):
        batcher.submit(pairs(50), pairs(50), None)
    ticket = batcher.submit(pairs(60), pairs(60), None, reservation=held)  # admitted once, not checked again
    held.release()  # after submit: a no-op, the pairs are queued
    assert batcher.queued_pairs == 60
    with pytest.raises(OverloadedError):
        batcher.reserve(50, None)
    model.gate.set()
    assert len(ticket.wait(5).logits) == 60
    unused = batcher.reserve(60, None)
    unused.release()  # a request that failed validation gives its place back
    batcher.reserve(30, None)
    assert batcher.reserve(60, None).pairs == 60  # 30 + 60 fit the 100; with the released 60 they would not


def test_an_oversized_request_is_admitted_when_the_queue_is_empty(batcher: DynamicBatcher) -> None:
    outcome = batcher.submit(pairs(150, length=2), pairs(150), None).wait(5)
    assert len(outcome.logits) == 150


def test_work_ahead_longer_than_the_deadline_is_refused() -> None:
    model = FakeModel()
    slow_rate = DynamicBatcher(model, BatchingConfig(token_budget=4096), tokens_per_s=1000.0)
    try:
        model.gate.clear()
        slow_rate.submit(pairs(50, length=20), pairs(50), None)  # 1000 tokens queued: ~1 s of work
        with pytest.raises(OverloadedError) as refused:
            slow_rate.submit(pairs(2), pairs(2), time.monotonic() + 0.2)
        assert "deadline" in str(refused.value)
        # A request with time to spare is admitted.
        ticket = slow_rate.submit(pairs(2), pairs(2), time.monotonic() + 30)
        model.gate.set()
        assert ticket.wait(5).logits.tolist() == [8.0, 16.0]
    finally:
        model.gate.set()
        slow_rate.close(5)


def test_a_failing_call_fails_its_requests_and_the_batcher_goes_on(batcher: DynamicBatcher, model: FakeModel) -> None:
    model.fail_next = True
    with pytest.raises(InferenceError):
        batcher.submit(pairs(2), pairs(2), None).wait(5)
    assert batcher.submit(pairs(1), pairs(1), None).wait(5).logits.tolist() == [8.0]
    assert batcher.queued_pairs == 0


def test_close_finishes_queued_work_then_refuses(model: FakeModel) -> None:
    b = DynamicBatcher(FakeModel(seconds_per_call=0.05), BatchingConfig(token_budget=16), 1e6)
    tickets = [b.submit(pairs(2), pairs(2), None) for _ in range(3)]
    b.close(10)
    assert all(len(t.wait(0).logits) == 2 for t in tickets)
    with pytest.raises(NotReadyError):
        b.submit(pairs(1), pairs(1), None)


def test_throughput_estimate_follows_measured_calls() -> None:
    b = DynamicBatcher(FakeModel(seconds_per_call=0.02), BatchingConfig(), tokens_per_s=1e6)
    try:
        for _ in range(25):  # from a wrong start (1e6) to the measured speed
            b.submit(pairs(10, length=10), pairs(10), None).wait(5)
        assert 1_000 < b.tokens_per_s < 10_000  # ~100 tokens per ~20 ms call
    finally:
        b.close(5)
