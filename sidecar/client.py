"""Client of the Reranker used by the search front door: one deadline, no retries, fail-open.

On any failure (sidecar down, slow, overloaded, not ready) `rerank` returns the
first-stage order with `reranked=False` and the reason, so a search never breaks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import numpy as np
import numpy.typing as npt
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shoprank.template import ProductText
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.convert import METHOD_ENUMS

log = logging.getLogger(__name__)


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
    explain: bool = False


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
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    rpc_ms: float = 0.0


def _candidate(item: RerankInput) -> pb.Candidate:
    p = item.product
    message = pb.Candidate(
        id=item.id,
        first_stage_score=float(item.first_stage_score),
        product=pb.Product(
            title=p.title,
            brand=p.brand,
            category=list(p.category),
            color=p.color,
            bullet_points=p.bullet_points,
            description=p.description,
        ),
    )
    if item.embedding is not None:
        message.embedding.extend(np.asarray(item.embedding, dtype=np.float32).tolist())
    return message


def build_request(query: str, items: Sequence[RerankInput], top_k: int, options: RerankOptions) -> pb.RerankRequest:
    """The wire request for a query and its first-stage hits."""
    request = pb.RerankRequest(query=query, top_k=top_k, candidates=[_candidate(i) for i in items])
    o = request.options
    o.explain = options.explain
    if options.blend_weight is not None:
        o.blend_weight = options.blend_weight
    if options.diversity is not None:
        o.diversity.method = METHOD_ENUMS[options.diversity]  # type: ignore[assignment]
    for name in ("strength", "max_per_brand", "max_per_category", "window"):
        value = getattr(options, name)
        if value is not None:
            setattr(o.diversity, name, value)
    return request


def first_stage_reply(items: Sequence[RerankInput], top_k: int, error: str, rpc_ms: float = 0.0) -> RerankReply:
    """The fail-open answer: first-stage order, cut to the page."""
    results = [RankedId(i.id, float(i.first_stage_score), float(i.first_stage_score)) for i in items[:top_k]]
    return RerankReply(results=results, reranked=False, error=error, rpc_ms=rpc_ms)


class RerankClient:
    """A long-lived channel to one sidecar."""

    def __init__(self, address: str, deadline_ms: int) -> None:
        self.address = address
        self.deadline_ms = deadline_ms
        self._channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.enable_retries", 0),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        self._stub = pb_grpc.RerankerStub(self._channel)

    def rerank(
        self,
        query: str,
        items: Sequence[RerankInput],
        top_k: int,
        options: RerankOptions | None = None,
        deadline_ms: int | None = None,
    ) -> RerankReply:
        """Rerank within the deadline, or fail open to the first-stage order."""
        if not items:
            return RerankReply(results=[], reranked=False, error="no candidates")
        started = time.perf_counter()
        request = build_request(query, items, top_k, options or RerankOptions())
        timeout = (deadline_ms or self.deadline_ms) / 1000.0
        try:
            response: pb.RerankResponse = self._stub.Rerank(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as error:
            # Raised RpcErrors are also grpc.Call objects carrying the status.
            code_of = getattr(error, "code", None)
            code: grpc.StatusCode = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
            details_of = getattr(error, "details", None)
            detail = details_of() if callable(details_of) else str(error)
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                log.error("sidecar refused the request: %s", detail)
            else:
                log.warning("sidecar %s failed (%s): serving first-stage order", self.address, code.name)
            rpc_ms = (time.perf_counter() - started) * 1e3
            return first_stage_reply(items, top_k, f"{code.name}: {detail}", rpc_ms)
        results = [
            RankedId(
                r.id, r.score, r.relevance_score, _explanation(r.explanation) if r.HasField("explanation") else None
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
        }
        return RerankReply(
            results=results,
            reranked=response.reranked,
            model_version=response.model_version,
            diversity_method=response.diversity_method,
            timings=timings,
            rpc_ms=(time.perf_counter() - started) * 1e3,
        )

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
    }
