"""The embed use case: query texts → unit vectors with the bi-encoder the catalogue was indexed with.

Knows nothing of gRPC: takes a validated `EmbedQuery`, returns an `EmbedOutcome`. Admission works
like the rerank batcher's: a request is refused at once (OverloadedError, RESOURCE_EXHAUSTED) when
more than `max_queued_texts` texts are waiting, or when the texts ahead of it would take more than
70% of the time left before its deadline at the measured speed; work whose deadline passed while it
waited is dropped (DeadlineExceededError), never computed. One model call runs at a time (the
bi-encoder session has one intra-op thread beside the cross-encoder's pool), and requests that
arrive while it runs share the next call: the first of them to get the model takes every waiting
request (up to MAX_BATCH_TEXTS texts) into one call, so concurrent searches' single queries are
embedded together, as a dynamic batcher does, without a thread of its own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from shoprank.arrays import FloatArray
from sidecar import metrics
from sidecar.domain import BatchUsage, Timings
from sidecar.errors import DeadlineExceededError, ModelMismatchError, OverloadedError

# Share of the time left before a deadline that the texts queued ahead may take (as the batcher's).
DEADLINE_SHARE = 0.7
# Weight of the newest call in the moving average of seconds per text used for admission.
RATE_SMOOTHING = 0.3
# Seconds per text assumed before the first call is measured (a short query on one CPU thread).
INITIAL_SECONDS_PER_TEXT = 0.005
# Back-off named to a refused request: about one queue's turnover is not known, so a short fixed one.
RETRY_AFTER_MS = 20
# Most texts one shared model call takes from the waiting requests (a larger request goes alone).
MAX_BATCH_TEXTS = 64


@runtime_checkable
class TextEmbedder(Protocol):
    """What the service drives: the run-time bi-encoder (shoprank.bi_encoder.BiEncoder)."""

    dim: int
    version: str

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]: ...

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> FloatArray: ...


@dataclass(frozen=True)
class EmbedQuery:
    """A validated Embed request."""

    texts: tuple[str, ...]
    expected_model_version: str | None = None
    deadline: float | None = None  # time.monotonic() seconds


@dataclass(eq=False)
class _Waiting:
    """One request's token ids waiting for (or in) a model call."""

    ids: Sequence[Sequence[int]]
    deadline: float | None
    done: threading.Event = field(default_factory=threading.Event)
    vectors: FloatArray | None = None
    error: BaseException | None = None
    started: float = 0.0  # perf_counter when its call began
    inference_s: float = 0.0
    batch_texts: int = 0


@dataclass(frozen=True)
class EmbedOutcome:
    """The vectors (n, dim) in request order, the model that made them, and timings."""

    vectors: FloatArray
    model_version: str
    timings: Timings  # usage: one model call, batch_pairs = the texts in it (its own and other requests')


