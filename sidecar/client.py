"""Client of the Reranker used by the search front door: one deadline, no retries, fail-open.

On any failure (sidecar down, slow, overloaded, not ready) `rerank` returns the
first-stage order with `reranked=False` and the reason, so a search never breaks. What it
sends is fitted to the request limits first (text cut, category paths shortened, over-long ids
replaced by a digest and mapped back), so one stored product over a limit never costs the
whole window its rerank. Results come back as the sidecar's own domain types (ScoredCandidate,
Explanation, Timings: sidecar/domain.py, read by sidecar/wire_response.py) and a failure as a
RerankFailure carrying the call's grpc.StatusCode.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import grpc
import numpy as np
import numpy.typing as npt
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shoprank.limits import fit_category, truncate_utf8, utf8_size
from shoprank.settings import Settings
from shoprank.template import ProductText
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.domain import Candidate, CandidateProduct, RerankCall, ScoredCandidate, Timings
from sidecar.domain import RerankOptions as RerankOptions  # the options callers pass to `rerank`
from sidecar.errors import RETRY_AFTER_KEY
from sidecar.personalise import Interaction
from sidecar.tls import channel_credentials
from sidecar.wire_request import RequestLimits, request_to_wire
from sidecar.wire_response import response_from_wire

log = logging.getLogger(__name__)

# After RESOURCE_EXHAUSTED, skip the sidecar for the back-off it named (at most MAX_BACKOFF_S):
# searches stay first-stage ordered for a moment instead of adding load to a full queue.
DEFAULT_BACKOFF_S = 0.1
MAX_BACKOFF_S = 1.0
# What gRPC says when a message passes its size cap (RESOURCE_EXHAUSTED, no retry-after).
TRANSPORT_SIZE_REFUSAL = "larger than max"
# Failures are logged at most this often (a down sidecar would otherwise log every search).
WARNING_INTERVAL_S = 10.0


class RerankInput(Protocol):
    """A first-stage hit as the client needs it."""

    @property
    def id(self) -> str: ...
    @property
    def first_stage_score(self) -> float: ...
    @property
    def product(self) -> ProductText: ...
    @property
    def embedding(self) -> npt.NDArray[np.float32] | None: ...


@dataclass(frozen=True)
class RerankFailure:
    """Why a reply is in first-stage order: the call's gRPC status, or None for a reason of the caller's
    own (no candidates, reranking off, backing off after an overload names RESOURCE_EXHAUSTED)."""

    code: grpc.StatusCode | None
    detail: str

    def __str__(self) -> str:
        return f"{self.code.name}: {self.detail}" if self.code is not None else self.detail


@dataclass
class RerankReply:
    """The page order from the sidecar, or the first-stage order when it failed open."""

    results: list[ScoredCandidate]
    reranked: bool
    model_version: str = ""
    diversity_method: str = "none"
    diversity_notes: tuple[str, ...] = ()  # e.g. caps that could not hold (fewer brands than the page)
    timings: Timings = field(default_factory=Timings)
    failure: RerankFailure | None = None
    rpc_ms: float = 0.0
    cache_hits: int = 0
    personalised: bool = False
    personal_interactions: int = 0

    @property
    def error(self) -> str | None:
        """The failure as one line for logs ("CODE: detail"), None when the call succeeded."""
        return None if self.failure is None else str(self.failure)


# Prefix of the wire id that stands for an id over the id limit (the digest of the real one).
DIGEST_ID_PREFIX = "sha256:"
# Smallest per-field text budget the client shrinks to when a whole request is over its byte limit.
MIN_FIELD_BUDGET = 1024


def wire_id(product_id: str, limits: RequestLimits) -> str:
    """The id sent for a product: itself, or a digest when it is longer than the sidecar takes."""
    if utf8_size(product_id) <= limits.max_id_bytes:
        return product_id
    return DIGEST_ID_PREFIX + hashlib.sha256(product_id.encode("utf-8")).hexdigest()


def _candidate(item: RerankInput, limits: RequestLimits, field_bytes: int) -> Candidate:
    p = item.product
    return Candidate(
        id=wire_id(item.id, limits),
        first_stage_score=float(item.first_stage_score),
        product=CandidateProduct(
            title=truncate_utf8(p.title, field_bytes),
            brand=truncate_utf8(p.brand, field_bytes),
            category=tuple(fit_category(p.category, limits.max_category_levels, field_bytes)),
            color=truncate_utf8(p.color, field_bytes),
            bullet_points=truncate_utf8(p.bullet_points, field_bytes),
            description=truncate_utf8(p.description, field_bytes),
            price=_finite(getattr(p, "price", None)),
            rating=_finite(getattr(p, "rating", None)),
            rating_count=_count(getattr(p, "rating_count", None)),
        ),
        embedding=item.embedding,
    )


def _finite(value: object) -> float | None:
    """A catalogue number for the LTR stage when the product has a finite one (a schema Product does)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _count(value: object) -> int | None:
    """A rating count within the wire's uint32, or None."""
    return min(value, 2**32 - 1) if isinstance(value, int) and value >= 0 else None


