"""Client of the Reranker used by the search front door: one deadline, no retries, fail-open.

On any failure (sidecar down, slow, overloaded, not ready) `rerank` returns the
first-stage order with `reranked=False` and the reason, so a search never breaks. What it
sends is fitted to the request limits first (text cut, category paths shortened, over-long ids
replaced by a digest and mapped back), so one stored product over a limit never costs the
whole window its rerank.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from sidecar.convert import ACTION_ENUMS, FACET_ENUMS, METHOD_ENUMS, RequestLimits
from sidecar.errors import RETRY_AFTER_KEY
from sidecar.personalise import Interaction
from sidecar.tls import channel_credentials

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
class RerankOptions:
    """Per-request options; None leaves the server default."""

    blend_weight: float | None = None
    diversity: str | None = None
    strength: float | None = None
    max_per_brand: int | None = None
    max_per_category: int | None = None
    window: int | None = None
    page_size: int | None = None  # caps count per page of this many results
    facets: tuple[str, ...] = ()  # xQuAD's aspects: "category" and/or "brand" (empty: server default)
    attribute_weight: float | None = None  # MMR/DPP: share of attribute similarity vs embedding cosine
    explain: bool = False
    personal_weight: float | None = None  # cap of beta(n) for this request (0: no personalisation)


@dataclass(frozen=True)
class RankedId:
    id: str
    score: float
    relevance_score: float
    explanation: dict[str, Any] | None = None


@dataclass
class RerankReply:
    """The page order from the sidecar, or the first-stage order when it failed open."""

    results: list[RankedId]
    reranked: bool
    model_version: str = ""
    diversity_method: str = "none"
    diversity_notes: tuple[str, ...] = ()  # e.g. caps that could not hold (fewer brands than the page)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    rpc_ms: float = 0.0
    cache_hits: int = 0
    personalised: bool = False
    personal_interactions: int = 0


# Prefix of the wire id that stands for an id over the id limit (the digest of the real one).
DIGEST_ID_PREFIX = "sha256:"
# Smallest per-field text budget the client shrinks to when a whole request is over its byte limit.
MIN_FIELD_BUDGET = 1024


def wire_id(product_id: str, limits: RequestLimits) -> str:
    """The id sent for a product: itself, or a digest when it is longer than the sidecar takes."""
    if utf8_size(product_id) <= limits.max_id_bytes:
        return product_id
    return DIGEST_ID_PREFIX + hashlib.sha256(product_id.encode("utf-8")).hexdigest()


def _candidate(item: RerankInput, limits: RequestLimits, field_bytes: int) -> pb.Candidate:
    p = item.product
    message = pb.Candidate(
        id=wire_id(item.id, limits),
        first_stage_score=float(item.first_stage_score),
        product=pb.Product(
            title=truncate_utf8(p.title, field_bytes),
            brand=truncate_utf8(p.brand, field_bytes),
            category=fit_category(p.category, limits.max_category_levels, field_bytes),
            color=truncate_utf8(p.color, field_bytes),
            bullet_points=truncate_utf8(p.bullet_points, field_bytes),
            description=truncate_utf8(p.description, field_bytes),
        ),
    )
    if item.embedding is not None:
        message.embedding.extend(np.asarray(item.embedding, dtype=np.float32).tolist())
    return message


def _interactions(interactions: Sequence[Interaction], limits: RequestLimits, now_ms: int) -> list[pb.Interaction]:
    """The first `max_interactions` (callers pass the most recent first), ids as the candidates' wire ids,
    timestamps clamped to now (a shopper's clock ahead of ours must not cost the request)."""
    out = []
    for interaction in interactions[: limits.max_interactions]:
        message = pb.Interaction(
            product_id=wire_id(interaction.product_id, limits),
            action=ACTION_ENUMS[interaction.action],  # type: ignore[arg-type]
            timestamp_ms=max(1, min(interaction.timestamp_ms, now_ms)),
        )
        if interaction.embedding is not None:
            message.embedding.extend(np.asarray(interaction.embedding, dtype=np.float32).tolist())
        out.append(message)
    return out


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
    request = _build(query, items, top_k, options, limits, field_bytes)
    while request.ByteSize() > limits.max_request_bytes and field_bytes > MIN_FIELD_BUDGET:
        field_bytes = max(MIN_FIELD_BUDGET, field_bytes // 4)
        request = _build(query, items, top_k, options, limits, field_bytes)
    if interactions:
        request.interactions.extend(_interactions(interactions, limits, int(time.time() * 1000)))
    return request


def _build(
    query: str,
    items: Sequence[RerankInput],
    top_k: int,
    options: RerankOptions,
    limits: RequestLimits,
    field_bytes: int,
) -> pb.RerankRequest:
    request = pb.RerankRequest(
        query=truncate_utf8(query, limits.max_query_bytes),
        top_k=top_k,
        candidates=[_candidate(i, limits, field_bytes) for i in items],
    )
    o = request.options
    o.explain = options.explain
    if options.blend_weight is not None:
        o.blend_weight = options.blend_weight
    if options.personal_weight is not None:
        o.personal_weight = options.personal_weight
    if options.diversity is not None:
        o.diversity.method = METHOD_ENUMS[options.diversity]  # type: ignore[assignment]
    for name in ("strength", "max_per_brand", "max_per_category", "window", "page_size", "attribute_weight"):
        value = getattr(options, name)
        if value is not None:
            setattr(o.diversity, name, value)
    o.diversity.facets.extend(FACET_ENUMS[name] for name in options.facets)  # type: ignore[misc]
    return request


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


def first_stage_reply(items: Sequence[RerankInput], top_k: int, error: str, rpc_ms: float = 0.0) -> RerankReply:
    """The fail-open answer: first-stage order, cut to the page."""
    results = [RankedId(i.id, float(i.first_stage_score), float(i.first_stage_score)) for i in items[:top_k]]
    return RerankReply(results=results, reranked=False, error=error, rpc_ms=rpc_ms)


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
            return RerankReply(results=[], reranked=False, error="no candidates")
        started = time.perf_counter()
        if time.monotonic() < self._backoff_until:
            return first_stage_reply(items, top_k, "RESOURCE_EXHAUSTED: sidecar overloaded, backing off")
        request = build_request(query, items, top_k, options or RerankOptions(), self.limits, interactions)
        timeout = (deadline_ms or self.deadline_ms) / 1000.0
        try:
            response: pb.RerankResponse = self._stub.Rerank(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as error:
            rpc_ms = (time.perf_counter() - started) * 1e3
            return first_stage_reply(items, top_k, self._failure(error), rpc_ms)
        # Ids sent as digests come back as digests: answer with the real ones.
        real_id = {wire_id(i.id, self.limits): i.id for i in items}
        results = [
            RankedId(
                real_id.get(r.id, r.id),
                r.score,
                r.relevance_score,
                _explanation(r.explanation) if r.HasField("explanation") else None,
            )
            for r in response.results
        ]
        t = response.timings
        timings = {
            "tokenize_ms": t.tokenize_ms,
            "queue_ms": t.queue_ms,
            "inference_ms": t.inference_ms,
            "diversify_ms": t.diversify_ms,
            "total_ms": t.total_ms,
            **({"personal_ms": t.personal_ms} if response.personalised else {}),
        }
        return RerankReply(
            results=results,
            reranked=response.reranked,
            model_version=response.model_version,
            diversity_method=response.diversity_method,
            diversity_notes=tuple(response.diversity_notes),
            timings=timings,
            rpc_ms=(time.perf_counter() - started) * 1e3,
            cache_hits=response.cache_hits,
            personalised=response.personalised,
            personal_interactions=response.personal_interactions,
        )

    def _failure(self, error: grpc.RpcError) -> str:
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
        return f"{code.name}: {detail}"

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


def _explanation(e: pb.Explanation) -> dict[str, Any]:
    return {
        "relevance": e.relevance,
        "first_stage": e.first_stage,
        "blended": e.blended,
        "diversity_term": e.diversity_term,
        "first_stage_rank": e.first_stage_rank,
        "scored_rank": e.scored_rank,
        "final_rank": e.final_rank,
        "reason": e.reason,
        "personal_term": e.personal_term,
    }
