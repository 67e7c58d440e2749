"""Dynamic batching across concurrent requests: one inference thread owns the model.

gRPC handler threads tokenize, `submit` their pairs and wait with their deadline. The
inference thread takes whole requests in arrival order into a "round" of at most one token
budget (a bigger request is split across rounds), cuts the round into length buckets with the
least padding (sidecar.bucketing) and runs them: requests that arrive together share calls,
and each finishes within the round it joined. Pairs of requests whose deadline passed or
that were cancelled are dropped before each call, never computed. Admission is bounded: a
request is refused at once (OverloadedError, RESOURCE_EXHAUSTED) when the queue is full or
when the work queued ahead of it plus its round would take more than 70% of the time left
before its deadline at the measured speed. Handlers ask before they validate a request
(`reserve`, with its candidate count): a refusal costs microseconds, and an admitted request
holds its place in the queue until it submits, so concurrent requests cannot all be admitted
into the same free space and then refused after validating.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from shoprank.arrays import FloatArray
from sidecar import metrics
from sidecar.bucketing import CPU_CALL_OVERHEAD_TOKENS, plan_padded_batches
from sidecar.domain import BatchUsage
from sidecar.errors import DeadlineExceededError, InferenceError, NotReadyError, OverloadedError

log = logging.getLogger(__name__)


# Share of the time left before a deadline that queued work may take: the rest is headroom for
# the handler's own work after scoring (diversity, the response) and for the estimate's error.
_DEADLINE_SHARE = 0.7
# Weight of the newest round in the moving average of throughput (tokens/s) used for admission.
_RATE_SMOOTHING = 0.3


class BatchModel(Protocol):
    """What the batcher drives: one padded inference call over token id lists."""

    def infer(self, ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]]) -> FloatArray: ...


@dataclass(frozen=True)
class BatchingConfig:
    """Knobs of the batcher (settings: batch_token_budget, batch_max_pairs, queue_max_pairs, batch_wait_ms)."""

    token_budget: int = 8192
    max_pairs: int = 256
    queue_max_pairs: int = 2000
    wait_ms: float = 0.0
    call_overhead_tokens: int = CPU_CALL_OVERHEAD_TOKENS


@dataclass(frozen=True)
class BatchOutcome:
    """Logits of one submitted request, in submission order, and how it was batched."""

    logits: FloatArray
    queue_ms: float
    inference_ms: float
    usage: BatchUsage


@dataclass(eq=False)
class _Work:
    ids: Sequence[Sequence[int]]
    type_ids: Sequence[Sequence[int]]
    deadline: float | None
    cancelled_event: threading.Event | None
    enqueued: float = field(default_factory=time.monotonic)
    next_pair: int = 0  # pairs before this index have been taken into a round
    remaining: int = 0  # pairs neither computed nor dropped
    cancelled: bool = False
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)
    started: float | None = None
    inference_s: float = 0.0
    usage: BatchUsage = field(default_factory=BatchUsage)

    def __post_init__(self) -> None:
        self.remaining = len(self.ids)
        self.logits = np.zeros(len(self.ids), dtype=np.float32)

    def dead(self, now: float) -> bool:
        """Whether its result can no longer be used: cancelled, or past its deadline."""
        if self.cancelled or (self.cancelled_event is not None and self.cancelled_event.is_set()):
            return True
        return self.deadline is not None and now >= self.deadline

    def fail(self, error: Exception) -> None:
        if self.error is None and not self.done.is_set():
            self.error = error
            self.done.set()


class Reservation:
    """Queue space held for a request admitted before it was validated; `submit` turns it into queued work.

    Release it when the request ends (a no-op once submitted): a request that fails validation
    or is served from the cache gives its place back.
    """

    def __init__(self, batcher: DynamicBatcher, pairs: int, tokens: int) -> None:
        self._batcher = batcher
        self.pairs = pairs
        self.tokens = tokens
        self.held = True

    def release(self) -> None:
        """Give the held queue space back."""
        self._batcher._unreserve(self)


class Ticket:
    """A submitted request: wait for its logits, or cancel it."""

    def __init__(self, batcher: DynamicBatcher, work: _Work) -> None:
        self._batcher = batcher
        self._work = work

    def wait(self, timeout: float | None) -> BatchOutcome:
        """Block until scored; DeadlineExceededError (and the work dropped) after `timeout` seconds."""
        work = self._work
        if not work.done.wait(timeout):
            self.cancel()
            raise DeadlineExceededError("the deadline passed while the request waited for the model")
        if work.error is not None:
            raise work.error
        started = work.started if work.started is not None else work.enqueued
        return BatchOutcome(
            logits=work.logits,
            queue_ms=(started - work.enqueued) * 1e3,
            inference_ms=work.inference_s * 1e3,
            usage=work.usage,
        )

    def cancel(self) -> None:
        """Drop whatever of this request is not computed yet."""
        self._batcher._cancel(self._work)


class DynamicBatcher:
    """A bounded queue of pair-scoring work in front of one model, served by one thread."""

    def __init__(self, model: BatchModel, config: BatchingConfig, tokens_per_s: float, name: str = "model") -> None:
        self._model = model
        self.config = config
        self._tokens_per_s = max(1.0, tokens_per_s)
        self._tokens_per_pair = 64.0  # moving average, for admission before tokenizing
        self._queue: deque[_Work] = deque()
        self._queued_pairs = 0
        self._queued_tokens = 0
        self._reserved_pairs = 0  # held by admitted requests not yet submitted
        self._reserved_tokens = 0
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=f"inference-{name}", daemon=True)
        self._thread.start()

    @property
    def queued_pairs(self) -> int:
        """Pairs submitted and not yet computed or dropped."""
        return self._queued_pairs

    @property
    def tokens_per_s(self) -> float:
        """Moving average of real tokens scored per second of inference."""
        return self._tokens_per_s

    def check_admission(self, pairs: int, deadline: float | None) -> None:
        """Refuse now (OverloadedError) a request of `pairs` pairs that `submit` would refuse.

        Called before tokenizing, so a flood is shed without spending CPU on it; tokens are
        estimated from the pairs seen so far, and `submit` checks again with the real count.
        """
        with self._cond:
            self._admit(pairs, int(pairs * self._tokens_per_pair), deadline, time.monotonic())

    def reserve(self, pairs: int, deadline: float | None) -> Reservation:
        """Admit a request of up to `pairs` pairs before it is validated and hold its queue space.

        Raises OverloadedError (or NotReadyError while closing) exactly as `submit` would;
        tokens are estimated from the pairs seen so far.
        """
        tokens = int(pairs * self._tokens_per_pair)
        with self._cond:
            self._admit(pairs, tokens, deadline, time.monotonic())
            self._reserved_pairs += pairs
            self._reserved_tokens += tokens
        return Reservation(self, pairs, tokens)

    def _unreserve(self, reservation: Reservation) -> None:
        with self._cond:
            self._take(reservation)

    def _take(self, reservation: Reservation) -> None:
        """Drop a held reservation from the counts (caller holds the lock)."""
        if reservation.held:
            reservation.held = False
            self._reserved_pairs -= reservation.pairs
            self._reserved_tokens -= reservation.tokens

    def _admit(self, pairs: int, tokens: int, deadline: float | None, now: float) -> None:
        """Raise OverloadedError unless a request fits the queue and its deadline (caller holds the lock)."""
        if self._closing:
            raise NotReadyError("this model is being replaced or stopped; retry or fail open")
        held_pairs = self._queued_pairs + self._reserved_pairs
        if not held_pairs:
            return  # nothing ahead: an idle model always takes the request
        held_tokens = self._queued_tokens + self._reserved_tokens
        ahead_s = held_tokens / self._tokens_per_s
        retry_ms = int(ahead_s * 1e3) + 1
        if held_pairs + pairs > self.config.queue_max_pairs:
            metrics.SHED.labels(reason="queue_full").inc()
            raise OverloadedError(
                f"the queue holds {held_pairs} pairs (limit {self.config.queue_max_pairs}); back off",
                retry_ms,
            )
        # It finishes with the round it joins, which later requests may fill up to the budget.
        done_s = (held_tokens + max(tokens, self.config.token_budget)) / self._tokens_per_s
        if deadline is not None and now + done_s >= now + (deadline - now) * _DEADLINE_SHARE:
            metrics.SHED.labels(reason="deadline_unmeetable").inc()
            raise OverloadedError(
                f"the work queued ahead and this request need ~{done_s * 1e3:.0f} ms, more than the "
                f"{max(0.0, deadline - now) * 1e3:.0f} ms left before the deadline",
                retry_ms,
            )

    def submit(
        self,
        ids: Sequence[Sequence[int]],
        type_ids: Sequence[Sequence[int]],
        deadline: float | None,
        cancelled: threading.Event | None = None,
        reservation: Reservation | None = None,
    ) -> Ticket:
        """Queue one request's pairs, or refuse at once with OverloadedError.

        A request holding a reservation (admitted before validation) is not checked again: its
        place turns into the queued pairs.
        """
        work = _Work(ids=ids, type_ids=type_ids, deadline=deadline, cancelled_event=cancelled)
        tokens = sum(len(i) for i in ids)
        with self._cond:
            if reservation is not None and reservation.held and reservation._batcher is self and not self._closing:
                self._take(reservation)
            else:
                self._admit(len(ids), tokens, deadline, work.enqueued)
            if ids:
                self._tokens_per_pair += _RATE_SMOOTHING * (tokens / len(ids) - self._tokens_per_pair)
            self._queue.append(work)
            self._queued_pairs += len(ids)
            self._queued_tokens += tokens
            metrics.QUEUED_PAIRS.inc(len(ids))
            self._cond.notify()
        if not ids:
            work.done.set()
        return Ticket(self, work)

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued work, then stop the inference thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- inference thread -------------------------------------------------------------------

    def _cancel(self, work: _Work) -> None:
        with self._cond:
            work.cancelled = True
            self._forget_untaken(work)
        work.fail(DeadlineExceededError("the request was cancelled or its deadline passed"))

    def _forget_untaken(self, work: _Work) -> None:
        """Drop a dead work's pairs not yet taken into a round (caller holds the lock)."""
        untaken = range(work.next_pair, len(work.ids))
        if untaken:
            self._release(len(untaken), sum(len(work.ids[i]) for i in untaken))
            metrics.DROPPED_PAIRS.inc(len(untaken))
            work.remaining -= len(untaken)
            work.next_pair = len(work.ids)

    def _release(self, pairs: int, tokens: int) -> None:
        self._queued_pairs -= pairs
        self._queued_tokens -= tokens
        metrics.QUEUED_PAIRS.dec(pairs)

    def _loop(self) -> None:
        while True:
            taken = self._next_round()
            if taken is None:
                return
            self._run_round(taken)
            del taken  # do not hold the last round's requests while waiting for the next

    def _next_round(self) -> list[tuple[_Work, int]] | None:
        """Pairs for the next round, oldest request first; None when closing with nothing queued."""
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            if self.config.wait_ms > 0 and not self._closing:
                until = time.monotonic() + self.config.wait_ms / 1e3
                while self._queued_tokens < self.config.token_budget and (left := until - time.monotonic()) > 0:
                    self._cond.wait(left)
            taken: list[tuple[_Work, int]] = []
            tokens = 0
            now = time.monotonic()
            while self._queue:
                work = self._queue[0]
                if work.dead(now):
                    self._forget_untaken(work)
                    work.fail(DeadlineExceededError("the deadline passed while the request was queued"))
                untaken = sum(len(work.ids[i]) for i in range(work.next_pair, len(work.ids)))
                if taken and tokens + untaken > self.config.token_budget:
                    break  # whole requests only after the first: each finishes within one round
                while work.next_pair < len(work.ids) and (not taken or tokens < self.config.token_budget):
                    taken.append((work, work.next_pair))
                    tokens += len(work.ids[work.next_pair])
                    work.next_pair += 1
                if work.next_pair < len(work.ids):
                    break  # a request bigger than the budget goes on in the next round
                self._queue.popleft()
            return taken

    def _run_round(self, taken: list[tuple[_Work, int]]) -> None:
        started = time.monotonic()
        lengths = [len(work.ids[pair]) for work, pair in taken]
        calls = plan_padded_batches(
            lengths, self.config.token_budget, self.config.max_pairs, self.config.call_overhead_tokens
        )
        computed = 0
        for call in calls:
            now = time.monotonic()
            live = [taken[i] for i in call if not taken[i][0].dead(now)]
            dropped = [taken[i] for i in call if taken[i][0].dead(now)]
            if dropped:
                self._drop(dropped)
            if live and self._run_call(live):
                computed += sum(len(work.ids[pair]) for work, pair in live)
        elapsed = time.monotonic() - started
        if computed and elapsed > 0:
            # Throughput over the whole round (planning, padding and Python between calls included),
            # which is what admission must predict: how fast queued tokens really drain.
            with self._cond:
                self._tokens_per_s += _RATE_SMOOTHING * (computed / elapsed - self._tokens_per_s)

    def _drop(self, pairs: list[tuple[_Work, int]]) -> None:
        with self._cond:
            self._release(len(pairs), sum(len(work.ids[pair]) for work, pair in pairs))
            for work, _ in pairs:
                work.remaining -= 1
                work.fail(DeadlineExceededError("the deadline passed before the request's pairs were scored"))
        metrics.DROPPED_PAIRS.inc(len(pairs))

    def _run_call(self, pairs: list[tuple[_Work, int]]) -> bool:
        """Run one call and hand out its logits; False when the model failed."""
        ids = [work.ids[pair] for work, pair in pairs]
        type_ids = [work.type_ids[pair] for work, pair in pairs]
        real = sum(len(i) for i in ids)
        width = max(len(i) for i in ids)
        started = time.monotonic()
        logits: FloatArray | None = None
        failure: InferenceError | None = None
        try:
            logits = self._model.infer(ids, type_ids)
        except Exception as error:
            log.exception("inference failed on a batch of %d pairs", len(pairs))
            failure = InferenceError(f"the model failed on this batch ({type(error).__name__}); see the sidecar log")
        elapsed = time.monotonic() - started
        with self._cond:
            self._release(len(pairs), real)
            for row, (work, pair) in enumerate(pairs):
                work.remaining -= 1
                if failure is not None or logits is None:
                    work.fail(failure or InferenceError("the model returned nothing"))
                    continue
                work.logits[pair] = logits[row]
                work.usage.tokens += len(work.ids[pair])
                work.usage.padded_tokens += width
            for work in dict.fromkeys(work for work, _ in pairs):
                if work.started is None:
                    work.started = started
                    metrics.QUEUE_SECONDS.observe(started - work.enqueued)
                work.usage.batches += 1
                work.usage.batch_pairs += len(pairs)
                work.inference_s += elapsed
                if work.remaining == 0 and work.error is None:
                    work.done.set()
        metrics.INFERENCE_SECONDS.observe(elapsed)
        metrics.BATCH_PAIRS.observe(len(pairs))
        metrics.BATCH_TOKENS.labels(kind="real").observe(real)
        metrics.BATCH_TOKENS.labels(kind="padded").observe(width * len(pairs))
        return failure is None