def _interactions(interactions: Sequence[Interaction], limits: RequestLimits, now_ms: int) -> tuple[Interaction, ...]:
    """The first `max_interactions` (callers pass the most recent first), ids as the candidates' wire ids,
    timestamps clamped to now (a shopper's clock ahead of ours must not cost the request)."""
    return tuple(
        replace(
            interaction,
            product_id=wire_id(interaction.product_id, limits),
            timestamp_ms=max(1, min(interaction.timestamp_ms, now_ms)),
        )
        for interaction in interactions[: limits.max_interactions]
    )


def build_request(
    query: str,
    items: Sequence[RerankInput],
    top_k: int,
    options: RerankOptions,
    limits: RequestLimits | None = None,
    interactions: Sequence[Interaction] = (),
) -> pb.RerankRequest:
    """The wire request for a query and its first-stage hits, fitted to the sidecar's limits.

    Text fields and category levels are cut to the field limit (and further, down to
    MIN_FIELD_BUDGET bytes, when the whole request would pass the request limit: the
    cross-encoder reads only the first tokens of a product anyway); ids over the id limit are
    sent as digests (see `wire_id`).
    """
    limits = limits or RequestLimits()
    field_bytes = limits.max_field_bytes
    fitted = _interactions(interactions, limits, int(time.time() * 1000))
    request = _build(query, items, top_k, options, limits, field_bytes, fitted)
    while request.ByteSize() > limits.max_request_bytes and field_bytes > MIN_FIELD_BUDGET:
        field_bytes = max(MIN_FIELD_BUDGET, field_bytes // 4)
        request = _build(query, items, top_k, options, limits, field_bytes, fitted)
    return request


def _build(
    query: str,
    items: Sequence[RerankInput],
    top_k: int,
    options: RerankOptions,
    limits: RequestLimits,
    field_bytes: int,
    interactions: Sequence[Interaction] = (),
) -> pb.RerankRequest:
    call = RerankCall(
        query=truncate_utf8(query, limits.max_query_bytes),
        candidates=[_candidate(i, limits, field_bytes) for i in items],
        top_k=top_k,
        options=options,
        interactions=tuple(interactions),
    )
    return request_to_wire(call)


def _retry_after_s(error: grpc.RpcError) -> float:
    """The back-off the sidecar asked for (trailing metadata), capped; a default when it named none."""
    trailing_of = getattr(error, "trailing_metadata", None)
    for key, value in (trailing_of() if callable(trailing_of) else None) or ():
        if key == RETRY_AFTER_KEY:
            try:
                return min(MAX_BACKOFF_S, max(0.0, float(value) / 1000.0))
            except ValueError:
                break
    return DEFAULT_BACKOFF_S


def first_stage_reply(
    items: Sequence[RerankInput], top_k: int, failure: RerankFailure, rpc_ms: float = 0.0
) -> RerankReply:
    """The fail-open answer: first-stage order, cut to the page."""
    results = [ScoredCandidate(i.id, float(i.first_stage_score), float(i.first_stage_score)) for i in items[:top_k]]
    return RerankReply(results=results, reranked=False, failure=failure, rpc_ms=rpc_ms)


class RerankClient:
    """A long-lived channel to one sidecar.

    Failure behaviour, all fail-open: a sidecar that is down answers UNAVAILABLE at once
    (connection refused; no wait-for-ready, no retries); a slow one is cut at the deadline; one
    that sheds load (RESOURCE_EXHAUSTED) is not called again for the back-off it asked for, so
    an overloaded sidecar is not piled on. Reconnection attempts are at most ~1 s apart, so a
    restarted sidecar is used again within about a second.
    """

    def __init__(
        self,
        address: str,
        deadline_ms: int,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str = "",
        limits: RequestLimits | None = None,
    ) -> None:
        self.address = address
        self.deadline_ms = deadline_ms
        self.limits = limits or RequestLimits()
        options: list[tuple[str, Any]] = [
            ("grpc.enable_retries", 0),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self._stub = pb_grpc.RerankerStub(self._channel)
        self._backoff_until = 0.0
        self._last_warning = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RerankClient:
        """A client for settings.sidecar with its deadline and TLS settings."""
        credentials = channel_credentials(settings.sidecar_tls_ca, settings.sidecar_tls_cert, settings.sidecar_tls_key)
        return cls(
            settings.sidecar,
            settings.sidecar_deadline_ms,
            credentials,
            settings.sidecar_tls_server_name,
            RequestLimits.from_settings(settings),
        )

    def rerank(
        self,
        query: str,
        items: Sequence[RerankInput],
        top_k: int,
        options: RerankOptions | None = None,
        deadline_ms: int | None = None,
        interactions: Sequence[Interaction] = (),
    ) -> RerankReply:
        """Rerank within the deadline, or fail open to the first-stage order; `interactions` (most recent
        first) personalise the ranking."""
        if not items:
            return RerankReply(results=[], reranked=False, failure=RerankFailure(None, "no candidates"))
        started = time.perf_counter()
        if time.monotonic() < self._backoff_until:
            backing_off = RerankFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, "sidecar overloaded, backing off")
            return first_stage_reply(items, top_k, backing_off)
        request = build_request(query, items, top_k, options or RerankOptions(), self.limits, interactions)
        timeout = (deadline_ms or self.deadline_ms) / 1000.0
        try:
            response: pb.RerankResponse = self._stub.Rerank(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as error:
            rpc_ms = (time.perf_counter() - started) * 1e3
            return first_stage_reply(items, top_k, self._failure(error), rpc_ms)
        outcome = response_from_wire(response)
        # Ids sent as digests come back as digests: answer with the real ones.
        real_id = {wire_id(i.id, self.limits): i.id for i in items}
        return RerankReply(
            results=[replace(r, id=real_id.get(r.id, r.id)) for r in outcome.results],
            reranked=outcome.reranked,
            model_version=outcome.model_version,
            diversity_method=outcome.diversity_method,
            diversity_notes=outcome.diversity_notes,
            timings=outcome.timings,
            rpc_ms=(time.perf_counter() - started) * 1e3,
            cache_hits=outcome.cache_hits,
            personalised=outcome.personalised,
            personal_interactions=outcome.personal_interactions,
        )

    def _failure(self, error: grpc.RpcError) -> RerankFailure:
        """Log (throttled) and describe a failed call; start a back-off when the sidecar sheds load."""
        # Raised RpcErrors are also grpc.Call objects carrying the status.
        code_of = getattr(error, "code", None)
        code: grpc.StatusCode = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
        details_of = getattr(error, "details", None)
        detail = details_of() if callable(details_of) else str(error)
        # gRPC's own message-size cap also answers RESOURCE_EXHAUSTED: a refused request, not overload.
        too_large = code == grpc.StatusCode.RESOURCE_EXHAUSTED and TRANSPORT_SIZE_REFUSAL in (detail or "")
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and not too_large:
            self._backoff_until = time.monotonic() + _retry_after_s(error)
        now = time.monotonic()
        if code == grpc.StatusCode.INVALID_ARGUMENT or too_large:
            log.error("sidecar refused the request: %s", detail)
        elif now - self._last_warning >= WARNING_INTERVAL_S:
            self._last_warning = now
            log.warning("sidecar %s failed (%s): serving first-stage order", self.address, code.name)
        return RerankFailure(code, detail or "")

    def wait_until_serving(self, timeout_s: float) -> bool:
        """Poll standard gRPC health until SERVING or the timeout; True when serving."""
        stub = health_pb2_grpc.HealthStub(self._channel)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        return False

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()
