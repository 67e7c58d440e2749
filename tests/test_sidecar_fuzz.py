"""Random and malformed Rerank requests over real gRPC: never a crash or a hang; bad ones are
INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprank.v1 import rerank_pb2 as pb
from sidecar.server import Sidecar, start_sidecar
from sidecar.wire_request import METHOD_ENUMS
from tests.sidecar_harness import request, settings_with

MAX_CANDIDATES = 40
MAX_FIELD_BYTES = 2048
MAX_REQUEST_BYTES = 256 * 1024
FIELD_PATH = re.compile(
    r"^(request|query|top_k|candidates(\[\d+\]\.(id|first_stage_score|embedding|product\.\w+(\[\d+\])?))?"
    r"|options\.(blend_weight|diversity\.\w+)): "
)
CALL_TIMEOUT_S = 20.0  # a hang shows up as DEADLINE_EXCEEDED, which no assertion accepts


class Caller:
    """Sends requests (messages or raw bytes) and returns (status, details, response)."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = self.channel.unary_unary("/shoprank.v1.Reranker/Rerank")

    def __call__(self, message: pb.RerankRequest | bytes) -> tuple[grpc.StatusCode, str, pb.RerankResponse | None]:
        data = message if isinstance(message, bytes) else message.SerializeToString()
        try:
            reply = self.raw(data, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            return error.code(), error.details() or "", None
        return grpc.StatusCode.OK, "", pb.RerankResponse.FromString(reply)


@pytest.fixture(scope="module")
def sidecar(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    settings = settings_with(
        tiny_models,
        tmp_path_factory.mktemp("fuzz"),
        max_candidates=MAX_CANDIDATES,
        max_field_bytes=MAX_FIELD_BYTES,
        max_request_bytes=MAX_REQUEST_BYTES,
    )
    started = start_sidecar(settings, background_load=False)
    yield started
    started.shutdown(0)


@pytest.fixture(scope="module")
def call(sidecar: Sidecar) -> Iterator[Caller]:
    caller = Caller(sidecar.port)
    yield caller
    caller.channel.close()


def check_answer(
    message: pb.RerankRequest | bytes, status: grpc.StatusCode, details: str, reply: pb.RerankResponse | None
) -> None:
    assert status in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (status, details)
    if status == grpc.StatusCode.INVALID_ARGUMENT:
        assert FIELD_PATH.match(details), details
        return
    assert reply is not None
    assert isinstance(message, pb.RerankRequest)
    count = len(message.candidates)
    assert len(reply.results) == min(message.top_k or count, count)
    ids = [r.id for r in reply.results]
    assert len(set(ids)) == len(ids)
    assert set(ids) <= {c.id for c in message.candidates}
    assert all(math.isfinite(r.score) and math.isfinite(r.relevance_score) for r in reply.results)


def mutate(edit: Callable[[pb.RerankRequest], object]) -> pb.RerankRequest:
    message = request(5)
    edit(message)
    return message


def set_option(path: str, value: object) -> Callable[[pb.RerankRequest], None]:
    def edit(message: pb.RerankRequest) -> None:
        target: object = message
        *parents, name = path.split(".")
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)

    return edit


def ragged_embeddings(message: pb.RerankRequest) -> None:
    message.candidates[0].embedding.extend([0.1] * 4)
    message.candidates[1].embedding.extend([0.1] * 3)


VIOLATIONS: dict[str, tuple[pb.RerankRequest | bytes, str]] = {
    "empty query": (mutate(set_option("query", "")), "query"),
    "blank query": (mutate(set_option("query", " \t\n ")), "query"),
    "long query": (mutate(set_option("query", "towel " * 400)), "query"),
    "no candidates": (pb.RerankRequest(query="towels"), "candidates"),
    "too many candidates": (request(MAX_CANDIDATES + 1), "candidates"),
    "top_k beyond the limit": (mutate(set_option("top_k", MAX_CANDIDATES + 1)), "top_k"),
    "empty id": (mutate(lambda m: setattr(m.candidates[1], "id", "")), "candidates[1].id"),
    "duplicate id": (mutate(lambda m: setattr(m.candidates[1], "id", m.candidates[0].id)), "candidates[1].id"),
    "long id": (mutate(lambda m: setattr(m.candidates[1], "id", "x" * 600)), "candidates[1].id"),
    "nan first-stage score": (
        mutate(lambda m: setattr(m.candidates[2], "first_stage_score", math.nan)),
        "candidates[2].first_stage_score",
    ),
    "infinite first-stage score": (
        mutate(lambda m: setattr(m.candidates[2], "first_stage_score", math.inf)),
        "candidates[2].first_stage_score",
    ),
    "no title": (mutate(lambda m: m.candidates[3].product.ClearField("title")), "candidates[3].product.title"),
    "no product": (mutate(lambda m: m.candidates[3].ClearField("product")), "candidates[3].product.title"),
    "field over its byte limit": (
        mutate(lambda m: setattr(m.candidates[4].product, "description", "é" * MAX_FIELD_BYTES)),
        "candidates[4].product.description",
    ),
    "too deep a category": (
        mutate(lambda m: m.candidates[0].product.category.extend(["c"] * 20)),
        "candidates[0].product.category",
    ),
    "nan embedding": (
        mutate(lambda m: m.candidates[0].embedding.extend([0.1, math.nan, 0.3])),
        "candidates[0].embedding",
    ),
    "ragged embeddings": (
        mutate(ragged_embeddings),
        "candidates[1].embedding",
    ),
    "blend weight above 1": (mutate(set_option("options.blend_weight", 1.5)), "options.blend_weight"),
    "nan blend weight": (mutate(set_option("options.blend_weight", math.nan)), "options.blend_weight"),
    "unknown diversity method": (mutate(set_option("options.diversity.method", 99)), "options.diversity.method"),
    "strength above 1": (mutate(set_option("options.diversity.strength", 3.0)), "options.diversity.strength"),
    "zero window": (mutate(set_option("options.diversity.window", 0)), "options.diversity.window"),
    "zero brand cap": (mutate(set_option("options.diversity.max_per_brand", 0)), "options.diversity.max_per_brand"),
    "request over its byte limit": (
        pb.RerankRequest(
            query="towels",
            candidates=[
                pb.Candidate(id=f"c{i}", product=pb.Product(title="t", bullet_points="b" * (MAX_FIELD_BYTES - 8)))
                for i in range(MAX_CANDIDATES)
            ]
            * 4,
        ),
        "request",
    ),
    "not protobuf": (b"\xff\xff\xff\xff garbage", "request"),
    "invalid utf-8 in a string": (b"\x0a\x03\xff\xfe\xfd", "request"),
}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_each_violation_is_invalid_argument_naming_its_field(call: Caller, case: str) -> None:
    message, field = VIOLATIONS[case]
    status, details, _ = call(message)
    assert status == grpc.StatusCode.INVALID_ARGUMENT, (status, details)
    assert details.startswith(f"{field}: "), details


def test_a_pasted_paragraph_as_query_is_answered(call: Caller) -> None:
    message = request(5, query="漢字" * 128)  # 256 characters, each its own token: more than a pair holds
    status, details, reply = call(message)
    assert status == grpc.StatusCode.OK, details
    check_answer(message, status, details, reply)


def test_top_k_beyond_the_candidates_returns_every_candidate(call: Caller) -> None:
    # The proto's contract: a short rerank window is not an error (top_k past the limit is; see VIOLATIONS).
    message = request(7, top_k=MAX_CANDIDATES)
    status, details, reply = call(message)
    assert status == grpc.StatusCode.OK, details
    assert reply is not None
    assert sorted(r.id for r in reply.results) == sorted(c.id for c in message.candidates)


def test_the_limits_accept_what_is_just_inside_them(call: Caller) -> None:
    message = request(MAX_CANDIDATES, top_k=MAX_CANDIDATES)
    message.candidates[0].product.description = "é" * (MAX_FIELD_BYTES // 2)  # exactly the limit in bytes
    status, details, reply = call(message)
    assert status == grpc.StatusCode.OK, details
    check_answer(message, status, details, reply)


FLOAT32_MAX = 3.4028234663852886e38


@pytest.mark.parametrize("method", sorted(METHOD_ENUMS))
@pytest.mark.parametrize(
    "scores",
    [
        [FLOAT32_MAX, -FLOAT32_MAX, 0.0, 1.0, -1.0],  # the range passes float32's
        [3.4e38, -3.4e38, 3.4e38, -3.4e38, 1e-45],
        [1e-45, 0.0, -1e-45, 1e-45, 0.0],  # subnormal: tiny but not constant
    ],
)
def test_any_finite_first_stage_scale_is_answered(call: Caller, method: str, scores: list[float]) -> None:
    message = request(5, top_k=5)
    for candidate, score in zip(message.candidates, scores, strict=True):
        candidate.first_stage_score = score
        candidate.embedding.extend([float(len(candidate.id)), 1.0, 0.5])
    message.options.blend_weight = 0.5
    message.options.diversity.method = METHOD_ENUMS[method]  # type: ignore[assignment]
    message.options.diversity.strength = 0.5
    message.options.explain = True
    status, details, reply = call(message)
    assert status == grpc.StatusCode.OK, details
    check_answer(message, status, details, reply)
    assert reply is not None
    first_stage = [r.explanation.first_stage for r in reply.results]
    assert all(0.0 <= value <= 1.0 for value in first_stage), first_stage
    by_id = {r.id: r.explanation.first_stage for r in reply.results}
    order = sorted(message.candidates, key=lambda c: c.first_stage_score)
    assert by_id[order[0].id] == 0.0  # min-max kept, not NaN or flattened
    assert by_id[order[-1].id] == 1.0


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
words = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=40).filter(str.strip)
wild_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
unit = st.floats(0.0, 1.0, width=32)


@st.composite
def rerank_requests(draw: st.DrawFn, wild: bool) -> pb.RerankRequest:
    """Well-formed requests (wild=False: all must be answered), or anything goes (wild=True)."""
    count = draw(st.integers(0, MAX_CANDIDATES + 2) if wild else st.integers(1, MAX_CANDIDATES))
    # Any finite scale is valid, up to float32's extremes (their range overflows float32).
    finite = st.floats(width=32, allow_nan=False, allow_infinity=False)
    score = wild_floats if wild else st.floats(-1e6, 1e6, width=32) | finite
    dim = draw(st.integers(0, 4))
    long_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)  # up to past the query limit
    message = pb.RerankRequest(
        query=draw(long_text if wild else words), top_k=draw(st.integers(0, MAX_CANDIDATES + 5 if wild else count))
    )
    for i in range(count):
        candidate = message.candidates.add(
            id=draw(st.sampled_from(["a", "b", ""]) | text) if wild and draw(st.booleans()) else f"id{i}",
            first_stage_score=draw(score),
            product=pb.Product(
                title=draw(text if wild else words),
                brand=draw(text),
                category=draw(st.lists(text, max_size=20 if wild else 5)),
                color=draw(text),
                bullet_points=draw(st.text(max_size=MAX_FIELD_BYTES + 10) if wild else words),
                description=draw(text),
            ),
        )
        if dim and (draw(st.booleans()) or not wild):
            size = dim + draw(st.integers(0, 1)) if wild else dim
            candidate.embedding.extend(draw(st.lists(score, min_size=size, max_size=size)))
    options = message.options
    if draw(st.booleans()):
        options.blend_weight = draw(wild_floats if wild else unit)
    options.diversity.method = draw(st.integers(0, 6) if wild else st.integers(0, 4))  # type: ignore[assignment]
    if draw(st.booleans()):
        options.diversity.strength = draw(wild_floats if wild else unit)
    for name in ("max_per_brand", "max_per_category", "window"):
        if draw(st.booleans()):
            setattr(options.diversity, name, draw(st.integers(0 if wild else 1, 2**32 - 1)))
    options.explain = draw(st.booleans())
    return message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=rerank_requests(wild=False))