class EmbedGate:
    """Admission and the one-call-at-a-time turn for Embed requests, shared across model reloads."""

    def __init__(self, max_queued_texts: int) -> None:
        self.max_queued_texts = max_queued_texts
        self._queued = 0
        self._seconds_per_text = INITIAL_SECONDS_PER_TEXT
        self._lock = threading.Lock()
        self._model = threading.Condition()  # guards _waiting and _running
        self._waiting: deque[_Waiting] = deque()
        self._running = False

    @property
    def queued(self) -> int:
        """Texts admitted and not yet embedded."""
        with self._lock:
            return self._queued

    def admit(self, texts: int, deadline: float | None) -> None:
        """Count `texts` as queued, or raise OverloadedError (queue full, or the wait would outlast the deadline)."""
        with self._lock:
            if self._queued and self._queued + texts > self.max_queued_texts:
                metrics.SHED.labels(reason="embed_queue_full").inc()
                raise OverloadedError(
                    f"{self._queued} texts are waiting for the bi-encoder (limit {self.max_queued_texts}); back off",
                    RETRY_AFTER_MS,
                )
            if deadline is not None:
                wait = (self._queued + texts) * self._seconds_per_text
                left = deadline - time.monotonic()
                if self._queued and wait > DEADLINE_SHARE * left:
                    metrics.SHED.labels(reason="embed_deadline").inc()
                    raise OverloadedError(
                        f"the {self._queued} texts ahead would take ~{wait * 1e3:.0f} ms of the "
                        f"{max(left, 0) * 1e3:.0f} ms left; back off",
                        RETRY_AFTER_MS,
                    )
            self._queued += texts

    @property
    def waiting(self) -> int:
        """Requests waiting for a model call (not counting the one running)."""
        with self._model:
            return len(self._waiting)

    def release(self, texts: int) -> None:
        """The admitted texts are done (embedded, dropped or refused after admission)."""
        with self._lock:
            self._queued -= texts

    def observe(self, texts: int, seconds: float) -> None:
        """Fold one model call's speed into the admission estimate."""
        if texts:
            with self._lock:
                per_text = seconds / texts
                self._seconds_per_text += RATE_SMOOTHING * (per_text - self._seconds_per_text)

    def run(self, embedder: TextEmbedder, ids: Sequence[Sequence[int]], deadline: float | None) -> _Waiting:
        """Embed `ids` in the next model call (shared with the requests waiting beside it), within the deadline.

        DeadlineExceededError when the deadline passes before a call takes it (nothing computed).
        """
        item = _Waiting(ids, deadline)
        with self._model:
            self._waiting.append(item)
        while True:
            batch: list[_Waiting] | None = None
            with self._model:
                while not item.done.is_set():
                    if not self._running:
                        batch = self._take()  # fails the requests past their deadline, this one too
                        if batch:
                            self._running = True
                            break
                        continue
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0 and item in self._waiting:
                        self._waiting.remove(item)
                        raise DeadlineExceededError("the deadline passed while the request waited for the bi-encoder")
                    # Past its deadline inside a running call: that call's end wakes it.
                    self._model.wait(timeout=left if left is not None and left > 0 else None)
            if batch is None:
                break
            self._call(embedder, batch)  # a call for the oldest waiting: this request may be in a later one
        if item.error is not None:
            raise item.error
        return item

    def _take(self) -> list[_Waiting]:
        """Waiting requests for one call, oldest first; those past their deadline are failed, not taken."""
        now = time.monotonic()
        batch: list[_Waiting] = []
        texts = 0
        while self._waiting:
            head = self._waiting[0]
            if head.deadline is not None and now >= head.deadline:
                self._waiting.popleft()
                head.error = DeadlineExceededError("the deadline passed while the request waited for the bi-encoder")
                head.done.set()
                continue
            if batch and texts + len(head.ids) > MAX_BATCH_TEXTS:
                break
            batch.append(self._waiting.popleft())
            texts += len(head.ids)
        return batch

    def _call(self, embedder: TextEmbedder, batch: list[_Waiting]) -> None:
        """One model call for the batch (on the calling request's thread); every member hears its rows."""
        started = time.perf_counter()
        texts = sum(len(item.ids) for item in batch)
        try:
            vectors = embedder.encode_ids([ids for item in batch for ids in item.ids])
            elapsed = time.perf_counter() - started
            row = 0
            for item in batch:
                item.vectors = vectors[row : row + len(item.ids)]
                row += len(item.ids)
            self.observe(texts, elapsed)
        except BaseException as error:  # every member fails with the call, and the model is freed below
            elapsed = time.perf_counter() - started
            for item in batch:
                item.error = error
        finally:
            with self._model:
                for item in batch:
                    item.started, item.inference_s, item.batch_texts = started, elapsed, texts
                    item.done.set()
                self._running = False
                self._model.notify_all()


def embed(embedder: TextEmbedder, gate: EmbedGate, query: EmbedQuery) -> EmbedOutcome:
    """Check the model version, tokenize, wait for the model's turn within the deadline, embed."""
    started = time.perf_counter()
    if query.expected_model_version is not None and query.expected_model_version != embedder.version:
        raise ModelMismatchError(
            f"the index was built with bi-encoder {query.expected_model_version!r} but this sidecar serves "
            f"{embedder.version!r}: query vectors would not match the indexed ones; reindex with this model "
            "(`shoprank index`) or serve the index's model"
        )
    ids = embedder.token_ids(query.texts)
    tokenized = time.perf_counter()
    done = gate.run(embedder, ids, query.deadline)
    assert done.vectors is not None  # run() raises otherwise
    metrics.EMBED_TEXTS.inc(len(ids))
    return EmbedOutcome(
        vectors=done.vectors,
        model_version=embedder.version,
        timings=Timings(
            tokenize_ms=(tokenized - started) * 1e3,
            queue_ms=max(0.0, done.started - tokenized) * 1e3,
            inference_ms=done.inference_s * 1e3,
            total_ms=(time.perf_counter() - started) * 1e3,
            usage=BatchUsage(batches=1, batch_pairs=done.batch_texts, tokens=sum(len(i) for i in ids)),
        ),
    )
