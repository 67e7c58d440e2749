"""The sidecar's Embed rpc: the bi-encoder's vectors over gRPC, validated, version-checked, admitted."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shoprank.arrays import FloatArray
from shoprank.bi_encoder import BiEncoder
from shoprank.limits import MAX_EMBED_TEXT_BYTES, MAX_EMBED_TEXTS
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar import metrics
from sidecar.embed_service import EmbedGate, EmbedOutcome, EmbedQuery, embed
from sidecar.errors import DeadlineExceededError, ModelMismatchError, OverloadedError
from tests.sidecar_harness import running, settings_with

TEXTS = ["grey cotton kitchen towels", "usb c charger", "stoneware coffee mug large handle"]


def embed_stub(port: int) -> tuple[grpc.Channel, pb_grpc.EmbedderStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, pb_grpc.EmbedderStub(channel)


def test_embed_returns_the_bi_encoders_vectors_in_order(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path)
    local = BiEncoder.from_settings(settings)
    with running(settings) as (sidecar, _):
        channel, stub = embed_stub(sidecar.port)
        with channel:
            reply = stub.Embed(pb.EmbedRequest(texts=TEXTS), timeout=30)
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="shoprank.v1.Embedder"), timeout=10
            )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert reply.model_version == local.version
    assert reply.dimension == local.dim == 384
    vectors = np.array([v.values for v in reply.vectors], dtype=np.float32)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors, local.encode(TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(vectors[0], vectors[1])  # each text its own vector, in request order
    assert reply.timings.tokens > 0
    assert reply.timings.total_ms > 0
    assert reply.timings.batch_pairs == 3


def test_embed_checks_the_expected_model_version(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(tiny_models, tmp_path)
    version = BiEncoder.from_settings(settings).version
    with running(settings) as (sidecar, _):
        channel, stub = embed_stub(sidecar.port)
        with channel:
            same = stub.Embed(pb.EmbedRequest(texts=["mug"], expected_model_version=version), timeout=30)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Embed(pb.EmbedRequest(texts=["mug"], expected_model_version="minilm-old0000"), timeout=30)
    assert same.model_version == version
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "minilm-old0000" in str(refused.value.details())
    assert "reindex" in str(refused.value.details())


@pytest.mark.parametrize(
    ("texts", "field", "problem"),
    [
        ([], "texts", "must not be empty"),
        (["mug", "  "], "texts[1]", "must not be blank"),
        (["x"] * (MAX_EMBED_TEXTS + 1), "texts", f"more than the limit of {MAX_EMBED_TEXTS}"),
        (["mug", "a" * (MAX_EMBED_TEXT_BYTES + 1)], "texts[1]", f"more than {MAX_EMBED_TEXT_BYTES}"),
    ],
)
def test_bad_embed_requests_name_the_field(
    tiny_models: Path, tmp_path: Path, texts: list[str], field: str, problem: str
) -> None:
    with running(settings_with(tiny_models, tmp_path)) as (sidecar, _):
        channel, stub = embed_stub(sidecar.port)
        with channel, pytest.raises(grpc.RpcError) as refused:
            stub.Embed(pb.EmbedRequest(texts=texts), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = str(refused.value.details())
    assert details.startswith(f"{field}: ")
    assert problem in details


def test_embed_requests_are_counted_in_the_metrics(tiny_models: Path, tmp_path: Path) -> None:
    ok = metrics.EMBED_REQUESTS.labels(status="OK")
    bad = metrics.EMBED_REQUESTS.labels(status="INVALID_ARGUMENT")
    before_ok, before_bad, before_texts = ok._value.get(), bad._value.get(), metrics.EMBED_TEXTS._value.get()
    with running(settings_with(tiny_models, tmp_path)) as (sidecar, _):
        channel, stub = embed_stub(sidecar.port)
        with channel:
            stub.Embed(pb.EmbedRequest(texts=TEXTS), timeout=30)
            with pytest.raises(grpc.RpcError):
                stub.Embed(pb.EmbedRequest(texts=[]), timeout=30)
    assert ok._value.get() == before_ok + 1
    assert bad._value.get() == before_bad + 1
    assert metrics.EMBED_TEXTS._value.get() == before_texts + 3


class _Embedder:
    """A bi-encoder stand-in whose model call blocks until released (a model of known capacity)."""

    dim = 4
    version = "fake-bi-1"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [[1, 2, 3] for _ in texts]

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> FloatArray:
        self.calls += 1
        self.release.wait(10)
        return np.full((len(ids), self.dim), 0.5, dtype=np.float32)


def test_the_gate_refuses_beyond_its_queue_and_frees_the_space() -> None:
    gate = EmbedGate(max_queued_texts=4)
    gate.admit(3, None)
    with pytest.raises(OverloadedError, match="3 texts are waiting"):
        gate.admit(2, None)
    gate.admit(1, None)  # exactly full is admitted
    gate.release(4)
    gate.admit(4, None)
    assert gate.queued == 4


def test_the_gate_refuses_work_that_would_outlast_the_deadline() -> None:
    gate = EmbedGate(max_queued_texts=1000)
    gate.observe(10, 1.0)  # measured: ~0.1 s a text after smoothing from 5 ms
    gate.admit(10, None)
    with pytest.raises(OverloadedError, match="ms left"):
        gate.admit(1, time.monotonic() + 0.05)
    gate.admit(1, time.monotonic() + 60)


def test_a_request_whose_deadline_passes_in_the_queue_is_dropped_uncomputed() -> None:
    embedder = _Embedder()
    gate = EmbedGate(max_queued_texts=10)
    first = threading.Thread(target=embed, args=(embedder, gate, EmbedQuery(texts=("a",))))
    first.start()
    while embedder.calls == 0:
        time.sleep(0.001)
    with pytest.raises(DeadlineExceededError):
        embed(embedder, gate, EmbedQuery(texts=("b",), deadline=time.monotonic() + 0.05))
    embedder.release.set()
    first.join()
    assert embedder.calls == 1  # the late request never reached the model


class _CallRecorder:
    """A bi-encoder stand-in that records each call's size and returns [first token id, row] per text;
    its first call blocks until released."""

    dim = 2
    version = "fake-bi-2"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.call_sizes: list[int] = []

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [[len(text)] for text in texts]

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> FloatArray:
        self.call_sizes.append(len(ids))
        if len(self.call_sizes) == 1:
            self.release.wait(10)
        return np.array([[float(row[0]), float(i)] for i, row in enumerate(ids)], dtype=np.float32)


def test_requests_that_wait_together_share_one_model_call() -> None:
    embedder = _CallRecorder()
    gate = EmbedGate(max_queued_texts=100)
    outcomes: dict[str, EmbedOutcome] = {}

    def search(text: str) -> None:
        outcomes[text] = embed(embedder, gate, EmbedQuery(texts=(text,)))

    first = threading.Thread(target=search, args=("a",))
    first.start()
    while not embedder.call_sizes:
        time.sleep(0.001)
    others = [threading.Thread(target=search, args=(text,)) for text in ("bb", "ccc", "dddd")]
    for thread in others:
        thread.start()
    while gate.waiting < 3:
        time.sleep(0.001)
    embedder.release.set()
    for thread in [first, *others]:
        thread.join()
    assert embedder.call_sizes == [1, 3], "the three that waited went in one call"
    for text in ("bb", "ccc", "dddd"):
        assert outcomes[text].vectors.shape == (1, 2)
        assert outcomes[text].vectors[0, 0] == len(text), "each request gets its own rows back"
        assert outcomes[text].timings.usage.batch_pairs == 3
    assert outcomes["a"].timings.usage.batch_pairs == 1


def test_a_version_mismatch_is_refused_before_any_work() -> None:
    embedder = _Embedder()
    embedder.release.set()
    with pytest.raises(ModelMismatchError, match="reindex"):
        embed(embedder, EmbedGate(10), EmbedQuery(texts=("a",), expected_model_version="other"))
    assert embedder.calls == 0
    outcome = embed(embedder, EmbedGate(10), EmbedQuery(texts=("a", "b"), expected_model_version="fake-bi-1"))
    assert outcome.vectors.shape == (2, 4)
    assert outcome.model_version == "fake-bi-1"