def test_well_formed_random_requests_are_answered(call: Caller, message: pb.RerankRequest) -> None:
    status, details, reply = call(message)
    assert status == grpc.StatusCode.OK, details
    check_answer(message, status, details, reply)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=rerank_requests(wild=True))
def test_wild_random_requests_are_answered_or_refused_by_field(call: Caller, message: pb.RerankRequest) -> None:
    status, details, reply = call(message)
    check_answer(message, status, details, reply)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_the_handler(call: Caller, data: bytes) -> None:
    status, details, _ = call(data)
    assert status in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (status, details)
    if status == grpc.StatusCode.INVALID_ARGUMENT:
        assert FIELD_PATH.match(details), details


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(sorted(VIOLATIONS)), extra=st.integers(0, 2**31))
def test_a_violation_hidden_in_a_valid_request_is_still_found(call: Caller, case: str, extra: int) -> None:
    message, field = VIOLATIONS[case]
    if isinstance(message, pb.RerankRequest):
        message = pb.RerankRequest.FromString(message.SerializeToString())
        message.options.explain = bool(extra % 2)  # vary unrelated fields
    status, details, _ = call(message)
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"{field}: ")


MIB = 1024 * 1024


def test_a_40_mib_request_is_invalid_argument_naming_request(
    tiny_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Default limits (16 MiB): gRPC's own cap (2x) used to answer RESOURCE_EXHAUSTED, read as overload.
    settings = settings_with(tiny_models, tmp_path_factory.mktemp("big"))
    assert settings.max_request_bytes == 16 * MIB
    started = start_sidecar(settings, background_load=False)
    caller = Caller(started.port)
    trims_before = started.servicer.trimmer.trims
    try:
        data = pb.RerankRequest(query="towels", candidates=request(5).candidates).SerializeToString()
        data += pb.RerankRequest(
            candidates=[pb.Candidate(id="big", product=pb.Product(description="x" * 40 * MIB))]
        ).SerializeToString()
        assert len(data) > 40 * MIB
        status, details, _ = caller(data)
        assert status == grpc.StatusCode.INVALID_ARGUMENT, (status, details)
        assert details.startswith("request: "), details
        assert "more than the limit of 16777216" in details
        status, details, _ = caller(request(5))  # and it serves on
        assert status == grpc.StatusCode.OK, details
        trimmer = started.servicer.trimmer
        if trimmer.available:  # glibc: the freed 40 MiB is handed back to the OS, not kept as a high-water mark
            for _ in range(150):  # the trimmer runs at most once a second
                if trimmer.trims > trims_before:
                    break
                time.sleep(0.02)
            assert trimmer.trims > trims_before
    finally:
        caller.channel.close()
        started.shutdown(0)
