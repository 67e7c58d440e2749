"""The embed use case: query texts → unit vectors with the bi-encoder the catalogue was indexed with.

Knows nothing of gRPC: takes a validated `EmbedQuery`, returns an `EmbedOutcome`. Admission works
like the rerank batcher's: a request is refused at once (OverloadedError, RESOURCE_EXHAUSTED) when
more than `max_queued_texts` texts are waiting, or when the texts ahead of it would take more than
70% of the time left before its deadline at the measured speed; work whose deadline passed while it
waited is dropped (DeadlineExceededError), never computed. One model call runs at a time: the
bi-encoder session has one intra-op thread beside the cross-encoder's pool, and the queue wait is
what admission estimates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shoprank.arrays import FloatArray
from sidecar import metrics
from sidecar.errors import DeadlineExceededError, ModelMismatchError, OverloadedError

# Share of the time left before a deadline that the texts queued ahead may take (as the batcher's).
DEADLINE_SHARE = 0.7
# Weight of the newest call in the moving average of seconds per text used for admission.
RATE_SMOOTHING = 0.3
# Seconds per text assumed before the first call is measured (a short query on one CPU thread).
INITIAL_SECONDS_PER_TEXT = 0.005
# Back-off named to a refused request: about one queue's turnover is not known, so a short fixed one.
RETRY_AFTER_MS = 20


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


@dataclass(frozen=True)
class EmbedTimings:
    """Wall time of one request's steps, in milliseconds, and its token count."""

    tokenize_ms: float
    queue_ms: float
    inference_ms: float
    total_ms: float
    tokens: int


@dataclass(frozen=True)
class EmbedOutcome:
    """The vectors (n, dim) in request order, the model that made them, and timings."""

    vectors: FloatArray
    model_version: str
    timings: EmbedTimings


class EmbedGate:
    """Admission and the one-call-at-a-time turn for Embed requests, shared across model reloads."""

    def __init__(self, max_queued_texts: int) -> None:
        self.max_queued_texts = max_queued_texts
        self._queued = 0
        self._seconds_per_text = INITIAL_SECONDS_PER_TEXT
        self._lock = threading.Lock()
        self._turn = threading.Lock()

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

    def turn(self, deadline: float | None) -> bool:
        """Wait for the model's turn until the deadline; False when it passed first (release with end_turn)."""
        if deadline is None:
            return self._turn.acquire()
        return self._turn.acquire(timeout=max(0.0, deadline - time.monotonic()))

    def end_turn(self) -> None:
        """Let the next request at the model."""
        self._turn.release()


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
    if not gate.turn(query.deadline):
        raise DeadlineExceededError("the deadline passed while the request waited for the bi-encoder")
    try:
        queued = time.perf_counter()
        if query.deadline is not None and time.monotonic() >= query.deadline:
            raise DeadlineExceededError("the deadline passed while the request waited for the bi-encoder")
        vectors = embedder.encode_ids(ids)
        done = time.perf_counter()
    finally:
        gate.end_turn()
    gate.observe(len(ids), done - queued)
    metrics.EMBED_TEXTS.inc(len(ids))
    return EmbedOutcome(
        vectors=vectors,
        model_version=embedder.version,
        timings=EmbedTimings(
            tokenize_ms=(tokenized - started) * 1e3,
            queue_ms=(queued - tokenized) * 1e3,
            inference_ms=(done - queued) * 1e3,
            total_ms=(time.perf_counter() - started) * 1e3,
            tokens=sum(len(i) for i in ids),
        ),
    )
